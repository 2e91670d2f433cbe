"""The server's counters and /stats, on the protocol with a Clock."""

from pathlib import Path

from twisted.trial import unittest

from chatd.core.server import Server
from chatd.core.stats import Stats, StatsService, format_uptime
from chatd.core.store import BanStore
from tests.helpers import ProtocolHarness, join


class StatsTestCase(unittest.TestCase):
    limits: dict = {"flood_burst": 5, "flood_rate": 1.0, "flood_kick": 3,
                    "flood_kick_window": 30, "max_per_ip": 3, "sendq": 4096}

    def setUp(self):
        path = Path(self.mktemp())
        path.mkdir(parents=True)
        self.h = ProtocolHarness(path, admins={"boss": "boss-password", "root": "root-password"},
                                 **self.limits)
        self.stats = self.h.factory.stats
        self.hosts = 0

    def login(self, name, password=None, host=None):
        """Log name in, each from an address of its own unless host is given."""
        self.hosts += 1
        proto = self.h.connect(host=host or f"127.0.1.{self.hosts}")
        self.h.send(proto, name)
        if password is not None:
            self.h.send(proto, password)
        self.h.read(proto)
        return proto


class CountingTests(StatsTestCase):
    def test_chat_moves_the_traffic_counters(self):
        """Lines people send, and the lines and bytes the room hands out, are counted."""
        alice, bob, carol = self.login("alice"), self.login("bob"), self.login("carol")
        for proto in (alice, bob, carol):
            self.h.read(proto)
        before = (self.stats.lines_received, self.stats.lines_delivered, self.stats.bytes_sent)
        self.h.send(alice, "hello", "again")
        got = [self.h.read(bob), self.h.read(carol)]
        self.assertEqual(got, [["<alice> hello", "<alice> again"]] * 2)
        self.assertEqual(self.stats.lines_received - before[0], 2)
        self.assertEqual(self.stats.lines_delivered - before[1], 4, "2 lines x 2 listeners")
        self.assertEqual(self.stats.bytes_sent - before[2],
                         2 * len(b"<alice> hello\r\n<alice> again\r\n"))
        self.assertEqual((self.stats.logins, self.stats.peak_users), (3, 3))

    def test_private_lines_and_replies_count_as_delivered(self):
        """/msg gives the target a line and the sender its confirmation: two deliveries."""
        alice, bob = self.login("alice"), self.login("bob")
        self.h.read(alice)
        before = self.stats.lines_delivered
        self.h.send(alice, "/msg bob psst")
        self.assertEqual(self.h.read(bob), ["[alice] psst"])
        self.assertEqual(self.stats.lines_delivered - before, 2)

    def test_peak_users_stays_after_they_leave(self):
        """Peak users is the most ever in the room at once, not how many are there now."""
        self.login("alice")
        bob = self.login("bob")
        self.h.send(bob, "/quit")
        self.h.close(bob)
        self.login("carol")
        self.assertEqual((self.stats.peak_users, self.stats.logins), (2, 3))

    def test_flood_refusals_and_kick(self):
        """Each '! slow down' is counted, and so is the kick that ends a flood."""
        alice = self.login("alice")
        self.login("bob")
        for i in range(9):
            self.h.send(alice, f"line {i}")
        lines = self.h.read(alice)
        self.assertEqual(lines.count("! slow down"), 3)
        self.assertEqual(lines[-1], "! you were kicked by server: flooding")
        self.assertEqual((self.stats.flood_refusals, self.stats.flood_kicks), (3, 1))
        self.assertEqual(self.stats.disconnects, {"flood": 1})

    def test_flood_before_login_is_a_refusal(self):
        """A connection flooding before it logs in is counted as kicked and refused."""
        proto = self.h.connect()
        self.h.send(proto, *[b"\xff"] * 9)
        self.assertTrue(self.h.closed(proto))
        self.assertEqual(self.stats.flood_kicks, 1)
        self.assertEqual(self.stats.refusals["flood"], 1)

    def test_disconnects_by_cause(self):
        """Quit, a closed connection, kick, ban and a full send queue each count by cause."""
        boss = self.login("boss", "boss-password")
        quitter, closer, kicked, banned = (self.login(n) for n in
                                           ("quitter", "closer", "kicked", "banned"))
        self.h.send(quitter, "/quit bye")
        self.h.close(quitter)
        self.h.close(closer)
        self.h.send(boss, "/kick kicked")
        self.h.close(kicked)
        self.h.send(boss, "/ban banned")
        self.h.close(banned)
        slow = self.login("slow")
        slow.transport.producer.pauseProducing()
        for _ in range(60):
            self.h.send(boss, "x" * 100)
            self.h.clock.advance(1)
        self.assertIsNone(self.h.room.get("slow"))
        self.assertEqual(self.stats.disconnects, {"quit": 1, "closed": 1, "kicked": 1,
                                                  "banned": 1, "sendq": 1})
        self.assertEqual(self.stats.sendq_disconnects, 1)

    def test_refusals_by_cause(self):
        """Banned names, too many bad names, wrong passwords and per-address limits count."""
        boss = self.login("boss", "boss-password")
        self.h.send(boss, "/ban spammer")
        spammer = self.h.connect(host="127.0.0.2")
        self.h.send(spammer, "spammer")
        self.assertTrue(self.h.closed(spammer))
        namer = self.h.connect(host="127.0.0.2")
        self.h.send(namer, "bad name", "bad name", "bad name")
        self.assertTrue(self.h.closed(namer))
        guesser = self.h.connect(host="127.0.0.3")
        self.h.send(guesser, "root", "wrong")
        self.assertTrue(self.h.closed(guesser))
        extra = [self.h.connect(host="127.0.0.4") for _ in range(4)]
        self.assertTrue(self.h.closed(extra[-1]))
        late = self.h.connect(host="127.0.0.5")
        self.h.clock.advance(self.h.factory.limits.login_timeout)
        self.assertTrue(self.h.closed(late))
        self.assertEqual(self.stats.refusals, {
            "banned": 1, "bad name": 1, "wrong password": 1, "per-ip limit": 1,
            "login timeout": 3 + 1,  # the three per-ip connections never logged in
        })
        self.assertEqual(self.stats.failed_admin_logins, 1)

    def test_server_alone_counts_with_its_own_stats(self):
        """A server built without a Stats gets its own; one passed in is the one counted."""
        shared = Stats(0.0)
        server = Server(self.h.clock, BanStore.in_memory(), stats=shared)
        join(server, "alice")
        self.assertIs(server.stats, shared)
        self.assertIs(server.landing.stats, shared)
        self.assertEqual(shared.logins, 1)
        self.assertEqual(Server(self.h.clock, BanStore.in_memory()).stats.logins, 0)


