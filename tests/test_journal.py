"""The moderation journal: every action is on disk before anyone hears of it,
and /modlog shows it to admins."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from twisted.internet import defer
from twisted.trial import unittest

from chatd.core.errors import Muted, NoSuchUser
from chatd.core.journal import MAX_SHOWN, SERVER, Entry, Journal, prune
from chatd.core.store import MIGRATIONS, BanStore, migrate
from tests.helpers import FakeClient, ManualRunner, ProtocolHarness, join, make_server

DISK_FULL = sqlite3.OperationalError("database or disk is full")
T0 = 1795618800.0  # 2026-11-25 15:00:00Z


class RoomJournalTests(unittest.TestCase):
    """Room level: each action's row is committed before the room hears of it."""

    def setUp(self):
        self.runner = ManualRunner()
        self.now = T0
        self.server, self.clock = make_server(
            admins={"boss": "pw"}, bans=BanStore(self.runner, {}),
            wall_clock=lambda: self.now)
        self.room = self.server.landing
        self.boss_m, self.boss = self.join("boss", admin=True, address="10.0.0.1")
        self.bob_m, self.bob = self.join("bob", address="10.0.0.2")
        self.alice_m, self.alice = self.join("alice", address="10.0.0.3")
        for client in (self.boss, self.bob, self.alice):
            client.lines()

    def join(self, name, admin=False, address=None):
        client = FakeClient()
        member = join(self.server, name, client, admin=admin, address=address)
        self.clock.advance(0)
        return member, client

    def heard(self, client) -> list[str]:
        self.clock.advance(0)
        return client.lines()

    def test_kick_announced_only_after_commit(self):
        """A kick is journaled (who, whom, when, why) before bob or the room hears of it."""
        d = self.server.moderation.kick(self.boss_m, "BOB", "spam")
        self.assertEqual((self.heard(self.alice), self.heard(self.bob)), ([], []))
        self.assertFalse(self.bob.disconnected)
        self.assertEqual(self.runner.rows(), [])
        self.runner.fire()
        self.assertEqual(self.runner.rows(), [(T0, "kick", "boss", "bob", "spam", None, None)])
        self.assertEqual(self.heard(self.bob), ["! you were kicked by boss: spam"])
        self.assertTrue(self.bob.disconnected)
        self.assertEqual(self.heard(self.alice), ["* bob was kicked by boss: spam"])
        self.successResultOf(d)

    def test_kick_of_someone_who_left_meanwhile(self):
        """If the target leaves while the kick is written, the admin hears 'no such user'."""
        d = self.server.moderation.kick(self.boss_m, "bob")
        self.server.logout(self.bob_m)
        self.runner.fire()
        self.failureResultOf(d, NoSuchUser)
        self.assertEqual(self.heard(self.alice), ["* bob left"])

    def test_timed_address_ban_journaled_before_announced(self):
        """A ban row (expiry, address) follows the ban write; the room hears after both."""
        d = self.server.moderation.ban(self.boss_m, "bob", "spam", duration=7200, address=True)
        self.runner.fire()  # the ban itself
        self.assertIsNotNone(self.server.moderation.bans(self.boss_m))
        self.assertEqual(self.heard(self.alice), [])
        self.assertFalse(self.bob.disconnected)
        self.runner.fire()  # the journal row
        self.assertEqual(self.runner.rows(), [
            (T0, "ban", "boss", "bob", "spam", T0 + 7200, "10.0.0.2")])
        self.assertEqual(self.heard(self.alice), ["* bob was banned by boss for 2h: spam"])
        self.assertTrue(self.bob.disconnected)
        self.successResultOf(d)

    def test_unban_journaled_before_announced(self):
        """Lifting a ban is journaled before the room hears of it."""
        self.server.moderation.ban(self.boss_m, "carol")
        self.runner.fire()
        self.runner.fire()
        self.heard(self.alice)
        self.now += 60
        self.server.moderation.unban(self.boss_m, "CAROL")
        self.runner.fire()  # the ban removed
        self.assertEqual(self.heard(self.alice), [])
        self.runner.fire()
        self.assertEqual(self.runner.rows()[-1], (T0 + 60, "unban", "boss", "carol", "", None,
                                                  None))
        self.assertEqual(self.heard(self.alice), ["* carol was unbanned by boss"])

    def test_mute_and_unmute_journaled_before_they_take_effect(self):
        """A timed mute and its lifting are each journaled, then applied and announced."""
        self.server.moderation.mute(self.boss_m, "bob", 600)
        self.server.say(self.bob_m, self.room, "still talking")  # not muted until committed
        self.assertEqual(self.heard(self.alice), ["<bob> still talking"])
        self.runner.fire()
        self.assertEqual(self.heard(self.alice), ["* bob was muted by boss for 10m"])
        self.assertRaises(Muted, self.server.say, self.bob_m, self.room, "muted now")
        self.server.moderation.unmute(self.boss_m, "bob")
        self.assertEqual(self.heard(self.alice), [])
        self.runner.fire()
        self.assertEqual(self.heard(self.alice), ["* bob was unmuted by boss"])
        self.assertEqual(self.runner.rows(), [
            (T0, "mute", "boss", "bob", "", T0 + 600, None),
            (T0, "unmute", "boss", "bob", "", None, None)])

    def test_kick_goes_ahead_when_the_journal_fails(self):
        """Disk full: the kick still happens and the failure is logged."""
        d = self.server.moderation.kick(self.boss_m, "bob", "spam")
        self.runner.fail(DISK_FULL)
        self.assertTrue(self.bob.disconnected)
        self.assertEqual(self.heard(self.alice), ["* bob was kicked by boss: spam"])
        self.successResultOf(d)
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.OperationalError)), 1)

    def test_ban_stands_when_the_journal_fails(self):
        """The ban row is the durable record: a failed journal write does not undo it."""
        d = self.server.moderation.ban(self.boss_m, "bob", "spam")
        self.runner.fire()
        self.runner.fail(DISK_FULL)
        self.successResultOf(d)
        self.assertTrue(self.bob.disconnected)
        self.assertEqual(self.heard(self.alice), ["* bob was banned by boss: spam"])
        self.assertEqual([ban.name for ban in self.server.moderation.bans(self.boss_m)],
                         ["bob"])
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.OperationalError)), 1)

    def test_server_kick_cuts_at_once_and_announces_after_commit(self):
        """A flooder is told and closed at once; the room hears once the row is in."""
        self.server.moderation.server_kick(self.bob_m, "flooding")
        self.assertEqual(self.heard(self.bob), ["! you were kicked by server: flooding"])
        self.assertTrue(self.bob.disconnected)
        self.assertIsNone(self.server.get("bob"))
        self.assertEqual(self.heard(self.alice), [])
        self.runner.fire()
        self.assertEqual(self.runner.rows(), [
            (T0, "kick", "server", "bob", "flooding", None, None)])
        self.assertEqual(self.heard(self.alice), ["* bob was kicked by server: flooding"])

    def test_server_leave_is_the_hook_for_server_disconnects(self):
        """server_leave (send queue, idle timeout): out of the room now, announced after
        the commit, and a second call for the same member does nothing."""
        self.server.moderation.server_leave(self.bob_m, "idle timeout", count_as="idle")
        self.assertIsNone(self.server.get("bob"))
        self.successResultOf(self.server.moderation.server_leave(self.bob_m, "idle timeout",
                                                               count_as="idle"))
        self.assertEqual(self.heard(self.alice), [])
        self.runner.fire()
        self.assertEqual(self.runner.waiting, [])
        self.assertEqual(self.runner.rows(), [
            (T0, "disconnect", "server", "bob", "idle timeout", None, None)])
        self.assertEqual(self.heard(self.alice), ["* bob left (idle timeout)"])


