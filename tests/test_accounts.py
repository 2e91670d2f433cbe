"""Registered names: DATA_DIR/users, registering from the server, their cred checker,
and chatd-admin's add-user, remove-user and list-users."""

import os
import stat
import sys
from pathlib import Path

from twisted.cred import portal
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.logger import capturedLogs
from twisted.trial import unittest
from zope.interface import Interface, implementer

from chatd.core.auth import (
    AdminFile,
    RegisteredPassword,
    UserChecker,
    UserFile,
    account_checkers,
    hash_password,
    register,
    verify_password,
)
from chatd.safefile import UnsafeFile
from tests import test_auth
from tests.helpers import FAST, run_inline


class UserFileTests(unittest.TestCase):
    def setUp(self):
        self.dir = Path(self.mktemp())
        self.users = UserFile(self.dir / "users")

    def test_file_private_and_without_password(self):
        """The users file is mode 0600, holds no password, and names match in any case."""
        self.users.set_password("Alice", "correct horse")
        path = self.dir / "users"
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertNotIn("correct horse", path.read_text())
        self.assertTrue(self.users.is_registered("alice"))
        self.assertTrue(verify_password("correct horse", self.users.hash_for("ALICE")))
        self.assertEqual(self.users.names(), ["Alice"])

    def test_changes_seen_without_restart(self):
        """The daemon's view of the file sees chatd-admin's additions and removals."""
        daemon_view = UserFile(self.dir / "users")
        self.assertFalse(daemon_view.is_registered("bob"))
        self.users.set_hash("bob", hash_password("long enough", **FAST))
        self.assertTrue(daemon_view.is_registered("bob"))
        self.assertTrue(self.users.remove("bob"))
        self.assertFalse(daemon_view.is_registered("bob"))
        self.assertFalse(self.users.remove("bob"), "nothing left to remove")

    def test_separate_from_admins(self):
        """A registered name is no admin, and an admin's name is not registered."""
        admins = AdminFile(self.dir / "admins")
        admins.set_hash("boss", hash_password("boss password", **FAST))
        self.users.set_hash("alice", hash_password("alice password", **FAST))
        self.assertEqual((admins.names(), self.users.names()), (["boss"], ["alice"]))
        self.assertFalse(admins.is_admin("alice"))
        self.assertFalse(self.users.is_registered("boss"))

    def test_invalid_name_refused(self):
        """A name no one could log in with is never written."""
        with self.assertRaises(ValueError) as caught:
            self.users.set_hash("no spaces", hash_password("x", **FAST))
        self.assertIn("invalid registered user name", str(caught.exception))
        self.assertFalse((self.dir / "users").exists())

    def test_unsafe_file_keeps_the_accounts_last_read(self):
        """A users file that becomes a hard link (a backup) still lets registered
        users log in as last read; a reload says it cannot read it, the log once."""
        self.users.set_hash("alice", hash_password("alice password", **FAST))
        self.assertTrue(self.users.is_registered("alice"))
        os.link(self.dir / "users", self.dir / "users.bak")
        self.assertRaises(UnsafeFile, self.users.reread)
        with capturedLogs() as events:
            self.assertTrue(self.users.is_registered("alice"))
            self.assertIsNotNone(self.users.hash_for("alice"))
        complaints = [e for e in events if "cannot read" in e.get("log_format", "")]
        self.assertEqual(len(complaints), 1, events)
        self.assertEqual(complaints[0]["kind"], "registered user")


