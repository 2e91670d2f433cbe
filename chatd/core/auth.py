"""Admin accounts: salted scrypt hashes in DATA_DIR/admins, and a cred checker.

The file holds one `name:hash` line per admin and is written with mode 0600.
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

from twisted.cred import checkers, credentials, error, portal
from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import Interface, implementer

from chatd import safefile
from chatd.core.text import name_key, valid_name

log = Logger()

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
# The account a first run creates, and where its password waits (not in a log).
FIRST_ADMIN = "admin"
INITIAL_PASSWORD_FILE = "initial-admin-password"


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


class AdminFile:
    """DATA_DIR/admins.  Re-read when it changes, so chatd-admin needs no restart."""

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
                log.error("cannot read {path}, admin accounts stay as last read: {why}",
                          path=str(self.path), why=str(e))
            return self._hashes
        self._complaint = None
        return hashes

    def is_admin(self, name: str) -> bool:
        return name_key(name) in self._in_use()

    def hash_for(self, name: str) -> str | None:
        entry = self._in_use().get(name_key(name))
        return entry[1] if entry else None

    @property
    def initial_password_path(self) -> Path:
        """Where a first run leaves the password of FIRST_ADMIN when no terminal shows it."""
        return self.path.with_name(INITIAL_PASSWORD_FILE)

    def set_password(self, name: str, password: str) -> None:
        self.set_hash(name, hash_password(password))

    def set_hash(self, name: str, hashed: str) -> None:
        """Store a hash made by hash_password() for name, as set_password does.

        For a hash computed elsewhere, e.g. with cheap scrypt parameters in
        tests (the hash string carries its parameters, so it still verifies).
        """
        if not valid_name(name):
            raise ValueError(f"invalid admin name: {name!r}")
        entries = dict(self._load())
        entries[name_key(name)] = (name, hashed)
        self._write(entries)
        self._forget_initial_password(name)

    def remove(self, name: str) -> bool:
        entries = dict(self._load())
        if entries.pop(name_key(name), None) is None:
            return False
        self._write(entries)
        self._forget_initial_password(name)
        return True

    def _forget_initial_password(self, name: str) -> None:
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


def ensure_first_admin(admins: AdminFile) -> str | None:
    """With no admins at all, create `admin` with a random password and return it."""
    if admins.names():
        return None
    password = secrets.token_urlsafe(12)
    admins.set_password(FIRST_ADMIN, password)
    return password


class IChatAdmin(Interface):
    """The avatar of a person who proved they are an admin."""


@implementer(IChatAdmin)
class Admin:
    def __init__(self, name: str):
        self.name = name


@implementer(portal.IRealm)
class AdminRealm:
    def requestAvatar(self, avatarId, mind, *interfaces):
        if IChatAdmin not in interfaces:
            raise NotImplementedError("chatd only knows IChatAdmin")
        name = avatarId.decode("utf-8") if isinstance(avatarId, bytes) else avatarId
        return IChatAdmin, Admin(name), lambda: None


@implementer(checkers.ICredentialsChecker)
class AdminChecker:
    """Checks IUsernamePassword against the admins file.

    scrypt is deliberately slow, so `run_blocking(fn, *args)` runs it off the
    reactor thread (deferToThread in the daemon; tests may run it inline).
    """

    credentialInterfaces = (credentials.IUsernamePassword,)

    def __init__(self, admins: AdminFile,
                 run_blocking: Callable[..., defer.Deferred] | None = None):
        self._admins = admins
        if run_blocking is None:
            from twisted.internet.threads import deferToThread as run_blocking
        self._run_blocking = run_blocking

    def requestAvatarId(self, creds):
        username = creds.username
        if isinstance(username, bytes):
            username = username.decode("utf-8")
        password = creds.password
        if isinstance(password, bytes):
            password = password.decode("utf-8")
        stored = self._admins.hash_for(username)
        if stored is None:
            return defer.fail(error.UnauthorizedLogin())

        def checked(ok):
            if ok:
                return username
            raise error.UnauthorizedLogin()

        d = self._run_blocking(verify_password, password, stored)
        return d.addCallback(checked)


def make_portal(admins: AdminFile, run_blocking=None) -> portal.Portal:
    return portal.Portal(AdminRealm(), [AdminChecker(admins, run_blocking)])
