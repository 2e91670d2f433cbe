"""Bans, kept in memory for lookups and written through to SQLite.

The room asks "is this name banned?" on every login, so lookups come from a
dict.  Changes go to the database first, through a runner that does the
blocking work off the reactor thread (adbapi's pool in the daemon), and the
dict changes only once the database has committed.  So a ban the room
has announced survives a crash.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from twisted.enterprise import adbapi
from twisted.internet import defer

from chatd.core.journal import Journal, prune
from chatd.core.text import name_key

# Schema versions, kept in PRAGMA user_version.  Append; never edit.
MIGRATIONS = [
    """
    CREATE TABLE bans (
        key TEXT PRIMARY KEY,        -- the banned name, lower-cased
        name TEXT NOT NULL,          -- as the admin typed it
        by_admin TEXT NOT NULL,
        reason TEXT NOT NULL,
        created REAL NOT NULL,       -- seconds since the epoch
        expires REAL                 -- NULL: never
    )
    """,
    # 2: a ban may also cover the address the user was connected from.
    "ALTER TABLE bans ADD COLUMN address TEXT",
    # 3: the moderation journal (chatd.core.journal), newest rows by id.
    """
    CREATE TABLE modlog (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,            -- seconds since the epoch
        action TEXT NOT NULL,        -- kick, ban, unban, mute, unmute, disconnect
        actor TEXT NOT NULL,         -- the admin, or 'server'
        target TEXT NOT NULL,
        reason TEXT NOT NULL,        -- the admin's reason or the server's cause
        expires REAL,                -- timed bans and mutes; NULL otherwise
        address TEXT                 -- a ban's address, if it has one
    )
    """,
    # 4: room history (chatd.core.history), the newest rows of each room by id.
    """
    CREATE TABLE history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        room TEXT NOT NULL,          -- the room's key: its name lower-cased
        at REAL NOT NULL,            -- seconds since the epoch
        kind TEXT NOT NULL,          -- message or action
        name TEXT NOT NULL,          -- who said it
        text TEXT NOT NULL
    );
    CREATE INDEX history_room ON history (room, id)
    """,
]


class SchemaTooNew(Exception):
    """The database was written by a newer chatd."""


@dataclass(frozen=True)
class Ban:
    name: str
    by_admin: str
    reason: str
    created: float
    expires: float | None = None
    address: str | None = None

    @property
    def key(self) -> str:
        return name_key(self.name)

    def active(self, now: float) -> bool:
        return self.expires is None or now < self.expires


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to date, in one transaction per version."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise SchemaTooNew(
            f"database schema version {version} is newer than this chatd "
            f"understands ({len(MIGRATIONS)})"
        )
    for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
        with conn:
            conn.executescript(f"BEGIN; {sql}; PRAGMA user_version = {number};")


def load_bans(conn: sqlite3.Connection, now: float) -> dict[str, Ban]:
    """The bans in force; expired ones are deleted on the way."""
    with conn:
        conn.execute("DELETE FROM bans WHERE expires IS NOT NULL AND expires <= ?", (now,))
    rows = conn.execute(
        "SELECT name, by_admin, reason, created, expires, address FROM bans"
    ).fetchall()
    return {name_key(row[0]): Ban(*row) for row in rows}


Runner = Callable[[Callable[[sqlite3.Connection], object]], defer.Deferred]


def _not_open(fn: Callable[[sqlite3.Connection], object]) -> defer.Deferred:
    return defer.fail(RuntimeError("the ban database is not open yet"))


class BanStore:
    """The ban list.  `run(fn)` calls fn(connection) and commits, as a Deferred.

    The moderation journal (`store.journal`) and the room history
    (chatd.core.history) live in the same database and go through the same
    runner: one pool, one writer on the file.
    """

    def __init__(self, run: Runner, bans: dict[str, Ban], close=lambda: None):
        self._run = run
        self._bans = bans
        self._close = close
        self.journal = Journal(self.run)

    @classmethod
    def open(cls, path: Path, now: float | None = None) -> BanStore:
        """Open (creating or migrating) the database; reads happen here, once."""
        store = cls.unopened()
        store.open_file(path, now)
        return store

    @classmethod
    def unopened(cls) -> BanStore:
        """An empty store that refuses changes until `open_file`.

        The daemon builds its room before twistd drops privileges but opens
        the database only after, so the file belongs to the user chatd runs as.
        """
        return cls(_not_open, {})

    def open_file(self, path: Path, now: float | None = None) -> None:
        """Open (creating or migrating) the database at path and load its bans.

        This runs before the reactor starts, so it may block.
        """
        conn = sqlite3.connect(path)
        try:
            migrate(conn)
            bans = load_bans(conn, time.time() if now is None else now)
            prune(conn)
        finally:
            conn.close()
        pool = adbapi.ConnectionPool(
            "sqlite3", str(path), check_same_thread=False, cp_min=1, cp_max=1
        )
        self._run, self._bans, self._close = pool.runWithConnection, bans, pool.close

    @classmethod
    def in_memory(cls, conn: sqlite3.Connection | None = None) -> BanStore:
        """A store on one synchronous connection: for tests and tools."""
        conn = conn or sqlite3.connect(":memory:")
        migrate(conn)

        def run(fn):
            def call():
                result = fn(conn)
                conn.commit()
                return result

            return defer.maybeDeferred(call)

        return cls(run, load_bans(conn, 0.0), conn.close)

    def run(self, fn: Callable[[sqlite3.Connection], object]) -> defer.Deferred:
        """Call fn(connection) off the reactor thread and commit; fires with its result.

        Goes through self._run at each call, since open_file replaces the runner.
        """
        return self._run(fn)

    def get(self, name: str, now: float) -> Ban | None:
        """The ban on name in force at now, if any."""
        ban = self._bans.get(name_key(name))
        return ban if ban is not None and ban.active(now) else None

    def for_address(self, address: str, now: float) -> Ban | None:
        """A ban in force at now that covers address, if any."""
        for ban in self._bans.values():
            if ban.address == address and ban.active(now):
                return ban
        return None

    def all(self, now: float) -> list[Ban]:
        """The bans in force at now, oldest first."""
        active = (ban for ban in self._bans.values() if ban.active(now))
        return sorted(active, key=lambda ban: ban.created)

    def add(self, ban: Ban) -> defer.Deferred:
        """Store the ban; fires once it is committed."""

        def write(conn):
            conn.execute(
                "INSERT OR REPLACE INTO bans"
                " (key, name, by_admin, reason, created, expires, address)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (ban.key, ban.name, ban.by_admin, ban.reason, ban.created,
                 ban.expires, ban.address),
            )

        d = self._run(write)
        d.addCallback(lambda _: self._bans.__setitem__(ban.key, ban))
        return d

    def remove(self, name: str) -> defer.Deferred:
        """Lift a ban; fires with the Ban that was lifted, or None."""
        key = name_key(name)

        def delete(conn):
            conn.execute("DELETE FROM bans WHERE key = ?", (key,))

        d = self._run(delete)
        d.addCallback(lambda _: self._bans.pop(key, None))
        return d

    def close(self) -> None:
        """Release the database; closing twice is harmless."""
        close, self._close = self._close, lambda: None
        close()