class RegisterTests(unittest.TestCase):
    def setUp(self):
        self.users = UserFile(Path(self.mktemp()) / "users")

    def test_hash_off_the_reactor_then_written(self):
        """/register hands scrypt to run_blocking (a thread) and writes the file only
        when the hash comes back; the Deferred fires once it is written."""
        calls, pending = [], defer.Deferred()

        def run_blocking(fn, *args):
            calls.append((fn, args))
            return pending

        d = register(self.users, "Alice", "alice password", run_blocking)
        self.assertEqual(calls, [(hash_password, ("alice password",))])
        self.assertNoResult(d)
        self.assertFalse(self.users.is_registered("alice"))
        pending.callback(hash_password("alice password", **FAST))
        self.successResultOf(d)
        self.assertEqual(self.users.names(), ["Alice"])
        self.assertTrue(verify_password("alice password", self.users.hash_for("alice")))

    def test_in_a_thread_by_default(self):
        """Without run_blocking, register runs scrypt in a thread and still registers."""
        d = register(self.users, "alice", "alice password")
        return d.addCallback(lambda _: self.assertTrue(
            verify_password("alice password", self.users.hash_for("alice"))))

    def test_bad_name_or_short_password_refused(self):
        """An invalid name or a password under 8 characters fails with a message the
        user can be shown, and neither hashes nor writes anything."""
        for name, password, expected in [("no spaces", "long enough", "invalid name"),
                                         ("alice", "short", "at least 8 characters")]:
            d = register(self.users, name, password, lambda *a: self.fail("hashed"))
            failure = self.failureResultOf(d, ValueError)
            self.assertIn(expected, str(failure.value))
            self.assertNotIn(password, str(failure.value))
        self.assertFalse(self.users.path.exists())


@implementer(portal.IRealm)
class NameRealm:
    """A realm whose avatar is the name the checker vouched for."""

    def requestAvatar(self, avatarId, mind, *interfaces):
        return Interface, avatarId, lambda: None


class UserCheckerTests(unittest.TestCase):
    def setUp(self):
        directory = Path(self.mktemp())
        self.admins = AdminFile(directory / "admins")
        self.admins.set_hash("boss", hash_password("boss password", **FAST))
        self.users = UserFile(directory / "users")
        self.users.set_hash("alice", hash_password("alice password", **FAST))
        self.checker = UserChecker(self.users, run_inline)

    def test_right_password(self):
        """A registered user's right password yields their name."""
        d = self.checker.requestAvatarId(RegisteredPassword(b"alice", b"alice password"))
        self.assertEqual(self.successResultOf(d), "alice")

    def test_wrong_password_or_user(self):
        """A wrong password, or a name that is not registered (an admin's too), is refused."""
        for creds in [RegisteredPassword(b"alice", b"wrong password"),
                      RegisteredPassword(b"bob", b"alice password"),
                      RegisteredPassword(b"boss", b"boss password")]:
            self.failureResultOf(self.checker.requestAvatarId(creds), UnauthorizedLogin)

    def test_default_runs_in_a_thread(self):
        """By default scrypt runs off the reactor thread and the answer comes back."""
        d = UserChecker(self.users).requestAvatarId(
            RegisteredPassword(b"alice", b"alice password"))
        return d.addCallback(self.assertEqual, "alice")

    def login(self, checkers, creds):
        p = portal.Portal(NameRealm(), checkers)
        return p.login(creds, None, Interface)

    def test_portal_never_mixes_admins_and_registered_users(self):
        """Through a portal with account_checkers(), a registered user logs in with
        their password and an admin with theirs, but a registered user's password
        never passes as an admin login, nor an admin's as a registered one."""
        checkers = account_checkers(self.admins, self.users, run_inline)
        self.assertEqual(self.successResultOf(self.login(
            checkers, RegisteredPassword(b"alice", b"alice password")))[1], "alice")
        self.assertEqual(self.successResultOf(self.login(
            checkers, UsernamePassword(b"boss", b"boss password")))[1], "boss")
        for creds in [UsernamePassword(b"alice", b"alice password"),
                      RegisteredPassword(b"boss", b"boss password")]:
            self.failureResultOf(self.login(checkers, creds), UnauthorizedLogin)

    def test_admin_checker_first_refuses_registered_logins(self):
        """With the checkers in the wrong order, registered logins fail; none
        becomes an admin login, even for an admin's name and password."""
        checkers = list(reversed(account_checkers(self.admins, self.users, run_inline)))
        for creds in [RegisteredPassword(b"alice", b"alice password"),
                      RegisteredPassword(b"boss", b"boss password")]:
            self.failureResultOf(self.login(checkers, creds), UnauthorizedLogin)


