"""chatd-admin: manage admin accounts (DATA_DIR/admins) and registered names (DATA_DIR/users).

    chatd-admin [--data-dir DIR] add NAME           set (or change) admin NAME's password
    chatd-admin [--data-dir DIR] remove NAME
    chatd-admin [--data-dir DIR] list
    chatd-admin [--data-dir DIR] add-user NAME      register NAME, or change its password
    chatd-admin [--data-dir DIR] remove-user NAME
    chatd-admin [--data-dir DIR] list-users

`add` and `add-user` ask twice, without echo, on a terminal; otherwise they
read one line from standard input.  A running chatd sees the change at the
next login.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import stat
import sys
from pathlib import Path

from chatd.core.auth import MIN_PASSWORD, AccountFile, AdminFile, UserFile
from chatd.core.text import NAME_RULE, name_key, valid_name
from chatd.safefile import UnsafeFile


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
        # admins or users file that is not UTF-8: one line.
        print(f"chatd-admin: {e}; nothing changed", file=sys.stderr)
        return 1


# Each subcommand: (what it does, for --help, and the account file it works on).
_COMMANDS = {
    "add": ("add an admin, or change their password", "admins"),
    "remove": ("remove an admin", "admins"),
    "list": ("list admins", "admins"),
    "add-user": ("register a name (it then needs its password to log in),"
                 " or change its password", "users"),
    "remove-user": ("remove a registered name: anyone may use it again", "users"),
    "list-users": ("list registered names", "users"),
}

_PASSWORD_HELP = (f"The password (at least {MIN_PASSWORD} characters) is asked twice, without"
                  " echo, at a terminal; otherwise it is read as one line from standard input.")


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="chatd-admin", description="Manage chatd admin accounts and registered names."
    )
    parser.add_argument("--data-dir", default="var",
                        help="chatd's data directory (default: var)")
    sub = parser.add_subparsers(dest="command", required=True)
    for command, (what, _) in _COMMANDS.items():
        sub_parser = sub.add_parser(command, help=what,
                                    description=f"chatd-admin {command}: {what}.",
                                    epilog=_PASSWORD_HELP if command.startswith("add") else None)
        if not command.startswith("list"):
            sub_parser.add_argument("name", help=NAME_RULE)
    args = parser.parse_args(argv)

    with _as_owner_of(Path(args.data_dir)):
        return _act(args, parser)


def _act(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    data_dir = Path(args.data_dir)
    admins = AdminFile(data_dir / "admins")
    accounts = admins if _COMMANDS[args.command][1] == "admins" else UserFile(data_dir / "users")
    kind = accounts.kind
    if args.command.startswith("list"):
        for name in accounts.names():
            print(name)
        return 0
    if not valid_name(args.name):
        parser.error(f"invalid name {args.name!r}: use {NAME_RULE}")
    if args.command.startswith("remove"):
        if not accounts.remove(args.name):
            print(f"chatd-admin: no {kind} named {args.name}", file=sys.stderr)
            return 1
        print(f"removed {kind} {args.name}")
        return 0
    if accounts is not admins and _listed(admins, args.name):
        print(f"chatd-admin: {args.name} is an admin and logs in with the admin password"
              f" (chatd-admin add {args.name} changes it); nothing changed", file=sys.stderr)
        return 1
    password = _read_password()
    if len(password) < MIN_PASSWORD:
        print(f"chatd-admin: a password needs at least {MIN_PASSWORD} characters;"
              " nothing changed", file=sys.stderr)
        return 1
    existed = _listed(accounts, args.name)
    accounts.set_password(args.name, password)
    print(f"{'changed password of' if existed else 'added'} {kind} {args.name}")
    return 0


def _listed(accounts: AccountFile, name: str) -> bool:
    """Whether name has an account; unlike a login, an unsafe file is an error here."""
    return name_key(name) in {name_key(listed) for listed in accounts.names()}


if __name__ == "__main__":
    sys.exit(main())
