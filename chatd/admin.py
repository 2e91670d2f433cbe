"""chatd-admin: manage admin accounts in DATA_DIR/admins.

    chatd-admin [--data-dir DIR] add NAME      set (or change) NAME's password
    chatd-admin [--data-dir DIR] remove NAME
    chatd-admin [--data-dir DIR] list

`add` asks twice, without echo, on a terminal; otherwise it reads one line
from standard input.  A running chatd sees the change at the next login.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import stat
import sys
from pathlib import Path

from chatd.core.auth import AdminFile
from chatd.core.text import NAME_RULE, valid_name
from chatd.safefile import UnsafeFile

MIN_PASSWORD = 8


def _read_password(stdin=None) -> str:
    stdin = stdin or sys.stdin
    if stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise SystemExit("chatd-admin: the passwords differ; nothing changed")
        return first
    return stdin.readline().rstrip("\r\n")


@contextlib.contextmanager
def _as_owner_of(data_dir: Path):
    """Run as root, act as the user who owns the data directory (or the
    nearest directory above it that exists), so that nothing that user can
    plant there, a link to the directory itself included, makes root write
    or delete another file: the kernel checks every step as that user.

    A symbolic link on the way that root does not own is refused outright.
    """
    if os.geteuid() != 0:
        yield
        return
    path = Path(os.path.abspath(data_dir))
    for step in [path, *path.parents]:
        try:
            st = os.lstat(step)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode) and st.st_uid != 0:
            raise UnsafeFile(f"{step} is a symbolic link that uid {st.st_uid} owns;"
                             " run as root, chatd-admin does not follow it")
    existing = next(step for step in [path, *path.parents] if step.exists())
    owner = os.stat(existing)
    if owner.st_uid == 0:
        yield
        return
    groups = os.getgroups()
    os.setgroups([owner.st_gid])  # root's own groups would still open doors
    os.setegid(owner.st_gid)
    os.seteuid(owner.st_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except (OSError, ValueError) as e:
        # A data dir it cannot write, a link planted in it (safefile), or an
        # admins file that is not UTF-8: one line.
        print(f"chatd-admin: {e}; nothing changed", file=sys.stderr)
        return 1


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="chatd-admin", description="Manage chatd admin accounts."
    )
    parser.add_argument("--data-dir", default="var",
                        help="chatd's data directory (default: var)")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add an admin, or change their password")
    add.add_argument("name")
    remove = sub.add_parser("remove", help="remove an admin")
    remove.add_argument("name")
    sub.add_parser("list", help="list admins")
    args = parser.parse_args(argv)

    with _as_owner_of(Path(args.data_dir)):
        return _act(args, parser)


def _act(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    admins = AdminFile(Path(args.data_dir) / "admins")
    if args.command == "list":
        for name in admins.names():
            print(name)
        return 0
    if not valid_name(args.name):
        parser.error(f"invalid name {args.name!r}: use {NAME_RULE}")
    if args.command == "remove":
        if not admins.remove(args.name):
            print(f"chatd-admin: no admin named {args.name}", file=sys.stderr)
            return 1
        print(f"removed admin {args.name}")
        return 0
    password = _read_password()
    if len(password) < MIN_PASSWORD:
        print(f"chatd-admin: a password needs at least {MIN_PASSWORD} characters;"
              " nothing changed", file=sys.stderr)
        return 1
    existed = admins.is_admin(args.name)
    admins.set_password(args.name, password)
    print(f"{'changed password of' if existed else 'added'} admin {args.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
