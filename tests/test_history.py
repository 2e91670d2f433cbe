"""Room history in SQLite: what a late joiner is shown, kept cheaply and across restarts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from twisted.internet import defer, reactor, task
from twisted.logger import LogLevel, capturedLogs
from twisted.trial import unittest

from chatd.core.history import MAX_PENDING, History, Said
from chatd.core.store import BanStore, migrate

T0 = 1795618800.0  # 2026-11-25 15:00:00Z
DISK_FULL = sqlite3.OperationalError("database or disk is full")


class Database:
    """A runner (chatd.core.store.Runner) on one in-memory database that counts its
    calls; held=True keeps each call waiting until the test fires it, in order."""

    def __init__(self, held: bool = False):
        self.conn = sqlite3.connect(":memory:")
        migrate(self.conn)
        self.held = held
        self.calls = 0
        self.waiting: list[tuple] = []

    def __call__(self, fn):
        self.calls += 1
        d = defer.Deferred()
        self.waiting.append((fn, d))
        if not self.held:
            self.fire()
        return d

    def fire(self) -> None:
        """Run and commit the oldest waiting call, as adbapi's pool would."""
        fn, d = self.waiting.pop(0)
        try:
            result = fn(self.conn)
            self.conn.commit()
        except Exception as e:
            self.conn.rollback()
            d.errback(e)
        else:
            d.callback(result)

    def fail(self, exc: Exception) -> None:
        """The oldest waiting call fails without running, as a lost connection would."""
        _, d = self.waiting.pop(0)
        d.errback(exc)

    def texts(self, room: str) -> list[str]:
        rows = self.conn.execute("SELECT text FROM history WHERE room = ? ORDER BY id",
                                 (room,))
        return [text for (text,) in rows]


def said(text: str, at: float = T0, name: str = "alice", kind: str = "message") -> Said:
    return Said(at, kind, name, text)


