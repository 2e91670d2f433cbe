"""The data directory, made ready by the user chatd runs as.

twistd binds ports as root, then drops to `--uid`/`--gid`, then starts the
services.  Everything in DATA_DIR is created and opened after that drop, so
it belongs to the user that will write it for months; a directory that user
cannot write stops the start with one line (StartError) instead of failing
at the first admin login or the first /ban.
"""

from __future__ import annotations

import grp
import os
import pwd
import tempfile
from pathlib import Path

from twisted.logger import Logger

from chatd import safefile
from chatd.core.auth import FIRST_ADMIN, AdminFile

log = Logger()

# The files chatd reads and writes in DATA_DIR (SQLite adds its journals).
DATA_FILES = ("admins", "chatd.sqlite3", "chatd.sqlite3-journal",
              "chatd.sqlite3-wal", "chatd.sqlite3-shm")


class StartError(Exception):
    """chatd cannot start; the message is the one line the operator sees."""


def running_as() -> tuple[str, str]:
    """The names of the effective user and group (numbers when they have none)."""
    uid, gid = os.geteuid(), os.getegid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    return user, group


def prepare(path: Path) -> None:
    """Create path if missing; raise StartError unless this user can use it.

    Each check tries the real operation as this process (never os.access,
    which asks about the real uid: root's, under `twistd --euid`).  The
    messages put the fix near the front, because daemonized twistd shows
    the operator only the first 100 bytes of `chatd.datadir.StartError: ...`;
    the log line has all of it.
    """
    user, group = running_as()
    fix = f"install -d -o {user} -g {group} {path}"
    try:
        safefile.make_dirs(path)
    except OSError as e:
        raise StartError(f"not creatable by {user}: {fix} (the data directory:"
                         f" {e.strerror})") from e
    if not path.is_dir():
        raise StartError(f"not a directory: {path} (the data directory)")
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".chatd-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise StartError(f"not writable by {user}: {fix} (the data directory:"
                         f" {e.strerror})") from e
    for name in DATA_FILES:
        file = path / name
        # admins is read without following links (safefile): say so at start.
        nofollow = os.O_NOFOLLOW if name == "admins" else 0
        try:
            os.close(os.open(file, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY | nofollow))
        except FileNotFoundError:
            continue
        except OSError as e:
            if nofollow and file.is_symlink():
                raise StartError(f"a symbolic link: {file} (chatd reads only the"
                                 " file itself: replace the link with it)") from e
            raise StartError(f"not writable by {user}: chown {user}:{group} {file}"
                             f" ({e.strerror})") from e


def hand_over_first_password(admins: AdminFile, password: str, terminal: int = 2) -> None:
    """Give the operator the first-run admin password without writing it to a log.

    In the foreground on a terminal (`twistd -n`, `make run`) it is written to
    that terminal, past twisted.logger; otherwise (daemon, systemd, a pipe)
    it goes to a file only this user can read, and the log says where.
    """
    data_dir = admins.path.parent
    change = f"chatd-admin --data-dir {data_dir} add {FIRST_ADMIN}"
    if os.isatty(terminal):
        os.write(terminal, (
            "\n    No admin accounts existed, so chatd created one:\n"
            f"        name: {FIRST_ADMIN}    password: {password}\n"
            "    This is the only time the password is shown.  Change it with:\n"
            f"        {change}\n\n").encode())
        log.warn("No admin accounts existed: chatd created {name} and showed its"
                 " password on the terminal.  Change it with: {change}",
                 name=FIRST_ADMIN, change=change)
        return
    path = admins.save_initial_password(password)
    log.warn("No admin accounts existed: chatd created {name}; its password is in"
             " {path} (readable by {user} only, deleted when the password is"
             " changed).  Change it with: {change}",
             name=FIRST_ADMIN, path=str(path), user=running_as()[0], change=change)
