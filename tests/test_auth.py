"""Admin passwords: salted scrypt hashes, a private file, the cred checker."""

import os
import stat
from pathlib import Path

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.trial import unittest

from chatd.admin import main as admin_main
from chatd.core.auth import (
    AdminChecker,
    AdminFile,
    ensure_first_admin,
    hash_password,
    verify_password,
)
from tests.helpers import FAST, run_inline


class HashTests(unittest.TestCase):
    def test_hash_verifies_and_is_salted(self):
        """The same password hashes differently each time and still verifies."""
        a, b = hash_password("hunter22", **FAST), hash_password("hunter22", **FAST)
        self.assertNotEqual(a, b)
        self.assertTrue(a.startswith("scrypt$16$8$1$"))
        self.assertTrue(verify_password("hunter22", a))
        self.assertFalse(verify_password("hunter23", a))

    def test_garbage_hash_never_verifies(self):
        """A damaged entry in the admins file refuses, it does not crash."""
        for stored in ["", "plain", "scrypt$x$y$z$a$b", "md5$1$2$3$4$5"]:
            self.assertFalse(verify_password("anything", stored))


class AdminFileTests(unittest.TestCase):
    def setUp(self):
        self.dir = Path(self.mktemp())
        self.admins = AdminFile(self.dir / "admins")

    def test_file_private_and_without_password(self):
        """The admins file is mode 0600 and never contains the password."""
        self.admins.set_password("Boss", "correct horse")
        path = self.dir / "admins"
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertNotIn("correct horse", path.read_text())
        self.assertTrue(self.admins.is_admin("boss"))
        self.assertEqual(self.admins.names(), ["Boss"])

    def test_changes_seen_without_restart(self):
        """A second AdminFile on the same path (the daemon) sees chatd-admin's changes."""
        daemon_view = AdminFile(self.dir / "admins")
        self.assertFalse(daemon_view.is_admin("eve"))
        self.admins.set_password("eve", "long enough")
        self.assertTrue(daemon_view.is_admin("eve"))
        self.admins.remove("eve")
        self.assertFalse(daemon_view.is_admin("eve"))

    def test_first_admin_created_once(self):
        """With no admins, 'admin' gets a random password, once."""
        password = ensure_first_admin(self.admins)
        self.assertGreaterEqual(len(password), 16)
        self.assertTrue(verify_password(password, self.admins.hash_for("admin")))
        self.assertIsNone(ensure_first_admin(self.admins))

    def test_initial_password_file_spent_by_a_change(self):
        """The first-run password file is 0600 and goes once admin's password changes."""
        password = ensure_first_admin(self.admins)
        path = self.admins.save_initial_password(password)
        self.assertEqual(path, self.dir / "initial-admin-password")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(path.read_text(), password + "\n")
        self.admins.set_password("boss", "another password")
        self.assertTrue(path.exists(), "another admin's password leaves it")
        self.admins.set_password("Admin", "a new password")
        self.assertFalse(path.exists())


class CheckerTests(unittest.TestCase):
    def setUp(self):
        self.admins = AdminFile(Path(self.mktemp()) / "admins")
        self.admins.set_password("boss", "right password")
        self.checker = AdminChecker(self.admins, run_inline)

    def test_right_password(self):
        """The right password yields the admin's name."""
        d = self.checker.requestAvatarId(UsernamePassword(b"boss", b"right password"))
        self.assertEqual(self.successResultOf(d), "boss")

    def test_wrong_password_or_user(self):
        """A wrong password, or a name that is no admin, is unauthorized."""
        for creds in [UsernamePassword(b"boss", b"wrong"), UsernamePassword(b"bob", b"x")]:
            self.failureResultOf(self.checker.requestAvatarId(creds), UnauthorizedLogin)

    def test_default_runs_in_a_thread(self):
        """By default scrypt runs off the reactor thread and the answer comes back."""
        checker = AdminChecker(self.admins)
        d = checker.requestAvatarId(UsernamePassword(b"boss", b"right password"))
        return d.addCallback(self.assertEqual, "boss")


class AdminCommandTests(unittest.TestCase):
    def setUp(self):
        self.dir = Path(self.mktemp())

    def run_admin(self, *argv, stdin=""):
        import io
        import sys

        out, err = io.StringIO(), io.StringIO()
        self.patch(sys, "stdin", io.StringIO(stdin))
        self.patch(sys, "stdout", out)
        self.patch(sys, "stderr", err)
        code = admin_main(["--data-dir", str(self.dir), *argv])
        return code, out.getvalue(), err.getvalue()

    def test_add_list_remove(self):
        """chatd-admin adds (reading the password from a pipe), lists and removes."""
        self.assertEqual(self.run_admin("add", "boss", stdin="a good password\n")[0], 0)
        self.assertEqual(self.run_admin("list")[1], "boss\n")
        admins = AdminFile(self.dir / "admins")
        self.assertTrue(verify_password("a good password", admins.hash_for("boss")))
        code, out, _ = self.run_admin("add", "boss", stdin="another password\n")
        self.assertEqual((code, out), (0, "changed password of admin boss\n"))
        self.assertEqual(self.run_admin("remove", "boss")[0], 0)
        self.assertEqual(self.run_admin("list")[1], "")
        self.assertEqual(self.run_admin("remove", "boss")[0], 1)

    def test_short_password_refused(self):
        """A password under 8 characters is refused and nothing is written."""
        code, _, err = self.run_admin("add", "boss", stdin="short\n")
        self.assertEqual(code, 1)
        self.assertIn("at least 8", err)
        self.assertFalse((self.dir / "admins").exists())