class HistoryTests(unittest.TestCase):
    def setUp(self):
        self.db = Database()
        self.clock = task.Clock()
        self.history = self.make(limit=50)

    def make(self, limit: int) -> History:
        return History(BanStore(self.db, {}), self.clock, limit)

    def recent(self, history: History, room: str) -> list[Said]:
        return self.successResultOf(history.recent(room))

    def test_recent_is_the_newest_oldest_first(self):
        """A joiner sees the room's last `limit` lines oldest first, whatever the case of
        the room's name, and each room only its own lines."""
        history = self.make(limit=3)
        self.assertEqual(self.recent(history, "Lobby"), [])
        for i in range(5):
            history.record("Lobby", T0 + i, "message", "alice", f"m{i}")
        history.record("games", T0, "action", "bob", "waves")
        expected = [said("m2", T0 + 2), said("m3", T0 + 3), said("m4", T0 + 4)]
        self.assertEqual(self.recent(history, "LOBBY"), expected)
        self.assertEqual(self.recent(history, "games"), [said("waves", name="bob",
                                                              kind="action")])
        self.clock.advance(0)
        self.assertEqual(self.recent(self.make(limit=3), "lobby"), expected)

    def test_one_database_call_per_turn(self):
        """A busy room costs one database write per reactor turn, not one per line."""
        self.recent(self.history, "lobby")
        calls = self.db.calls
        for i in range(200):
            self.history.record("lobby" if i % 2 else "games", T0, "message", "bob", f"m{i}")
        self.assertEqual(self.db.calls, calls)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1, "one timer, not one a line")
        self.clock.advance(0)
        self.assertEqual(self.db.calls, calls + 1)
        self.assertEqual(len(self.db.texts("lobby")), 50)
        self.assertEqual(len(self.db.texts("games")), 50)
        self.history.record("lobby", T0, "message", "bob", "next turn")
        self.clock.advance(0)
        self.assertEqual(self.db.calls, calls + 2)
        self.clock.advance(0)
        self.assertEqual(self.db.calls, calls + 2, "nothing recorded, nothing written")

    def test_table_keeps_the_newest_rows_of_each_room(self):
        """The database holds only the last `limit` lines of each room, so it does not
        grow with a room's traffic; a quiet room's lines are left alone."""
        history = self.make(limit=5)
        history.record("quiet", T0, "message", "carol", "hello")
        for turn in range(3):
            for i in range(4):
                history.record("Busy", T0, "message", "bob", f"m{turn * 4 + i}")
            self.clock.advance(0)
        self.assertEqual(self.db.texts("busy"), ["m7", "m8", "m9", "m10", "m11"])
        self.assertEqual(self.db.texts("quiet"), ["hello"])

    def test_load_adds_what_was_said_meanwhile(self):
        """Someone joining a room whose history is still being read sees every earlier
        line once, in order, including those said during the read."""
        self.db.held = True
        self.history.record("lobby", T0, "message", "alice", "one")
        self.history.record("lobby", T0, "message", "alice", "two")
        self.clock.advance(0)  # the write of one, two is in flight
        self.history.record("lobby", T0, "message", "alice", "three")
        first, second = self.history.recent("lobby"), self.history.recent("LOBBY")
        self.assertNoResult(first)
        self.db.fire()  # one, two written; three and the read go next, together
        self.assertEqual(self.db.calls, 2)
        self.history.record("lobby", T0, "message", "alice", "four")
        self.db.fire()
        expected = [said("one"), said("two"), said("three"), said("four")]
        self.assertEqual(self.successResultOf(first), expected)
        self.assertEqual(self.successResultOf(second), expected)
        self.history.record("lobby", T0, "message", "alice", "five")
        self.assertEqual(self.recent(self.history, "lobby"), [*expected, said("five")])
        self.assertEqual(self.db.calls, 3, "the cached room is answered from memory")

    def test_a_renamed_room_keeps_its_history(self):
        """A reload that renames the landing room keeps what was said in it:
        written before, waiting to be written, and after a restart's read."""
        self.history.record("lobby", T0, "message", "alice", "written")
        self.clock.advance(0)
        self.history.record("lobby", T0 + 1, "message", "alice", "pending")
        self.successResultOf(self.history.rename("lobby", "Hall"))
        self.clock.advance(0)
        self.assertEqual([s.text for s in self.recent(self.history, "hall")],
                         ["written", "pending"])
        fresh = self.make(limit=50)  # a restart: read from the database
        self.assertEqual([s.text for s in self.recent(fresh, "HALL")], ["written", "pending"])
        self.assertEqual(self.recent(fresh, "lobby"), [])

    def test_limit_zero_is_off(self):
        """With history = 0, nothing is kept and joiners are shown nothing."""
        history = self.make(limit=0)
        history.record("lobby", T0, "message", "alice", "secret plans")
        self.clock.advance(0)
        self.assertEqual(self.recent(history, "lobby"), [])
        self.successResultOf(history.flush())
        self.assertEqual((self.db.calls, self.db.texts("lobby")), (0, []))

    def test_flush_waits_for_every_line(self):
        """At shutdown, flush fires only once every line said so far is on disk."""
        self.db.held = True
        self.history.record("lobby", T0, "message", "alice", "one")
        self.clock.advance(0)
        self.history.record("lobby", T0, "message", "alice", "two")
        flushed = self.history.flush()
        self.db.fire()
        self.assertNoResult(flushed)
        self.db.fire()
        self.successResultOf(flushed)
        self.assertEqual(self.db.texts("lobby"), ["one", "two"])
        self.successResultOf(self.history.flush())

    def test_failed_write_is_logged_and_later_lines_land(self):
        """A write the database refuses is logged; the room's later lines are still kept
        and shown."""
        self.db.conn.execute(
            "CREATE TRIGGER full BEFORE INSERT ON history WHEN NEW.text = 'boom'"
            " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        self.history.record("lobby", T0, "message", "alice", "lost with it")
        self.history.record("lobby", T0, "message", "alice", "boom")
        self.clock.advance(0)
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.IntegrityError)), 1)
        self.assertEqual(self.db.texts("lobby"), [])
        self.history.record("lobby", T0 + 1, "message", "alice", "kept")
        self.successResultOf(self.history.flush())
        self.assertEqual(self.recent(self.history, "lobby"), [said("kept", T0 + 1)])

    def test_failed_read_retried_on_next_join(self):
        """If reading a room's history fails, the joiner is shown what is in memory and
        the next joiner's read tries the database again."""
        self.db.conn.execute("INSERT INTO history (room, at, kind, name, text)"
                             " VALUES ('lobby', ?, 'message', 'bob', 'earlier')", (T0,))
        self.db.held = True
        first = self.history.recent("lobby")
        self.history.record("lobby", T0 + 1, "message", "alice", "during")
        self.db.fail(DISK_FULL)
        self.assertEqual(self.successResultOf(first), [said("during", T0 + 1)])
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.OperationalError)), 1)
        second = self.history.recent("lobby")
        self.db.fire()  # "during" written
        self.db.fire()  # the read
        self.assertEqual(self.successResultOf(second),
                         [said("earlier", name="bob"), said("during", T0 + 1)])

    def test_stalled_database_drops_the_oldest_waiting_lines(self):
        """A database that stops answering does not make memory grow without bound:
        past MAX_PENDING waiting lines the oldest go, with a warning."""
        history = self.make(limit=MAX_PENDING + 10)
        self.db.held = True
        history.record("lobby", T0, "message", "alice", "in flight")
        self.clock.advance(0)
        for i in range(MAX_PENDING + 5):
            history.record("lobby", T0, "message", "alice", f"m{i}")
        with capturedLogs() as events:
            self.db.fire()
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual([e["count"] for e in warnings], [5])
        self.db.fire()
        texts = self.db.texts("lobby")
        self.assertEqual((len(texts), texts[:2]), (MAX_PENDING + 1, ["in flight", "m5"]))

    def test_lines_kept_together_are_shown_and_written_in_order(self):
        """Lines kept in one call (a cluster's batch from another node) are
        shown to a joiner and written as if kept one by one, and still cost
        one database write a turn; a stalled database drops the oldest."""
        history = self.make(limit=3)
        self.recent(history, "lobby")
        calls = self.db.calls
        history.keep_many("lobby", [said(f"m{i}", T0 + i) for i in range(4)])
        history.keep_many("games", [said("waves", kind="action")])
        self.assertEqual([s.text for s in self.recent(history, "lobby")], ["m1", "m2", "m3"])
        self.clock.advance(0)
        self.assertEqual(self.db.calls, calls + 1)
        self.assertEqual(self.db.texts("lobby"), ["m1", "m2", "m3"])
        self.assertEqual(self.db.texts("games"), ["waves"])
        history = self.make(limit=MAX_PENDING + 10)
        self.db.held = True
        history.keep_many("hall", [said("in flight")])
        self.clock.advance(0)
        history.keep_many("hall", [said(f"n{i}") for i in range(MAX_PENDING + 5)])
        with capturedLogs() as events:
            self.db.fire()
        self.assertEqual([e["count"] for e in events if e["log_level"] == LogLevel.warn],
                         [5])
        self.db.fire()
        self.assertEqual(self.db.texts("hall")[:2], ["in flight", "n5"])

    def test_reload_changes_the_limit(self):
        """A reload that lowers the limit shows fewer lines at once; raising it again
        shows what the database still holds."""
        history = self.make(limit=5)
        self.recent(history, "lobby")
        for i in range(5):
            history.record("lobby", T0, "message", "alice", f"m{i}")
        self.clock.advance(0)
        history.limit = 2
        self.assertEqual(self.recent(history, "lobby"), [said("m3"), said("m4")])
        history.limit = 5
        self.assertEqual(len(self.recent(history, "lobby")), 5)
        history.limit = 0
        self.assertEqual(self.recent(history, "lobby"), [])

    def test_forgotten_room_is_read_again(self):
        """A room that vanished and is created again still shows its earlier lines."""
        self.recent(self.history, "lobby")
        self.history.record("lobby", T0, "message", "alice", "before")
        self.history.forget("Lobby")
        calls = self.db.calls
        self.assertEqual(self.recent(self.history, "lobby"), [said("before")])
        self.assertEqual(self.db.calls, calls + 1)

    def test_unknown_kind_refused(self):
        """Only messages and actions are history: anything else is a caller's mistake."""
        self.assertRaises(ValueError, self.history.record, "lobby", T0, "private",
                          "alice", "psst")


class RestartTests(unittest.TestCase):
    def test_history_survives_a_restart(self):
        """Lines said before the daemon stopped are shown to a joiner after it starts
        again (a real database file, written through adbapi's pool)."""
        path = Path(self.mktemp())
        path.parent.mkdir(parents=True, exist_ok=True)
        store = BanStore.open(path)
        history = History(store, reactor)
        history.record("Lobby", T0, "message", "alice", "hello")
        history.record("lobby", T0 + 1, "action", "bob", "waves")
        d = history.flush()
        d.addCallback(lambda _: store.close())

        def reopened(_):
            again = BanStore.open(path)
            self.addCleanup(again.close)
            return History(again, reactor).recent("LOBBY")

        return d.addCallback(reopened).addCallback(self.assertEqual, [
            said("hello"), said("waves", T0 + 1, name="bob", kind="action")])
