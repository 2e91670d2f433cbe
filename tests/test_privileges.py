"""`twistd --uid nobody --gid nogroup chatd`: the data files belong to the user chatd runs as.

twistd binds ports as root, drops privileges, then starts the services.  These
tests run the real twistd as root (as this project's machines and CI do)
and check what an operator sees on a first run under an unprivileged user.
"""

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from twisted.trial import unittest

from tests.helpers_daemon import spawn
from tests.helpers_hostile import wait_for
from tests.test_twistd import DEADLINE, TWISTD, free_port, login

USER = "nobody"


def nobody_group() -> str:
    """Debian calls nobody's group nogroup; other systems call it nobody."""
    found = subprocess.run(["getent", "group", "nogroup"], capture_output=True)
    return "nogroup" if found.returncode == 0 else "nobody"


class UnprivilegedTests(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: twistd --uid only drops privileges from root")
        try:
            self.uid = pwd.getpwnam(USER).pw_uid
        except KeyError:
            raise unittest.SkipTest(f"no user {USER!r} on this machine") from None
        self.group = nobody_group()
        # pytest's and trial's temporary directories may be 0700: nobody must
        # be able to reach this one.
        self.dir = Path(tempfile.mkdtemp(prefix="chatd-uid-"))
        self.addCleanup(shutil.rmtree, self.dir)
        self.dir.chmod(0o755)
        self.port = free_port()

    def argv(self, data: Path, *twistd_options: str) -> list[str]:
        return [TWISTD, "--pidfile=", "--uid", USER, "--gid", self.group,
                *twistd_options, "chatd",
                "--listen", f"tcp:{self.port}:interface=127.0.0.1",
                "--data-dir", str(data)]

    def start(self, data: Path) -> Path:
        out = self.dir / "out.log"
        spawn(self, self.argv(data, "-n"), out, "chatd room")
        return out

    def admin_logs_in_and_bans(self, data: Path) -> None:
        out = self.start(data)
        password = (data / "initial-admin-password").read_text().strip()
        admin = login(self.port, "admin", password)
        mallory = login(self.port, "mallory")
        admin.say("/ban mallory spam")
        self.assertEqual(mallory.until("!"), "! you were banned by admin: spam")
        self.assertEqual(admin.until("* mallory was"), "* mallory was banned by admin: spam")
        for name in ("admins", "chatd.sqlite3", "initial-admin-password"):
            self.assertEqual((data / name).stat().st_uid, self.uid, f"{name} is nobody's")
        self.assertNotIn("Traceback", out.read_text())

    def test_fresh_data_dir(self):
        """A data dir that does not exist yet is created by nobody; admin logs in and bans."""
        parent = self.dir / "srv"
        parent.mkdir()
        os.chown(parent, self.uid, -1)
        data = parent / "chatd"
        self.admin_logs_in_and_bans(data)
        self.assertEqual(data.stat().st_uid, self.uid)

    def test_empty_dir_owned_by_nobody(self):
        """The README's `install -d -o nobody -g nogroup DIR`: admin logs in and bans."""
        data = self.dir / "chatd"
        data.mkdir()
        shutil.chown(data, USER, self.group)
        self.admin_logs_in_and_bans(data)

    def test_root_owned_dir_refused_at_start(self):
        """A data dir nobody cannot write stops chatd at start: status 1 and one clear line."""
        data = self.dir / "chatd"
        data.mkdir()
        result = subprocess.run(self.argv(data, "-n"), capture_output=True, text=True,
                                timeout=DEADLINE)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        output = result.stdout + result.stderr
        self.assertNotIn("Traceback", output)
        lines = [line for line in output.splitlines() if str(data) in line]
        self.assertEqual(len(lines), 1, output)
        self.assertIn(f"chatd: not writable by nobody: install -d -o nobody -g {self.group}"
                      f" {data} (the data directory: Permission denied)", lines[0])
        self.assertEqual(os.listdir(data), [], "nothing was created as root")

    def test_uncreatable_dir_refused_at_start(self):
        """A data dir nobody cannot create (its parent is root's) stops chatd with one line."""
        data = self.dir / "srv" / "chatd"
        result = subprocess.run(self.argv(data, "-n"), capture_output=True, text=True,
                                timeout=DEADLINE)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(f"chatd: not creatable by nobody: install -d -o nobody -g {self.group}"
                      f" {data} (the data directory: Permission denied)", result.stdout)
        self.assertNotIn("Traceback", result.stdout + result.stderr)

    def test_root_owned_dir_refused_in_daemon_mode(self):
        """Daemonized, the terminal shows the whole fix, the log has one line, status 1.

        twistd passes the error to the terminal cut at 100 bytes: for a path
        as long as /srv/chatd or /var/lib/chatd the command still fits.
        """
        data = Path(tempfile.mkdtemp(prefix="c", dir="/tmp"))  # /tmp/cXXXXXXXX, root's
        self.addCleanup(shutil.rmtree, data)
        self.assertEqual(len(str(data)), len("/var/lib/chatd"))
        logfile = self.dir / "chatd.log"
        result = subprocess.run(self.argv(data, "--logfile", str(logfile)),
                                capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(f"not writable by nobody: install -d -o nobody -g {self.group} {data}",
                      result.stderr)
        wait_for(lambda: "chatd: not writable by" in logfile.read_text(), "the log line")
        log = logfile.read_text()
        self.assertEqual(len([line for line in log.splitlines() if str(data) in line]), 1, log)
        self.assertNotIn("Traceback", log)

    def test_root_owned_file_refused(self):
        """An admins file left by a run as root is named, with the chown that fixes it."""
        data = self.dir / "chatd"
        data.mkdir()
        shutil.chown(data, USER, self.group)
        (data / "admins").write_text("")
        (data / "admins").chmod(0o600)
        result = subprocess.run(self.argv(data, "-n"), capture_output=True, text=True,
                                timeout=DEADLINE)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(f"chatd: not writable by nobody: chown nobody:{self.group}"
                      f" {data / 'admins'} (Permission denied)", result.stdout)

    def test_root_owned_dir_refused_under_euid(self):
        """`twistd --euid` keeps root as the real uid: the check is made as nobody anyway.

        os.access asked about the real uid, let the start go on, and the first
        write of the admins file then failed with a traceback.
        """
        data = self.dir / "chatd"
        data.mkdir()
        result = subprocess.run(self.argv(data, "-n", "--euid"), capture_output=True,
                                text=True, timeout=DEADLINE)
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 1, output)
        self.assertIn(f"chatd: not writable by nobody: install -d -o nobody -g {self.group}"
                      f" {data}", output)
        self.assertNotIn("Traceback", output)


    def test_chatd_admin_as_root_keeps_the_owner(self):
        """chatd-admin run by root leaves the admins file readable by the nobody chatd."""
        data = self.dir / "chatd"
        data.mkdir()
        shutil.chown(data, USER, self.group)
        subprocess.run([str(Path(TWISTD).parent / "chatd-admin"), "--data-dir", str(data),
                        "add", "boss"], input="long enough password\n", text=True,
                       check=True, capture_output=True, timeout=DEADLINE)
        self.assertEqual((data / "admins").stat().st_uid, self.uid)
        self.start(data)
        login(self.port, "boss", "long enough password").close()

    def test_chatd_admin_add_user_as_root_keeps_the_owner(self):
        """chatd-admin add-user run by root leaves the users file to the nobody chatd, 0600."""
        data = self.dir / "chatd"
        data.mkdir()
        shutil.chown(data, USER, self.group)
        result = self.chatd_admin_add(data, "alice", command="add-user")
        self.assertEqual(result.returncode, 0, result.stderr)
        st = (data / "users").stat()
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (self.uid, 0o600))

    def chatd_admin_add(self, data: Path, name: str,
                        command: str = "add") -> subprocess.CompletedProcess:
        return subprocess.run([str(Path(TWISTD).parent / "chatd-admin"), "--data-dir",
                               str(data), command, name], input="long enough password\n",
                              text=True, capture_output=True, timeout=DEADLINE)

    def test_chatd_admin_as_root_follows_no_planted_link(self):
        """A link the service user plants in its data dir cannot make root's chatd-admin
        hand it another file: the file linked to stays as it was, admins is a new file.
        """
        data = self.dir / "chatd"
        data.mkdir()
        shutil.chown(data, USER, self.group)
        victim = self.dir / "victim"
        victim.write_text("secret\n")
        victim.chmod(0o644)
        (data / "admins.tmp").symlink_to(victim)
        os.lchown(data / "admins.tmp", self.uid, -1)
        result = self.chatd_admin_add(data, "alice")
        self.assertEqual(result.returncode, 0, result.stderr)
        st = victim.stat()
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o644))
        self.assertEqual(victim.read_text(), "secret\n")
        admins = data / "admins"
        self.assertFalse(admins.is_symlink())
        self.assertTrue(admins.is_file())
        self.assertEqual(admins.stat().st_uid, self.uid)
        self.assertTrue(admins.read_text().startswith("alice:scrypt$"))

    def test_chatd_admin_as_root_follows_no_linked_data_dir(self):
        """The service user swaps its data dir for a link to a root-only
        directory: root's chatd-admin refuses it and the file there is untouched."""
        parent = self.dir / "svc"
        parent.mkdir()
        shutil.chown(parent, USER, self.group)
        rootonly = self.dir / "rootonly"
        rootonly.mkdir(mode=0o700)
        (rootonly / "admins").write_text("keep:me\n")
        (parent / "var").symlink_to(rootonly)
        os.lchown(parent / "var", self.uid, -1)
        result = self.chatd_admin_add(parent / "var", "bob")
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("symbolic link", result.stderr)
        self.assertEqual((rootonly / "admins").read_text(), "keep:me\n")

    def test_chatd_admin_as_root_makes_the_data_dir_for_chatd(self):
        """chatd-admin run as root before the first start makes the data dir chatd can use.

        It is created with the owner of the directory it is made in (as the
        admins file is) and mode 0700, so `twistd --uid nobody` then starts.
        """
        parent = self.dir / "srv"
        parent.mkdir()
        shutil.chown(parent, USER, self.group)
        data = parent / "chatd"
        result = self.chatd_admin_add(data, "boss")
        self.assertEqual(result.returncode, 0, result.stderr)
        st = data.stat()
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (self.uid, 0o700))
        self.start(data)
        login(self.port, "boss", "long enough password").close()