class JournalTests(unittest.TestCase):
    """The journal on its own: the line format, bounded reads, pruning, restarts."""

    def test_line_format(self):
        """/modlog lines read WHEN ACTION TARGET by ACTOR[ until WHEN][ (address A)][: WHY]."""
        self.assertEqual(Entry(T0, "kick", "admin", "bob", "spam").line(),
                         "2026-11-25 15:00:00Z kick bob by admin: spam")
        self.assertEqual(
            Entry(T0, "ban", "admin", "bob", "", T0 + 3600, "10.0.0.2").line(),
            "2026-11-25 15:00:00Z ban bob by admin until 2026-11-25 16:00:00Z"
            " (address 10.0.0.2)")
        self.assertEqual(Entry(T0, "disconnect", "server", "eve", "send queue exceeded").line(),
                         "2026-11-25 15:00:00Z disconnect eve by server: send queue exceeded")

    def test_last_reads_only_the_newest(self):
        """last(N) gives the newest N oldest-first, never more than MAX_SHOWN."""
        journal = BanStore.in_memory().journal
        for i in range(MAX_SHOWN + 50):
            self.successResultOf(journal.record(Entry(float(i), "kick", "boss", f"u{i}")))
        newest = self.successResultOf(journal.last(3))
        self.assertEqual([e.target for e in newest], ["u247", "u248", "u249"])
        self.assertEqual(len(self.successResultOf(journal.last(10_000))), MAX_SHOWN)

    def test_prune_keeps_the_newest(self):
        """Pruning at open keeps the newest rows and drops the oldest."""
        conn = sqlite3.connect(":memory:")
        migrate(conn)
        journal = BanStore.in_memory(conn).journal
        for i in range(10):
            self.successResultOf(journal.record(Entry(float(i), "kick", "boss", f"u{i}")))
        prune(conn, keep=4)
        self.assertEqual(conn.execute("SELECT COUNT(*) FROM modlog").fetchone(), (4,))
        self.assertEqual([e.target for e in self.successResultOf(journal.last(20))],
                         ["u6", "u7", "u8", "u9"])

    def test_writes_keep_the_table_bounded(self):
        """However many entries are written while the server runs (a client
        provoking flood kicks, say), only the newest are kept."""
        conn = sqlite3.connect(":memory:")
        migrate(conn)

        def run(fn):
            result = fn(conn)
            conn.commit()
            return defer.succeed(result)

        journal = Journal(run, keep=5)
        for i in range(12):
            self.successResultOf(journal.record(Entry(float(i), "kick", SERVER, f"u{i}")))
        self.assertEqual(conn.execute("SELECT COUNT(*) FROM modlog").fetchone(), (5,))
        self.assertEqual([e.target for e in self.successResultOf(journal.last(20))],
                         ["u7", "u8", "u9", "u10", "u11"])

    def test_version_2_database_gains_a_journal(self):
        """An existing database keeps its bans and gets an empty journal."""
        path = Path(self.mktemp())
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path)
        conn.executescript(f"{MIGRATIONS[0]}; {MIGRATIONS[1]}; PRAGMA user_version = 2;")
        conn.execute("INSERT INTO bans VALUES ('bob', 'Bob', 'boss', '', 5.0, NULL, NULL)")
        conn.commit()
        conn.close()
        store = BanStore.open(path, now=10.0)
        self.addCleanup(store.close)
        self.assertIsNotNone(store.get("bob", 10.0))
        return store.journal.last(5).addCallback(self.assertEqual, [])

    def test_journal_survives_reopen(self):
        """What the journal committed is there when the daemon starts again."""
        path = Path(self.mktemp())
        path.parent.mkdir(parents=True, exist_ok=True)
        store = BanStore.open(path)
        entry = Entry(T0, "mute", "boss", "bob", "", T0 + 60)
        d = store.journal.record(entry)
        d.addCallback(lambda ok: (self.assertTrue(ok), store.close()))

        def reopened(_):
            again = BanStore.open(path)
            self.addCleanup(again.close)
            return again.journal.last(20)

        return d.addCallback(reopened).addCallback(self.assertEqual, [entry])

    def test_record_reports_failure_as_false(self):
        """A write that fails fires False (and is logged) rather than failing the action."""
        journal = Journal(lambda fn: defer.fail(DISK_FULL))
        self.assertIs(self.successResultOf(journal.record(Entry(T0, "kick", "a", "b"))), False)
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.OperationalError)), 1)


