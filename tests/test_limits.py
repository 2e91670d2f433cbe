"""Abuse limits and moderation that holds, on the protocol with a Clock."""

from pathlib import Path

from twisted.internet import task
from twisted.trial import unittest

from chatd.config import Limits
from chatd.core.limits import LoginFailures, TokenBucket
from tests.helpers import ProtocolHarness


class LimitsTestCase(unittest.TestCase):
    limits: dict = {}

    def setUp(self):
        self.start()

    def start(self, **kw) -> None:
        """A fresh harness with boss as admin; kw as for ProtocolHarness."""
        path = Path(self.mktemp())
        path.mkdir(parents=True)
        self.h = ProtocolHarness(path, admins={"boss": "boss-password"}, **self.limits, **kw)

    def login(self, name, password=None, host="127.0.0.1"):
        proto = self.h.connect(host=host)
        self.h.send(proto, name)
        if password is not None:
            self.h.send(proto, password)
        self.h.read(proto)
        return proto


class LoginTimeoutTests(LimitsTestCase):
    limits = {"login_timeout": 30}

    def test_idle_connection_closed(self):
        """A connection that does not log in within login_timeout is told and closed."""
        proto = self.h.connect()
        self.h.read(proto)
        self.h.clock.advance(29)
        self.assertFalse(self.h.closed(proto))
        self.h.clock.advance(1)
        self.assertEqual(self.h.read(proto), ["! login timed out"])
        self.assertTrue(self.h.closed(proto))

    def test_logged_in_user_stays(self):
        """Once logged in, the login timeout no longer applies."""
        proto = self.login("alice")
        self.h.clock.advance(3600)
        self.assertFalse(self.h.closed(proto))


class FloodTests(LimitsTestCase):
    limits = {"flood_burst": 5, "flood_rate": 2.0, "flood_kick": 10,
              "flood_kick_window": 30}

    def test_burst_then_slow_down(self):
        """Five lines go through at once; the sixth gets '! slow down' and is not delivered."""
        alice, bob = self.login("alice"), self.login("bob")
        self.h.read(alice)
        self.h.send(alice, *[f"line {i}" for i in range(6)])
        self.assertEqual(self.h.read(bob), [f"<alice> line {i}" for i in range(5)])
        self.assertEqual(self.h.read(alice), ["! slow down"])
        self.h.clock.advance(0.5)
        self.h.send(alice, "after a pause")
        self.assertEqual(self.h.read(bob), ["<alice> after a pause"])

    def test_sustained_flood_kicked(self):
        """More than flood_kick refused lines: the server kicks, and the room sees why."""
        alice, bob = self.login("alice"), self.login("bob")
        self.h.read(alice)
        self.h.send(alice, *["spam"] * 16)
        self.assertEqual(self.h.read(alice)[-1], "! you were kicked by server: flooding")
        self.assertTrue(self.h.closed(alice))
        self.assertEqual(self.h.read(bob), ["<alice> spam"] * 5 +
                         ["* alice was kicked by server: flooding"])

    def test_steady_talker_never_limited(self):
        """Someone typing at two lines a second is never slowed down."""
        alice, bob = self.login("alice"), self.login("bob")
        self.h.read(alice)
        for i in range(40):
            self.h.send(alice, f"steady {i}")
            self.h.clock.advance(0.5)
        self.assertEqual(len(self.h.read(bob)), 40)
        self.assertEqual(self.h.read(alice), [])


class LimitsQueryTests(LimitsTestCase):
    limits = {"flood_burst": 7, "flood_rate": 0.5, "max_line": 512}

    def test_limits_answers_the_limits_in_force(self):
        """/limits tells a client the flood limits and line length it is held
        to (so chatd-client can pace a paste), and the new ones after a reload."""
        alice = self.login("alice")
        self.h.send(alice, "/limits")
        self.assertEqual(self.h.read(alice),
                         ["* limits flood_burst=7 flood_rate=0.5 max_line=512"])
        self.h.gate.limits.flood_rate = 2.0
        self.h.factory.limits_changed()
        self.h.send(alice, "/LIMITS")
        self.assertEqual(self.h.read(alice),
                         ["* limits flood_burst=7 flood_rate=2 max_line=512"])


class SendQueueTests(LimitsTestCase):
    limits = {"sendq": 4096}

    def test_reader_that_does_not_read_is_dropped(self):
        """Past sendq bytes waiting for a client, it is cut off and the room told."""
        alice, bob = self.login("alice"), self.login("bob")
        self.h.read(alice)
        bob.transport.producer.pauseProducing()  # what the transport says when its buffer is full
        for i in range(60):
            self.h.send(alice, f"{i:03d} " + "x" * 100)
            self.h.clock.advance(1)
        self.assertTrue(bob.transport.disconnected or self.h.closed(bob))
        self.assertIsNone(self.h.room.get("bob"))
        self.assertIn("* bob left (send queue exceeded)", self.h.read(alice))

    def test_reader_that_drains_stays(self):
        """A client whose buffer keeps draining is never cut off."""
        alice, bob = self.login("alice"), self.login("bob")
        for i in range(60):
            bob.transport.producer.pauseProducing()
            self.h.send(alice, f"{i:03d} " + "x" * 100)
            bob.transport.producer.resumeProducing()
            self.h.clock.advance(1)
        self.assertIsNotNone(self.h.room.get("bob"))