class StatsCommandTests(StatsTestCase):
    def setUp(self):
        super().setUp()
        self.h.clock.advance(1000)
        self.stats.started = self.h.clock.seconds()
        self.stats.snapshot(self.stats.started)
        self.service = StatsService(self.stats, self.h.clock)
        self.service.startService()
        self.addCleanup(self.service.stopService)

    def stats_lines(self, proto):
        """What /stats shows proto, after the lines it had not read yet."""
        self.h.read(proto)
        self.h.send(proto, "/stats")
        return self.h.read(proto)

    def pass_time(self, seconds):
        """Let seconds go by, in the steps a running reactor would take."""
        for _ in range(int(seconds // 10)):
            self.h.clock.advance(10)
        self.h.clock.advance(seconds % 10)

    def test_non_admin_refused(self):
        """/stats is for admins: others get '! permission denied'."""
        alice = self.login("alice")
        self.assertEqual(self.stats_lines(alice), ["! permission denied"])

    def test_stats_report(self):
        """Uptime, users now and peak, the last minute's traffic, refusals and disconnects."""
        boss = self.login("boss", "boss-password")
        alice, bob = self.login("alice"), self.login("bob")
        self.h.send(bob, "/quit")
        self.h.close(bob)
        self.h.connect(host="127.0.0.9").dataReceived(b"bad name\n" * 3)
        self.pass_time(3725)
        self.h.send(alice, "hi", "there")
        self.assertEqual(self.stats_lines(boss), [
            "* up 1h 2m 5s",
            "* users: 2 now, 3 peak, 3 logins",
            "* last minute: 3 lines in, 2 delivered",
            "* refused: bad name 1",
            "* disconnects: quit 1",
        ])

    def test_last_minute_forgets_older_traffic(self):
        """Lines from more than about a minute ago drop out of the last-minute figures."""
        boss = self.login("boss", "boss-password")
        alice = self.login("alice")
        self.h.send(alice, "early", "and more")
        self.pass_time(70)
        self.h.send(alice, "late")
        lines = self.stats_lines(boss)
        # "late" and the /stats line itself in; "<alice> late" to boss out.
        self.assertIn("* last minute: 2 lines in, 1 delivered", lines)
        self.assertIn("* up 1m 10s", lines)

    def test_nothing_yet(self):
        """A fresh server says none for refusals and disconnects."""
        boss = self.login("boss", "boss-password")
        lines = self.stats_lines(boss)
        self.assertEqual(lines[0], "* up 0s")
        self.assertEqual(lines[3:], ["* refused: none", "* disconnects: none"])


class FormatTests(unittest.TestCase):
    def test_uptime(self):
        """Uptime shows every unit from the largest that is not zero."""
        self.assertEqual([format_uptime(s) for s in (0, 59, 60, 3600, 90061)],
                         ["0s", "59s", "1m 0s", "1h 0m 0s", "1d 1h 1m 1s"])