class ProtocolCase(unittest.TestCase):
    """Protocol level: an admin, alice and bob logged in at T0 on StringTransports."""

    limits: dict = {}

    def setUp(self, bans=None):
        path = Path(self.mktemp())
        path.mkdir(parents=True)
        self.h = ProtocolHarness(path, admins={"boss": "boss-password"}, bans=bans,
                                 **self.limits)
        self.h.clock.advance(T0)
        self.boss = self.h.login("boss", "boss-password")
        self.alice = self.h.login("alice")
        self.bob = self.h.login("bob")
        for proto in (self.boss, self.alice):
            self.h.read(proto)


class ModlogCommandTests(ProtocolCase):
    """/modlog for admins: format, order, count."""

    def test_modlog_for_admins_only(self):
        """A non-admin's /modlog is refused; /help lists /modlog to admins only."""
        self.h.send(self.alice, "/modlog", "/help")
        lines = self.h.read(self.alice)
        self.assertEqual(lines[0], "! permission denied")
        self.assertNotIn("/modlog", " ".join(lines))
        self.h.send(self.boss, "/help")
        self.assertIn("/modlog [N]", " ".join(self.h.read(self.boss)))

    def test_modlog_empty(self):
        """With nothing journaled, /modlog says so."""
        self.h.send(self.boss, "/modlog")
        self.assertEqual(self.h.read(self.boss), ["* no moderation entries"])

    def test_modlog_lists_actions_oldest_first(self):
        """/modlog shows each action with its time, actor, target, expiry and reason."""
        self.h.send(self.boss, "/mute bob 2h")
        self.h.clock.advance(60)
        self.h.send(self.boss, "/unmute bob", "/kick bob be nice", "/ban carol 1d spam",
                    "/unban carol")
        self.h.read(self.boss)
        self.h.send(self.boss, "/modlog")
        self.assertEqual(self.h.read(self.boss), [
            "* 2026-11-25 15:00:00Z mute bob by boss until 2026-11-25 17:00:00Z",
            "* 2026-11-25 15:01:00Z unmute bob by boss",
            "* 2026-11-25 15:01:00Z kick bob by boss: be nice",
            "* 2026-11-25 15:01:00Z ban carol by boss until 2026-11-26 15:01:00Z: spam",
            "* 2026-11-25 15:01:00Z unban carol by boss",
        ])
        self.h.clock.advance(10)  # within the flood limit
        self.h.send(self.boss, "/MODLOG   2")
        self.assertEqual(self.h.read(self.boss), [
            "* 2026-11-25 15:01:00Z ban carol by boss until 2026-11-26 15:01:00Z: spam",
            "* 2026-11-25 15:01:00Z unban carol by boss",
        ])

    def test_modlog_bad_count(self):
        """A count that is not 1 to 200 gets the usage line."""
        self.h.send(self.boss, "/modlog x", "/modlog 0", "/modlog 201", "/modlog -1",
                    "/modlog 2 3")
        self.assertEqual(self.h.read(self.boss), ["! usage: /modlog [N]"] * 5)


