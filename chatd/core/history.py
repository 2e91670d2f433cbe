"""Room history: the last `limit` messages and actions of each room, in SQLite.

Whoever joins a room is shown what was said there before; the entries are
kept in the `history` table (schema in chatd.core.store.MIGRATIONS), in the
same database as the bans and through the same runner (`BanStore.run`), so
they survive a restart.

Only public lines belong here: the caller records messages and actions said
to a room, never private messages.  A banned user's lines stay, so that a
moderator can see what happened.

`record()` is on the chat hot path (every line of a busy room), so it never
touches the database itself.  It appends to the room's in-memory copy (when
that room is cached, i.e. someone asked for its history since it last
vanished) and to a pending batch.  The batch is written `delay` seconds
after its first entry, or as soon as BATCH entries wait (the daemon waits
half a second, so that a busy room costs one database call per half
second or per thousand lines, not one per reactor turn), in one database
call (one executemany, then each room it touched
is trimmed to its newest `limit` rows).  One database call at most is in
flight: lines recorded meanwhile wait for the next one.  If the database
falls so far behind that MAX_PENDING entries wait, the oldest waiting ones
are dropped (and a warning logged) rather than let memory grow.

`recent()` answers from memory for a cached room.  For another room it
loads the newest rows in the next database call (after that call's writes,
so the rows hold everything written before) and adds what was recorded
while it ran; the room is cached from then on.  A failed write is logged
and lost; later writes and loads go on as before.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chatd.core.events import Said
from chatd.core.text import name_key

if TYPE_CHECKING:
    from chatd.core.store import BanStore

log = Logger()

KINDS = ("message", "action")
MAX_PENDING = 10_000  # entries waiting for the database before the oldest are dropped
BATCH = 1_000  # entries that are written at once, without waiting for the delay
MAX_KEPT = 1_000_000  # rows in all rooms together: rooms that fell silent long ago go




@dataclass(slots=True)
class _Load:
    """One room's history being read: who waits for it, and whether to cache
    it (not if the room was forgotten meanwhile)."""

    waiters: list[defer.Deferred] = field(default_factory=list)
    sent: bool = False
    keep: bool = True


_INSERT = "INSERT INTO history (room, at, kind, name, text) VALUES (?, ?, ?, ?, ?)"
# Keep the newest `keep` rows of a room: a range of (room, id) on the index.
_TRIM = ("DELETE FROM history WHERE room = ? AND id <= (SELECT id FROM history"
         " WHERE room = ? ORDER BY id DESC LIMIT 1 OFFSET ?)")
_TRIM_ALL = "DELETE FROM history WHERE id <= (SELECT MAX(id) FROM history) - ?"
_NEWEST = "SELECT at, kind, name, text FROM history WHERE room = ? ORDER BY id DESC LIMIT ?"


def _write(conn: sqlite3.Connection, batch: list[tuple[str, Said]], keep: int) -> None:
    # Only a room's newest `keep` lines of the batch are written: the rest
    # would be trimmed at once (a busy room's batch is mostly such lines).
    newest: dict[str, list[Said]] = {}
    for key, said in reversed(batch):
        lines = newest.setdefault(key, [])
        if len(lines) < keep:
            lines.append(said)
    conn.executemany(_INSERT, [(key, s.at, s.kind, s.name, s.text)
                               for key, lines in newest.items() for s in reversed(lines)])
    for key in newest:
        conn.execute(_TRIM, (key, key, keep))
    conn.execute(_TRIM_ALL, (MAX_KEPT,))


def _work(conn: sqlite3.Connection, batch: list[tuple[str, Said]], keep: int,
          rooms: Iterable[str]) -> tuple[Failure | None, dict[str, list[Said]]]:
    """Write batch, then read the newest rows of rooms (off the reactor thread).

    A failed write is rolled back and returned, so that the reads still run.
    """
    failed = None
    if batch:
        try:
            _write(conn, batch, keep)
            conn.commit()
        except Exception:
            failed = Failure()
            conn.rollback()
    loaded = {}
    for key in rooms:
        rows = conn.execute(_NEWEST, (key, keep)).fetchall()
        loaded[key] = [Said(*row) for row in reversed(rows)]
    return failed, loaded


class History:
    """The recent lines of every room; see the module docstring for how."""

    def __init__(self, store: BanStore, clock: IReactorTime, limit: int = 50,
                 delay: float = 0.0):
        self._store = store
        self._delay = delay
        self._clock = clock
        self._limit = limit
        self._cache: dict[str, deque[Said]] = {}
        self._pending: deque[tuple[str, Said]] = deque()
        self._loads: dict[str, _Load] = {}
        self._call: IDelayedCall | None = None
        self._busy = False
        self._dropped = 0
        self._recorded = 0  # entries recorded so far, numbered from 1
        self._done = 0  # every entry up to this number is written (or lost)
        self._flushes: list[tuple[int, defer.Deferred]] = []

    @property
    def limit(self) -> int:
        """How many entries a room keeps (0: history is off); a reload may change it."""
        return self._limit

    @limit.setter
    def limit(self, limit: int) -> None:
        if limit == self._limit:
            return
        old, self._limit = self._limit, limit
        if limit < old:
            self._cache = {k: deque(d, maxlen=limit) for k, d in self._cache.items()
                           if limit > 0}
        else:  # the database may hold more than memory did: read it again
            self._cache.clear()

    def record(self, room: str, at: float, kind: str, name: str, text: str) -> None:
        """Keep what name said (kind "message" or "action") in room at `at`.

        Never private messages: the caller records only what a room heard.
        """
        if self._limit <= 0:
            return
        if kind not in KINDS:
            raise ValueError(f"history kind must be one of {KINDS}, not {kind!r}")
        self.keep(name_key(room), Said(at, kind, name, text))

    def keep(self, key: str, said) -> None:
        """record() for the chat path: key is the room's name key, and said
        anything with Said's attributes (the Message or Action event itself,
        so that nothing is built per line)."""
        if self._limit <= 0:
            return
        cached = self._cache.get(key)
        if cached is not None:
            cached.append(said)
        if len(self._pending) >= MAX_PENDING:
            self._pending.popleft()
            self._dropped += 1
        self._pending.append((key, said))
        self._recorded += 1
        if self._busy:
            return
        if len(self._pending) >= BATCH:
            self._next()
        elif self._call is None:
            self._call = self._clock.callLater(self._delay, self._next)

    def keep_many(self, key: str, lines: list) -> None:
        """keep() for several lines of one room at once, oldest first (a
        cluster's batch: one call per room instead of one per line)."""
        if self._limit <= 0 or not lines:
            return
        cached = self._cache.get(key)
        if cached is not None:
            cached.extend(lines)
        pending = self._pending
        pending.extend([(key, said) for said in lines])
        self._recorded += len(lines)
        over = len(pending) - MAX_PENDING
        if over > 0:
            for _ in range(over):
                pending.popleft()
            self._dropped += over
        if self._busy:
            return
        if len(pending) >= BATCH:
            self._next()
        elif self._call is None:
            self._call = self._clock.callLater(self._delay, self._next)

    def recent(self, room: str) -> defer.Deferred:
        """Fires with room's newest entries (list[Said], at most limit), oldest first."""
        if self._limit <= 0:
            return defer.succeed([])
        key = name_key(room)
        cached = self._cache.get(key)
        if cached is not None:
            return defer.succeed(list(cached))
        load = self._loads.setdefault(key, _Load())
        load.keep = True  # asked for again after a forget: the room is back
        d = defer.Deferred()
        load.waiters.append(d)
        self._next()
        return d

    def forget(self, room: str) -> None:
        """The room vanished: drop what memory holds of it (the database keeps it)."""
        key = name_key(room)
        self._cache.pop(key, None)
        load = self._loads.get(key)
        if load is not None:
            load.keep = False

    def rename(self, old: str, new: str) -> defer.Deferred:
        """Room old is called new from now on (a reload renamed it): its
        history goes with it, in memory, in the pending batch and on disk
        (after any write in flight: the store runs one call at a time)."""
        o, n = name_key(old), name_key(new)
        if o == n:
            return defer.succeed(None)
        cached = self._cache.pop(o, None)
        self._cache.pop(n, None)
        if cached is not None:
            self._cache[n] = cached
        self._pending = deque((n if key == o else key, said) for key, said in self._pending)
        d = self._store.run(
            lambda conn: conn.execute("UPDATE history SET room = ? WHERE room = ?", (n, o)))
        return d.addErrback(lambda f: log.failure("history: renaming {old} failed", f,
                                                  old=old))

    def adopt(self, room: str, lines: list[Said]) -> defer.Deferred:
        """room's history is lines (the newest of them), as another copy of
        it says (a cluster's, chatd.cluster.sync): in memory and on disk."""
        key = name_key(room)
        lines = lines[-self._limit:] if self._limit > 0 else []
        if key in self._cache:
            self._cache[key] = deque(lines, maxlen=self._limit)

        def write(conn):
            conn.execute("DELETE FROM history WHERE room = ?", (key,))
            conn.executemany(_INSERT, [(key, s.at, s.kind, s.name, s.text) for s in lines])

        return self._store.run(write).addErrback(
            lambda f: log.failure("history: adopting {room} failed", f, room=room))

    def everything(self) -> defer.Deferred:
        """Fires with {room key: its newest entries} for every room on disk
        (after what is pending is written): to copy to another store."""
        keep = max(self._limit, 1)

        def read(conn):
            keys = [row[0] for row in conn.execute("SELECT DISTINCT room FROM history")]
            return {key: [Said(*row) for row in reversed(
                conn.execute(_NEWEST, (key, keep)).fetchall())] for key in keys}

        return self.flush().addCallback(lambda _: self._store.run(read))

    def flush(self) -> defer.Deferred:
        """Fires once everything recorded so far is written (at shutdown).

        A failed write counts as done: it was logged, and there is no waiting
        it out.  The Deferred never fails.
        """
        if self._done >= self._recorded:
            return defer.succeed(None)
        d = defer.Deferred()
        self._flushes.append((self._recorded, d))
        self._next()
        return d

    def _next(self) -> None:
        """Start the next database call, if there is work and none is running."""
        if self._busy:
            return
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None
        rooms = [key for key, load in self._loads.items() if not load.sent]
        if not self._pending and not rooms:
            return
        if self._dropped:
            log.warn("history: the database fell behind; {count} entries dropped",
                     count=self._dropped)
            self._dropped = 0
        batch, self._pending = list(self._pending), deque()
        upto, keep = self._recorded, max(self._limit, 1)
        for key in rooms:
            self._loads[key].sent = True
        self._busy = True
        d = self._store.run(lambda conn: _work(conn, batch, keep, rooms))
        d.addCallbacks(self._worked, self._broke, callbackArgs=(len(batch),),
                       errbackArgs=(len(batch),))
        d.addBoth(self._after, upto, rooms)

    def _worked(self, result: tuple[Failure | None, dict[str, list[Said]]],
                count: int) -> dict[str, list[Said]]:
        failed, loaded = result
        if failed is not None:
            log.failure("history: {count} entries could not be written", failed,
                        count=count)
        for key, rows in loaded.items():
            self._loaded(key, rows)
        return loaded

    def _broke(self, failure: Failure, count: int) -> None:
        log.failure("history: database call failed ({count} entries not written)",
                    failure, count=count)

    def _after(self, _: object, upto: int, rooms: list[str]) -> None:
        self._busy = False
        for key in rooms:  # loads the failed call did not answer
            self._loaded(key, None)
        self._done = upto
        flushes, self._flushes = self._flushes, []
        for target, d in flushes:
            if target <= upto:
                d.callback(None)
            else:
                self._flushes.append((target, d))
        self._next()

    def _loaded(self, key: str, rows: list[Said] | None) -> None:
        """Answer the load of key with rows read from the database and what was
        recorded since; cache the result unless the read failed (rows None)."""
        load = self._loads.pop(key, None)
        if load is None:
            return
        entries: deque[Said] = deque(rows or (), maxlen=max(self._limit, 0))
        entries.extend(said for k, said in self._pending if k == key)
        if rows is not None and load.keep and self._limit > 0:
            self._cache[key] = entries
        for d in load.waiters:
            d.callback(list(entries))