class ConnectionLimitTests(LimitsTestCase):
    limits = {"max_clients": 4, "max_per_ip": 2}

    def test_per_address(self):
        """A third connection from one address is refused; others' addresses are not."""
        first, _ = self.h.connect(), self.h.connect()
        third = self.h.connect()
        self.assertEqual(self.h.read(third), ["! too many connections from your address"])
        self.assertTrue(self.h.closed(third))
        other = self.h.connect(host="127.0.0.2")
        self.assertEqual(self.h.read(other)[-1], "? username")
        self.h.close(first)
        again = self.h.connect()
        self.assertEqual(self.h.read(again)[-1], "? username")

    def test_server_full(self):
        """Past max_clients every new connection gets '! server full'."""
        for i in range(4):
            self.h.connect(host=f"127.0.0.{i + 1}")
        late = self.h.connect(host="127.0.0.9")
        self.assertEqual(self.h.read(late), ["! server full"])
        self.assertEqual(len(self.h.factory.connections), 4)


class LoginFailureTests(LimitsTestCase):
    limits = {"login_failures": 3, "login_failure_window": 300}

    def guess(self, password, host="127.0.0.1"):
        """Try the admin's name and password; return the connection and its lines."""
        proto = self.h.connect(host=host)
        self.h.read(proto)
        self.h.send(proto, "boss")
        lines = self.h.read(proto)
        if lines == ["? password"]:
            self.h.send(proto, password)
            lines = self.h.read(proto)
        return proto, lines

    def test_guessing_shuts_the_address_out(self):
        """After 3 wrong passwords, admin logins from that address are refused for a while."""
        for _ in range(3):
            self.assertEqual(self.guess("nope")[1], ["! wrong password"])
        blocked, lines = self.guess("boss-password")
        self.assertEqual(lines, ["! too many failed logins, try later"])
        self.assertTrue(self.h.closed(blocked))
        elsewhere, lines = self.guess("boss-password", host="127.0.0.2")
        self.assertIn("* logged in as boss (admin) in testroom", lines)
        self.h.close(elsewhere)
        ordinary = self.login("alice")
        self.assertFalse(self.h.closed(ordinary))
        self.h.clock.advance(300)
        self.assertIn("* logged in as boss (admin) in testroom",
                      self.guess("boss-password")[1])

    def test_failures_spread_out_do_not_block(self):
        """Two mistakes now and one much later are not an attack."""
        self.guess("nope"), self.guess("nope")
        self.h.clock.advance(301)
        self.guess("nope")
        self.assertIn("* logged in as boss (admin) in testroom",
                      self.guess("boss-password")[1])