class HeldLinesTests(ProtocolCase):
    """With a database that answers only when told, the admin's lines keep their order."""

    def setUp(self):
        self.runner = ManualRunner()
        super().setUp(bans=BanStore(self.runner, {}))

    def test_kick_holds_the_admins_next_lines(self):
        """The admin's line after /kick reaches the room after the kick, which waits for
        the journal."""
        self.h.send(self.boss, "/kick bob spam", "still here")
        self.assertEqual(self.h.read(self.alice), [])
        self.assertFalse(self.h.closed(self.bob))
        self.runner.fire()
        self.assertEqual(self.h.read(self.alice),
                         ["* bob was kicked by boss: spam", "<boss> still here"])
        self.assertTrue(self.h.closed(self.bob))


class ServerDisconnectTests(ProtocolCase):
    """The server's own disconnects are journaled with actor `server`."""

    limits = {"flood_burst": 5, "flood_rate": 2.0, "flood_kick": 10, "sendq": 4096}

    def test_flood_kick_journaled(self):
        """A flood kick appears in /modlog as a kick by server."""
        self.h.send(self.bob, *["spam"] * 16)
        self.assertTrue(self.h.closed(self.bob))
        self.h.send(self.boss, "/modlog")
        self.assertEqual(self.h.read(self.boss)[-1],
                         "* 2026-11-25 15:00:00Z kick bob by server: flooding")

    def test_send_queue_disconnect_journaled(self):
        """A client cut off for not reading appears in /modlog as a disconnect by server."""
        self.bob.transport.producer.pauseProducing()
        for i in range(60):
            self.h.send(self.alice, f"{i:03d} " + "x" * 100)
            self.h.clock.advance(1)
        self.assertIsNone(self.h.room.get("bob"))
        self.h.read(self.boss)
        self.h.send(self.boss, "/modlog")
        self.assertEqual(self.h.read(self.boss), [
            "* 2026-11-25 15:00:35Z disconnect bob by server: send queue exceeded"])
