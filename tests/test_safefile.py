"""Links in the data directory are refused, never followed (chatd.safefile).

Whoever owns the data directory (chatd's own user) can plant links in it;
chatd-admin, often run by root, must not read or write another file through
them.  These checks hold for any user, so they run without root too; the
root-only ones (chown, a planted admins.tmp) are in test_privileges.
"""

import io
import os
import stat
import sys
from pathlib import Path

from twisted.trial import unittest

from chatd import datadir
from chatd.admin import main as admin_main
from chatd.core.auth import AdminFile
from chatd.datadir import StartError

SECRET = "root:$6$not-yours$0123456789\n"


class PlantedLinkTests(unittest.TestCase):
    def setUp(self):
        self.dir = Path(self.mktemp()).resolve()
        self.data = self.dir / "data"
        self.data.mkdir(parents=True)
        self.victim = self.dir / "shadow"
        self.victim.write_text(SECRET)

    def add(self, name: str) -> int:
        """Run `chatd-admin add name` with the password on stdin; keep its stderr."""
        err = io.StringIO()
        self.patch(sys, "stdin", io.StringIO("long enough password\n"))
        self.patch(sys, "stdout", io.StringIO())
        self.patch(sys, "stderr", err)
        code = admin_main(["--data-dir", str(self.data), "add", name])
        self.stderr = err.getvalue()
        return code

    def assert_nothing_copied(self):
        self.assertEqual(self.victim.read_text(), SECRET)
        for path in self.data.iterdir():
            if not os.path.samefile(path, self.victim):  # the planted link itself
                self.assertNotIn("not-yours", path.read_text(), path)

    def test_symlinked_admins_refused(self):
        """chatd-admin add refuses an admins file that is a link, with one line.

        Followed, the linked file's `name:hash` lines (say /etc/shadow's) were
        copied into a new admins file the data directory's owner can read.
        """
        (self.data / "admins").symlink_to(self.victim)
        self.assertEqual(self.add("alice"), 1)
        self.assertIn("is a symbolic link", self.stderr)
        self.assertEqual(self.stderr.count("\n"), 1, self.stderr)
        self.assertTrue((self.data / "admins").is_symlink())
        self.assert_nothing_copied()

    def test_hard_linked_admins_refused(self):
        """An admins file with a second hard link (maybe another file) is not read."""
        os.link(self.victim, self.data / "admins")
        self.assertEqual(self.add("alice"), 1)
        self.assertIn("another hard link", self.stderr)
        self.assertEqual((self.data / "admins").stat().st_ino, self.victim.stat().st_ino)
        self.assert_nothing_copied()

    def test_fifo_admins_refused_without_blocking(self):
        """A FIFO named admins is refused at once; reading it would hang chatd-admin."""
        os.mkfifo(self.data / "admins")
        self.assertEqual(self.add("alice"), 1)
        self.assertIn("not a regular file", self.stderr)

    def test_write_leaves_one_private_regular_file(self):
        """A write leaves admins a 0600 regular file and no temporary file beside it."""
        self.assertEqual(self.add("alice"), 0)
        self.assertEqual(self.add("bob"), 0)
        self.assertEqual(sorted(p.name for p in self.data.iterdir()), ["admins"])
        mode = (self.data / "admins").lstat().st_mode
        self.assertTrue(stat.S_ISREG(mode))
        self.assertEqual(stat.S_IMODE(mode), 0o600)
        self.assertEqual(AdminFile(self.data / "admins").names(), ["alice", "bob"])

    def test_missing_data_dir_created_private(self):
        """chatd-admin creates a missing data directory with mode 0700."""
        self.data = self.dir / "new" / "data"
        self.assertEqual(self.add("alice"), 0)
        self.assertEqual(stat.S_IMODE(self.data.stat().st_mode), 0o700)

    def test_start_refuses_symlinked_admins(self):
        """chatd refuses at start an admins file that is a link, naming it."""
        (self.data / "admins").symlink_to(self.victim)
        with self.assertRaises(StartError) as caught:
            datadir.prepare(self.data)
        self.assertIn(f"a symbolic link: {self.data / 'admins'}", str(caught.exception))


class UnsafeAdminsWhileRunningTests(unittest.TestCase):
    """An admins file that turns unsafe while chatd runs refuses no one."""

    def test_logins_go_on_with_the_accounts_last_read(self):
        """After an operator hard-links the admins file (a backup), a user
        still logs in, the admin still logs in with the password last read,
        and the log says why once, instead of each login dying."""
        from twisted.logger import capturedLogs

        from tests.helpers import ProtocolHarness

        directory = Path(self.mktemp())
        directory.mkdir()
        h = ProtocolHarness(directory, admins={"boss": "boss-password"})
        self.assertTrue(h.admin_file.is_admin("boss"))
        os.link(h.admin_file.path, directory / "admins.bak")
        # A reload reads it again (and logs that it cannot); logins read it after.
        self.assertRaises(OSError, h.admin_file.reread)
        with capturedLogs() as events:
            carol = h.connect()
            h.send(carol, "carol")
            self.assertIn("* logged in as carol in testroom", h.read(carol))
            boss = h.connect()
            h.send(boss, "boss", "boss-password")
            self.assertIn("* logged in as boss (admin) in testroom", h.read(boss))
        complaints = [e for e in events if "cannot read" in e.get("log_format", "")]
        self.assertEqual(len(complaints), 1, events)

    def test_chatd_admin_on_a_file_that_is_not_utf8(self):
        """chatd-admin says in one line that the admins file is unreadable."""
        data = Path(self.mktemp())
        data.mkdir()
        (data / "admins").write_bytes(b"\xff\n")
        err = io.StringIO()
        self.patch(sys, "stdout", io.StringIO())
        self.patch(sys, "stderr", err)
        self.assertEqual(admin_main(["--data-dir", str(data), "list"]), 1)
        self.assertTrue(err.getvalue().startswith("chatd-admin: "), err.getvalue())
        self.assertEqual(len(err.getvalue().splitlines()), 1)
