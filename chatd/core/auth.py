"""Accounts: salted scrypt hashes in DATA_DIR/admins and DATA_DIR/users, cred checkers.

Each file holds one `name:hash` line per account and is written with mode 0600.
A hash string carries its own parameters
(`scrypt$N$r$p$salt$hash`, base64 parts), so they can be raised later
without breaking old entries.  No password is ever stored or logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from twisted.cred import checkers, credentials, error
from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from chatd import safefile
from chatd.core.text import NAME_RULE, name_key, valid_name

log = Logger()

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
# The account a first run creates, and where its password waits (not in a log).
FIRST_ADMIN = "admin"
INITIAL_PASSWORD_FILE = "initial-admin-password"
# The shortest password chatd-admin and /register accept.
MIN_PASSWORD = 8


def hash_password(password: str, n: int = SCRYPT_N, r: int = SCRYPT_R,
                  p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                            maxmem=256 * 1024 * 1024)
    b64 = lambda raw: base64.b64encode(raw).decode("ascii")  # noqa: E731
    return f"scrypt${n}${r}${p}${b64(salt)}${b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True if password matches stored; the comparison takes constant time."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        expected_raw = base64.b64decode(expected)
        digest = hashlib.scrypt(
            password.encode("utf-8"), salt=base64.b64decode(salt),
            n=int(n), r=int(r), p=int(p), dklen=len(expected_raw),
            maxmem=256 * 1024 * 1024,
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest, expected_raw)


class AccountFile:
    """A file of `name:hash` lines, one account each (admins, registered users).

    Re-read when it changes, so chatd-admin needs no restart.  Written
    atomically with mode 0600 through chatd.safefile, never through a link.
    """

    # Who the accounts belong to, in log lines and errors: "admin", "registered user".
    kind = "account"

    def __init__(self, path: Path):
        self.path = Path(path)
        self._stamp: tuple | None = None
        self._hashes: dict[str, tuple[str, str]] = {}
        self._complaint: str | None = None  # why the file last failed to read

    def _load(self) -> dict[str, tuple[str, str]]:
        try:
            st = self.path.lstat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            text = safefile.read_text(self.path) if stamp != self._stamp else ""
        except FileNotFoundError:
            self._stamp, self._hashes = None, {}
            return self._hashes
        if stamp != self._stamp:
            hashes = {}
            for line in text.splitlines():
                name, sep, hashed = line.strip().partition(":")
                if sep and valid_name(name):
                    hashes[name_key(name)] = (name, hashed)
            self._stamp, self._hashes = stamp, hashes
        return self._hashes

    def reread(self) -> list[str]:
        """Read the file again even if it looks unchanged (on reload); the names."""
        self._stamp = None
        return self.names()

    def names(self) -> list[str]:
        """Every name in the file, sorted; raises if the file cannot be read safely."""
        return sorted((name for name, _ in self._load().values()), key=str.lower)

    def _in_use(self) -> dict[str, tuple[str, str]]:
        """The accounts for a login: the file as it is, or, if it has become
        unreadable or unsafe (a link, a second hard link, not UTF-8), what it
        said when it last read well.  A login never fails because of it; the
        log says so once per problem."""
        try:
            hashes = self._load()
        except (OSError, ValueError) as e:
            if str(e) != self._complaint:
                self._complaint = str(e)
                log.error("cannot read {path}, {kind} accounts stay as last read: {why}",
                          path=str(self.path), kind=self.kind, why=str(e))
            return self._hashes
        self._complaint = None
        return hashes

    def _has(self, name: str) -> bool:
        return name_key(name) in self._in_use()

    def hash_for(self, name: str) -> str | None:
        entry = self._in_use().get(name_key(name))
        return entry[1] if entry else None

    def set_password(self, name: str, password: str) -> None:
        self.set_hash(name, hash_password(password))

    def set_hash(self, name: str, hashed: str) -> None:
        """Store a hash made by hash_password() for name, as set_password does.

        For a hash computed elsewhere: off the reactor thread (register()),
        or with cheap scrypt parameters in tests (the hash string carries its
        parameters, so it still verifies).
        """
        if not valid_name(name):
            raise ValueError(f"invalid {self.kind} name: {name!r}")
        entries = dict(self._load())
        entries[name_key(name)] = (name, hashed)
        self._write(entries)
        self._changed(name)

    def remove(self, name: str) -> bool:
        """Delete name's account; False if there was none."""
        entries = dict(self._load())
        if entries.pop(name_key(name), None) is None:
            return False
        self._write(entries)
        self._changed(name)
        return True

    def _changed(self, name: str) -> None:
        """Called after name's account was set or removed."""

    def _write(self, entries: dict[str, tuple[str, str]]) -> None:
        """Replace the file atomically; it is never readable by others.

        chatd-admin is often run by root on a directory chatd's own user
        owns, so both the directory (when missing) and the file take the
        owner of the directory they are made in, and no link is followed.
        """
        safefile.make_dirs(self.path.parent, like_parent=True)
        safefile.replace_text(self.path, "".join(
            f"{name}:{hashed}\n" for name, hashed in sorted(entries.values())))
        self._stamp = None


