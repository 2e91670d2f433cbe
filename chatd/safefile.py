"""Reading and replacing files in a directory that another user may control.

chatd's data directory belongs to the user chatd runs as, but `chatd-admin`
is often run by root.  Whoever owns the directory can put symbolic links
(or hard links) in it, so every call here that root could make works on
open file descriptors, never follows a link in the last component, and
creates files under fresh random names with O_EXCL: a link planted in the
directory cannot make root read, chown, chmod or overwrite another file.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path


class UnsafeFile(OSError):
    """A data file is a link or not a regular file: it is refused, not followed."""


def read_text(path: Path) -> str:
    """The text of a regular file at path; FileNotFoundError if there is none.

    A symbolic link, a FIFO, a device or a file with a second hard link
    raises UnsafeFile: it could be another file's content under this name.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        if os.path.islink(path):
            raise UnsafeFile(f"{path} is a symbolic link; chatd does not follow"
                             " one there: replace it with the file itself") from e
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(f"{path} is not a regular file")
        if st.st_nlink != 1:
            raise UnsafeFile(f"{path} has another hard link; chatd does not read it:"
                             " replace it with a copy")
        return f.read().decode("utf-8")


def replace_text(path: Path, text: str) -> None:
    """Replace path atomically with a new file holding text, mode 0600.

    The new file is created under a random name with O_EXCL in the same
    directory (opened once, so the directory cannot be swapped midway),
    written, synced, then renamed over path: a link at path is replaced,
    not followed.  Run as root, the file is given the directory's owner
    (through its descriptor), so the chatd that owns the directory can read it.
    """
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        tmp = f".{path.name}.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                     dir_fd=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fchmod(f.fileno(), 0o600)
                if os.geteuid() == 0:
                    owner = os.fstat(directory)
                    os.fchown(f.fileno(), owner.st_uid, owner.st_gid)
                os.fsync(f.fileno())
            os.replace(tmp, path.name, src_dir_fd=directory, dst_dir_fd=directory)
        except BaseException:
            os.unlink(tmp, dir_fd=directory)
            raise
        os.fsync(directory)
    finally:
        os.close(directory)


def make_dirs(path: Path, like_parent: bool = False) -> None:
    """Create path and any missing parents; path itself gets mode 0700.

    With like_parent (and when running as root), each directory created
    takes the owner and group of the directory it is created in, the rule
    the admins file follows: root preparing a data dir under the service
    user's directory leaves it to that user.  Ownership and mode are set
    through a descriptor opened without following links.
    """
    path = Path(os.path.abspath(path))
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        parent = os.open(directory.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            try:
                os.mkdir(directory.name, 0o700, dir_fd=parent)
            except FileExistsError:
                continue  # made meanwhile (another chatd-admin): leave it as it is
            fd = os.open(directory.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                         dir_fd=parent)
            try:
                if like_parent and os.geteuid() == 0:
                    owner = os.fstat(parent)
                    os.fchown(fd, owner.st_uid, owner.st_gid)
                os.fchmod(fd, 0o700 if directory == missing[0] else 0o755)
            finally:
                os.close(fd)
        finally:
            os.close(parent)