class UserCommandTests(unittest.TestCase):
    """chatd-admin add-user, remove-user, list-users."""

    def setUp(self):
        self.dir = Path(self.mktemp())

    run_admin = test_auth.AdminCommandTests.run_admin

    def test_add_list_remove(self):
        """chatd-admin registers a name (password from a pipe), lists it, changes its
        password and removes it; the admins file is left alone."""
        self.assertEqual(self.run_admin("add-user", "alice", stdin="alice password\n"),
                         (0, "added registered user alice\n", ""))
        self.assertEqual(self.run_admin("list-users")[1], "alice\n")
        self.assertEqual(self.run_admin("list")[1], "", "alice is no admin")
        users = UserFile(self.dir / "users")
        self.assertTrue(verify_password("alice password", users.hash_for("alice")))
        self.assertEqual(self.run_admin("add-user", "Alice", stdin="another password\n")[:2],
                         (0, "changed password of registered user Alice\n"))
        self.assertTrue(verify_password("another password", users.hash_for("alice")))
        self.assertEqual(self.run_admin("remove-user", "alice")[:2],
                         (0, "removed registered user alice\n"))
        self.assertEqual(self.run_admin("list-users")[1], "")
        self.assertEqual(self.run_admin("remove-user", "alice"),
                         (1, "", "chatd-admin: no registered user named alice\n"))
        self.assertFalse((self.dir / "admins").exists())

    def test_admin_name_refused(self):
        """add-user of an admin's name is refused, saying how to change the admin's
        password instead; nothing is read or written."""
        self.run_admin("add", "boss", stdin="boss password\n")
        code, _, err = self.run_admin("add-user", "BOSS", stdin="user password\n")
        self.assertEqual(code, 1)
        self.assertIn("BOSS is an admin", err)
        self.assertIn("chatd-admin add BOSS", err)
        self.assertFalse((self.dir / "users").exists())

    def test_short_password_or_bad_name_refused(self):
        """A password under 8 characters, or an invalid name, writes nothing."""
        code, _, err = self.run_admin("add-user", "alice", stdin="short\n")
        self.assertEqual(code, 1)
        self.assertIn("at least 8", err)
        with self.assertRaises(SystemExit):
            self.run_admin("add-user", "no spaces", stdin="long enough\n")
        self.assertFalse((self.dir / "users").exists())

    def test_symlinked_users_file_refused(self):
        """chatd-admin refuses a users file that is a link, in one line, and leaves
        the file it points to alone."""
        self.dir.mkdir()
        victim = self.dir / "victim"
        victim.write_text("root:secret\n")
        (self.dir / "users").symlink_to(victim)
        for argv in (["add-user", "alice"], ["list-users"], ["remove-user", "root"]):
            code, _, err = self.run_admin(*argv, stdin="alice password\n")
            self.assertEqual(code, 1, argv)
            self.assertIn("is a symbolic link", err)
            self.assertEqual(len(err.splitlines()), 1, err)
        self.assertEqual(victim.read_text(), "root:secret\n")
        self.assertTrue((self.dir / "users").is_symlink())

    def test_help_says_what_each_does(self):
        """`chatd-admin add-user --help` (and the others) say what the command does."""
        for command, expected in [("add-user", "register a name"),
                                  ("remove-user", "remove a registered name"),
                                  ("list-users", "list registered names")]:
            with self.assertRaises(SystemExit):
                self.run_admin(command, "--help")
            self.assertIn(expected, sys.stdout.getvalue())