class AdminFile(AccountFile):
    """DATA_DIR/admins, and the first-run password of FIRST_ADMIN."""

    kind = "admin"

    def is_admin(self, name: str) -> bool:
        return self._has(name)

    @property
    def initial_password_path(self) -> Path:
        """Where a first run leaves the password of FIRST_ADMIN when no terminal shows it."""
        return self.path.with_name(INITIAL_PASSWORD_FILE)

    def _changed(self, name: str) -> None:
        """The first-run password is spent once FIRST_ADMIN's changes: delete its file."""
        if name_key(name) == name_key(FIRST_ADMIN):
            self.initial_password_path.unlink(missing_ok=True)

    def save_initial_password(self, password: str) -> Path:
        """Write FIRST_ADMIN's first-run password to its file, readable by its owner only."""
        path = self.initial_password_path
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(password + "\n")
        return path


class UserFile(AccountFile):
    """DATA_DIR/users: names protected by a password (/register, chatd-admin add-user)."""

    kind = "registered user"

    def is_registered(self, name: str) -> bool:
        return self._has(name)


def ensure_first_admin(admins: AdminFile) -> str | None:
    """With no admins at all, create `admin` with a random password and return it."""
    if admins.names():
        return None
    password = secrets.token_urlsafe(12)
    admins.set_password(FIRST_ADMIN, password)
    return password


class IRegisteredPassword(credentials.IUsernamePassword):
    """A name and password for a registered user's login, never an admin's.

    Its own interface, so that a portal hands it to UserChecker only: the
    same name and password as plain IUsernamePassword go to AdminChecker.
    """


@implementer(IRegisteredPassword)
class RegisteredPassword(credentials.UsernamePassword):
    """What a front end passes to portal.login for a registered name."""


class _PasswordChecker:
    """Checks a name and password against an AccountFile; the avatarId is the name.

    scrypt is deliberately slow, so `run_blocking(fn, *args)` runs it off the
    reactor thread (deferToThread in the daemon; tests may run it inline).
    """

    def __init__(self, accounts: AccountFile,
                 run_blocking: Callable[..., defer.Deferred] | None = None):
        self._accounts = accounts
        self._run_blocking = _or_thread(run_blocking)

    def requestAvatarId(self, creds) -> defer.Deferred:
        username = creds.username
        if isinstance(username, bytes):
            username = username.decode("utf-8")
        password = creds.password
        if isinstance(password, bytes):
            password = password.decode("utf-8")
        stored = self._accounts.hash_for(username)
        if stored is None:
            return defer.fail(error.UnauthorizedLogin())

        def checked(ok):
            if ok:
                return username
            raise error.UnauthorizedLogin()

        d = self._run_blocking(verify_password, password, stored)
        return d.addCallback(checked)


def _or_thread(run_blocking: Callable[..., defer.Deferred] | None
               ) -> Callable[..., defer.Deferred]:
    if run_blocking is None:
        from twisted.internet.threads import deferToThread as run_blocking
    return run_blocking


@implementer(checkers.ICredentialsChecker)
class AdminChecker(_PasswordChecker):
    """Checks IUsernamePassword against the admins file.

    A registered user's credentials (IRegisteredPassword) are refused even
    if a portal offers them here, so that no registered login becomes an
    admin's whatever order the portal tries its checkers in.
    """

    credentialInterfaces = (credentials.IUsernamePassword,)

    def __init__(self, admins: AdminFile,
                 run_blocking: Callable[..., defer.Deferred] | None = None):
        super().__init__(admins, run_blocking)

    def requestAvatarId(self, creds) -> defer.Deferred:
        if IRegisteredPassword.providedBy(creds):
            return defer.fail(error.UnauthorizedLogin())
        return super().requestAvatarId(creds)


@implementer(checkers.ICredentialsChecker)
class UserChecker(_PasswordChecker):
    """Checks IRegisteredPassword against the users file, as AdminChecker does admins."""

    credentialInterfaces = (IRegisteredPassword,)

    def __init__(self, users: UserFile,
                 run_blocking: Callable[..., defer.Deferred] | None = None):
        super().__init__(users, run_blocking)


def account_checkers(admins: AdminFile, users: UserFile,
                     run_blocking: Callable[..., defer.Deferred] | None = None) -> list:
    """The checkers for a Portal, in the order it must try them.

    A Portal gives credentials to the first checker whose interface they
    provide, and RegisteredPassword provides IUsernamePassword too: with
    AdminChecker first, every registered login would be refused.
    """
    return [UserChecker(users, run_blocking), AdminChecker(admins, run_blocking)]


def register(users: UserFile, name: str, password: str,
             run_blocking: Callable[..., defer.Deferred] | None = None) -> defer.Deferred:
    """Protect name with password (or change its password); fires once the file is written.

    scrypt runs through run_blocking (deferToThread by default), so the
    server keeps serving meanwhile; the file is then written on the calling
    (reactor) thread, where every other read and write of the users file
    happens.  Fails with ValueError, whose text can be shown to the user,
    for an invalid name or a password shorter than MIN_PASSWORD.
    """
    if not valid_name(name):
        return defer.fail(ValueError(f"invalid name {name!r}: use {NAME_RULE}"))
    if len(password) < MIN_PASSWORD:
        return defer.fail(ValueError(f"a password needs at least {MIN_PASSWORD} characters"))
    d = _or_thread(run_blocking)(hash_password, password)
    return d.addCallback(lambda hashed: users.set_hash(name, hashed))