class ModerationTests(LimitsTestCase):
    def start(self, **kw) -> None:
        super().start(**kw)
        self.boss = self.login("boss", "boss-password")
        self.alice = self.login("alice", host="127.0.0.5")
        self.bob = self.login("bob", host="127.0.0.6")
        for p in (self.boss, self.alice, self.bob):
            self.h.read(p)

    def test_timed_ban(self):
        """/ban NAME 2h: refused for two hours, shown with its end in /bans, then let in."""
        self.h.send(self.boss, "/ban bob 2h spam", "/bans")
        self.assertEqual(self.h.read(self.bob), ["! you were banned by boss for 2h: spam"])
        lines = self.h.read(self.boss)
        self.assertEqual(lines[0], "* bob was banned by boss for 2h: spam")
        self.assertRegex(lines[2], r"^\* bob by boss at .+Z until .+Z: spam$")
        self.h.close(self.bob)
        self.h.clock.advance(7199)
        early = self.h.connect(host="127.0.0.6")
        self.h.send(early, "bob")
        self.assertEqual(self.h.read(early)[-1], "! you are banned: spam")
        self.h.clock.advance(1)
        later = self.h.connect(host="127.0.0.6")
        self.h.send(later, "bob")
        self.assertIn("* logged in as bob in testroom", self.h.read(later))

    def test_address_ban(self):
        """/ban -ip: a new name from bob's address is refused; /unban lets it in."""
        self.h.send(self.boss, "/ban -ip bob evading")
        self.assertEqual(self.h.read(self.bob), ["! you were banned by boss: evading"])
        self.h.close(self.bob)
        sock_puppet = self.h.connect(host="127.0.0.6")
        self.h.send(sock_puppet, "totally_new")
        self.assertEqual(self.h.read(sock_puppet)[-1], "! you are banned: evading")
        self.assertTrue(self.h.closed(sock_puppet))
        self.h.close(sock_puppet)
        self.assertNotIn("127.0.0.6", self.h.gate.per_host,
                         "a refusal holds no place")
        self.h.read(self.boss)
        self.h.send(self.boss, "/bans")
        self.assertIn("(address 127.0.0.6)", self.h.read(self.boss)[1])
        self.h.send(self.boss, "/unban bob")
        back = self.h.connect(host="127.0.0.6")
        self.h.send(back, "bob")
        self.assertIn("* logged in as bob in testroom", self.h.read(back))

    def test_address_ban_spares_admins(self):
        """An admin connecting from a banned address can still log in."""
        self.h.send(self.boss, "/ban -ip bob")
        self.h.close(self.boss)
        boss2 = self.h.connect(host="127.0.0.6")
        self.h.send(boss2, "boss")
        self.assertEqual(self.h.read(boss2)[-1], "? password")

    def test_address_ban_of_own_address_refused(self):
        """An admin cannot ban the address they are connected from themselves."""
        carol = self.login("carol")
        self.h.send(self.boss, "/ban -ip carol")
        self.assertEqual(self.h.read(self.boss)[-1],
                         "! carol connects from your own address: ban the name only")
        self.assertFalse(self.h.closed(carol))

    def test_bad_durations_refused(self):
        """A duration that does not parse, or 0, is refused rather than banning for good."""
        self.h.send(self.boss, "/ban bob 2x spam", "/ban bob 0s", "/ban bob 9999999w",
                    "/mute bob 0m", "/ban bob 2H shouting")
        lines = self.h.read(self.boss)
        self.assertEqual([line[:17] for line in lines[:4]],
                         ["! bad duration 2x", "! bad duration 0s",
                          "! bad duration 99", "! bad duration 0m"])
        self.assertEqual(lines[4], "* bob was banned by boss for 2h: shouting")

    def test_two_admins_ban_at_once(self):
        """While one ban is being written, a second ban of the same name is refused."""
        from twisted.internet import defer

        from chatd.core.store import BanStore

        waiting = []
        self.start(bans=BanStore(lambda fn: waiting.append(defer.Deferred()) or waiting[-1],
                                 {}))
        self.h.send(self.boss, "/ban bob first")
        self.h.server.moderation.ban(self.h.server.get("boss"), "carl")  # any other ban is fine
        from chatd.core.errors import NotAllowed
        self.assertRaises(NotAllowed, self.h.server.moderation.ban, self.h.server.get("boss"),
                          "BOB", "second")
        for d in waiting:
            d.callback(None)
        self.assertEqual(self.h.read(self.alice).count("* bob was banned by boss: first"), 1)

    def test_address_ban_needs_user_online(self):
        """/ban -ip of someone not online says so and bans nothing."""
        self.h.send(self.boss, "/ban -ip ghost")
        self.assertEqual(self.h.read(self.boss), ["! no such user: ghost"])

    def test_mute(self):
        """A muted user stays and reads, gets '! you are muted' when speaking; /unmute ends it."""
        self.h.send(self.boss, "/mute alice")
        self.assertEqual(self.h.read(self.bob), ["* alice was muted by boss"])
        self.h.send(self.alice, "hello?", "/me waves", "/msg bob psst")
        self.assertEqual(self.h.read(self.alice), ["* alice was muted by boss"] +
                         ["! you are muted"] * 3)
        self.h.send(self.bob, "you can still read this")
        self.assertEqual(self.h.read(self.alice), ["<bob> you can still read this"])
        self.h.send(self.boss, "/unmute alice", "/unmute alice")
        self.assertEqual(self.h.read(self.boss)[-1], "! alice is not muted")
        self.h.send(self.alice, "free again")
        self.assertEqual(self.h.read(self.bob)[-1], "<alice> free again")

    def test_timed_mute_ends(self):
        """/mute NAME 10m ends by itself after ten minutes."""
        self.h.send(self.boss, "/mute alice 10m")
        self.assertEqual(self.h.read(self.bob), ["* alice was muted by boss for 10m"])
        self.h.clock.advance(599)
        self.h.send(self.alice, "now?")
        self.assertEqual(self.h.read(self.alice)[-1], "! you are muted")
        self.h.clock.advance(1)
        self.h.send(self.alice, "now!")
        self.assertEqual(self.h.read(self.bob), ["<alice> now!"])

    def test_only_admins_mute(self):
        """Ordinary users cannot mute or unmute; admins cannot mute admins."""
        self.h.send(self.alice, "/mute bob", "/unmute bob")
        self.assertEqual(self.h.read(self.alice), ["! permission denied"] * 2)
        self.h.send(self.boss, "/mute boss", "/mute", "/mute bob soon")
        self.assertEqual(self.h.read(self.boss), [
            "! you cannot mute yourself", "! usage: /mute NAME [DURATION]",
            "! usage: /mute NAME [DURATION], DURATION like 30s, 10m, 2h, 7d"])


