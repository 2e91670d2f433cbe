"""The moderation journal: who did what to whom, when, why, and until when.

Every kick, ban, unban, mute, unmute and server-side disconnect becomes one
row of the `modlog` table (schema in chatd.core.store.MIGRATIONS), in the same
SQLite database as the bans and through the same runner (adbapi's pool in
the daemon, one synchronous connection in tests), so there is one writer
on the file.

The room writes the row first and announces the action once it is
committed, so anything the room has heard of is in the journal, even after
`kill -9`.  Admin actions (kick, ban, unban, mute, unmute) take effect and
are announced only then.  A server-side disconnect cuts the person off
first (a flooder must not have one more line handled, a client that does
not read must not grow the send queue while the disk works) and announces
to the room after the commit: see Moderation.server_kick and Moderation.server_leave.

A failed journal write never blocks moderation: Journal.record logs the
failure and the action goes ahead (for a ban, the ban row is the durable
record; a kick or mute is worth more done than journaled).

Reading never loads the whole table: /modlog asks for the newest N rows
(at most MAX_SHOWN), and each write drops what falls behind the newest
MAX_KEPT rows, so however many flood kicks clients provoke, the table
stays bounded between restarts too.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted.internet import defer
from twisted.logger import Logger

if TYPE_CHECKING:
    from chatd.core.store import Runner

log = Logger()

SERVER = "server"  # the actor of what the server did by itself
DEFAULT_SHOWN = 20
MAX_SHOWN = 200
MAX_KEPT = 100_000  # rows; a busy room's years of moderation

_COUNT = re.compile(r"[0-9]{1,3}\Z")


def timestamp(seconds: float) -> str:
    """UTC, to the second: 2026-11-25 15:00:00Z."""
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))


def parse_count(arg: str) -> int | None:
    """'/modlog [N]': '' -> DEFAULT_SHOWN, '5' -> 5; None unless 1 <= N <= MAX_SHOWN."""
    if not arg:
        return DEFAULT_SHOWN
    if _COUNT.match(arg) is None or not 1 <= int(arg) <= MAX_SHOWN:
        return None
    return int(arg)


@dataclass(frozen=True)
class Entry:
    """One moderation action.  action: kick, ban, unban, mute, unmute or
    disconnect; actor: the admin's name or SERVER; at, expires: seconds
    since the epoch (expires only for timed bans and mutes)."""

    at: float
    action: str
    actor: str
    target: str
    reason: str = ""
    expires: float | None = None
    address: str | None = None

    def line(self) -> str:
        """WHEN ACTION TARGET by ACTOR[ until WHEN][ (address ADDR)][: REASON]"""
        text = f"{timestamp(self.at)} {self.action} {self.target} by {self.actor}"
        if self.expires is not None:
            text += f" until {timestamp(self.expires)}"
        if self.address:
            text += f" (address {self.address})"
        return f"{text}: {self.reason}" if self.reason else text


_COLUMNS = "at, action, actor, target, reason, expires, address"


class Journal:
    """The modlog table, through a runner: `run(fn)` calls fn(connection)
    and commits, as a Deferred (chatd.core.store.Runner)."""

    def __init__(self, run: Runner, keep: int = MAX_KEPT):
        self._run = run
        self._keep = keep

    def record(self, entry: Entry) -> defer.Deferred:
        """Write entry; fires with True once committed, or False if the
        write failed (logged, so that the action can still go ahead)."""

        def write(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                f"INSERT INTO modlog ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (entry.at, entry.action, entry.actor, entry.target, entry.reason,
                 entry.expires, entry.address),
            )
            # A range of the primary key: nothing to scan when nothing is old.
            conn.execute("DELETE FROM modlog WHERE id <= ?",
                         (cursor.lastrowid - self._keep,))

        def failed(failure) -> bool:
            log.failure(
                "moderation journal write failed: {action} {target} by {actor}",
                failure, action=entry.action, target=entry.target, actor=entry.actor,
            )
            return False

        return self._run(write).addCallbacks(lambda _: True, failed)

    def last(self, count: int) -> defer.Deferred:
        """Fires with the newest count entries (at most MAX_SHOWN), oldest first."""
        count = max(0, min(count, MAX_SHOWN))

        def read(conn: sqlite3.Connection) -> list[Entry]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM modlog ORDER BY id DESC LIMIT ?", (count,)
            ).fetchall()
            return [Entry(*row) for row in reversed(rows)]

        return self._run(read)


def prune(conn: sqlite3.Connection, keep: int = MAX_KEPT) -> None:
    """Delete all but the newest keep rows (run at open, before the reactor)."""
    with conn:
        conn.execute(
            "DELETE FROM modlog WHERE id <= (SELECT MAX(id) FROM modlog) - ?", (keep,))