class BadLineFloodTests(LimitsTestCase):
    limits = {"flood_burst": 5, "flood_rate": 2.0, "flood_kick": 10}

    def test_invalid_lines_count(self):
        """Lines that are not UTF-8 or too long are charged like any other line."""
        alice = self.login("alice")
        self.h.send(alice, *[b"\xff"] * 5, b"x" * 3000, b"\xff")
        lines = self.h.read(alice)
        self.assertEqual(lines, ["! invalid UTF-8: line dropped"] * 5 + ["! slow down"] * 2)

    def test_flood_before_login_closes(self):
        """Garbage before login is rate limited too, and a flood of it is cut off."""
        proto = self.h.connect()
        self.h.read(proto)
        self.h.send(proto, *[b"\xff"] * 30)
        self.assertEqual(self.h.read(proto)[-1], "! you were kicked by server: flooding")
        self.assertTrue(self.h.closed(proto))


class BannedDuringPasswordCheckTests(LimitsTestCase):
    def test_name_banned_while_its_password_is_checked_is_closed(self):
        """A name banned while its password is being checked is refused and
        closed like any banned name, not offered another username."""
        from twisted.internet import defer

        from chatd.core.store import Ban

        pending = []
        self.start(run_blocking=lambda fn, *a: pending.append(defer.Deferred()) or pending[-1])
        proto = self.h.connect()
        self.h.send(proto, "boss", "the password")
        self.h.read(proto)
        self.successResultOf(self.h.bans.add(Ban("boss", "root", "spam", 0.0)))
        pending[0].callback(True)
        self.assertEqual(self.h.read(proto), ["! you are banned: spam"])
        self.assertTrue(self.h.closed(proto))


class ParallelGuessTests(LimitsTestCase):
    limits = {"login_failures": 3, "login_failure_window": 300}

    def test_guessing_on_many_connections_at_once(self):
        """Ten password prompts at once still allow only three guesses."""
        from twisted.internet import defer

        pending = []
        self.start(run_blocking=lambda fn, *a: pending.append(defer.Deferred()) or pending[-1])
        conns = []
        for _ in range(10):
            proto = self.h.connect()
            self.h.send(proto, "boss")
            conns.append(proto)
        for proto in conns:
            self.h.send(proto, "guess")
        self.assertEqual(len(pending), 3)
        refused = [p for p in conns if self.h.read(p)[-1] == "! too many failed logins, try later"]
        self.assertEqual(len(refused), 7)
        for d in pending:
            d.callback(False)


class CloseTests(LimitsTestCase):
    def test_peer_that_never_reads_is_aborted(self):
        """A closed connection whose peer stops reading is aborted after a grace period."""
        from chatd.line.protocol import CLOSE_GRACE

        alice = self.login("alice")
        self.h.send(alice, "/quit")
        self.assertTrue(self.h.closed(alice))
        self.assertFalse(alice.transport.disconnected)
        self.h.clock.advance(CLOSE_GRACE)
        self.assertTrue(alice.transport.disconnected)

    def test_quitter_gets_what_was_said_before(self):
        """Someone who /quits gets the lines said before they left, then '* bye'."""
        alice, bob = self.login("alice"), self.login("bob")
        self.h.read(bob)
        self.h.server.say(self.h.server.get("alice"), self.h.room, "last words")
        self.h.send(bob, "/quit")
        self.assertEqual(self.h.read(bob), ["<alice> last words", "* bye"])
        self.assertIsNotNone(alice)


class CounterTests(unittest.TestCase):
    def test_token_bucket_refills(self):
        """The bucket allows its burst, then refills at its rate, never above the burst."""
        clock = task.Clock()
        bucket = TokenBucket(clock, Limits(flood_burst=3, flood_rate=1.0))
        self.assertEqual([bucket.take() for _ in range(4)], [True, True, True, False])
        clock.advance(100)
        self.assertEqual([bucket.take() for _ in range(4)], [True, True, True, False])

    def test_login_failures_bounded(self):
        """A spray of addresses cannot grow the failure table past its cap."""
        clock = task.Clock()
        failures = LoginFailures(clock, Limits(login_failures=1, login_failure_window=300),
                                 max_addresses=100)
        for i in range(1000):
            failures.failed(f"10.0.{i // 250}.{i % 250}")
        self.assertLessEqual(failures.tracked(), 100)
        self.assertTrue(failures.blocked("10.0.3.249"))
