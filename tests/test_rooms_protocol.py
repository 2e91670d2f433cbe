"""Rooms, history and registered names over the line protocol (StringTransport).

Each test checks the lines of docs/protocol.md byte for byte: /join, /part,
/rooms, /who, /topic, the `= TIME` history lines, /register and logging in
to a registered name (wrong password, takeover of a stale connection).
"""

from __future__ import annotations

from pathlib import Path

from twisted.logger import capturedLogs
from twisted.trial import unittest

from chatd.core.store import BanStore
from tests.helpers import ManualRunner, ProtocolHarness

T0 = 1795618800.0  # 2026-11-25 15:00:00Z
PASSWORD = "correct horse battery"


class RoomsProtocolCase(unittest.TestCase):
    def setUp(self):
        self.harness()

    def harness(self, **kw) -> ProtocolHarness:
        """A fresh harness (boss the admin), its clock (the wall clock too) at T0."""
        path = Path(self.mktemp())
        path.mkdir(parents=True)
        kw = {"flood_burst": 1000, **kw}  # these tests are not about flooding
        self.h = ProtocolHarness(path, admins={"boss": "s3cret-pass"}, **kw)
        self.h.clock.advance(T0)
        return self.h

    def said(self, proto, *lines: str) -> list[str]:
        """What proto is answered to lines."""
        self.h.send(proto, *lines)
        return self.h.read(proto)

    def read(self, *protos) -> list[list[str]]:
        return [self.h.read(proto) for proto in protos]


class JoinPartTests(RoomsProtocolCase):
    def test_join_then_part(self):
        """/join moves a user to another room (made on the spot): the old room hears
        `* NAME left (joined ROOM)`, the new one `* NAME joined`, the mover gets
        `* you are in ROOM` and who is there; /part brings them back the same way."""
        alice, bob, carol = (self.h.login(name) for name in ("alice", "bob", "carol"))
        self.read(alice, bob)
        self.assertEqual(self.said(alice, "/join games"),
                         ["* you are in games", "* online (1): alice"])
        self.assertEqual(self.read(bob, carol), [["* alice left (joined games)"]] * 2)
        self.assertEqual(self.said(bob, "/JOIN   Games"),
                         ["* you are in games", "* online (2): alice, bob"])
        self.assertEqual(self.read(alice, carol),
                         [["* bob joined"], ["* bob left (joined games)"]])
        self.assertEqual(self.said(alice, "/part"),
                         ["* you are in testroom", "* online (2): alice, carol"])
        self.assertEqual(self.read(bob, carol),
                         [["* alice left (joined testroom)"], ["* alice joined"]])

    def test_message_of_the_day_only_at_login(self):
        """The message of the day comes with the login; moving between rooms shows
        the room, not the message of the day again."""
        self.harness(motd="be nice")
        alice = self.h.connect()
        self.h.read(alice)
        self.assertEqual(self.said(alice, "alice"), [
            "* logged in as alice in testroom", "* online (1): alice", "* be nice"])
        self.assertEqual(self.said(alice, "/join games"),
                         ["* you are in games", "* online (1): alice"])
        self.assertEqual(self.said(alice, "/part"),
                         ["* you are in testroom", "* online (1): alice"])

    def test_lines_stay_in_their_room(self):
        """A line, a /me and /who reach only the room the user is in now; a
        private message reaches its target in another room."""
        alice, bob, carol = (self.h.login(name) for name in ("alice", "bob", "carol"))
        self.h.send(alice, "/join games")
        self.h.send(bob, "/join games")
        self.read(alice, bob, carol)
        self.h.send(alice, "in games", "/me waves")
        self.assertEqual(self.read(bob, carol), [["<alice> in games", "+ alice waves"], []])
        self.assertEqual(self.said(carol, "/who"), ["* online (1): carol"])
        self.assertEqual(self.said(alice, "/who"), ["* online (2): alice, bob"])
        self.assertEqual(self.said(carol, "/msg alice psst"), ["[->alice] psst"])
        self.assertEqual(self.read(alice, bob), [["[carol] psst"], []])

    def test_rooms_lists_every_room_with_its_count(self):
        """/rooms lists every room, sorted by name, with how many are in it; an
        emptied room made by /join is gone from the list."""
        alice, bob = self.h.login("alice"), self.h.login("bob")
        self.h.send(alice, "/join zoo")
        self.h.send(bob, "/join Games")
        self.read(alice, bob)
        self.assertEqual(self.said(alice, "/rooms"),
                         ["* rooms (3): Games (1), testroom (0), zoo (1)"])
        self.h.send(bob, "/part")
        self.assertEqual(self.said(alice, "/rooms"),
                         ["* rooms (2): testroom (1), zoo (1)"])

    def test_join_refusals(self):
        """/join without one room name, with an invalid one, or to the room the
        user is in is refused with one `! ` line; /part in the landing room too."""
        alice = self.h.login("alice")
        self.assertEqual(self.said(alice, "/join"), ["! usage: /join ROOM"])
        self.assertEqual(self.said(alice, "/join a b"), ["! usage: /join ROOM"])
        self.assertEqual(self.said(alice, "/join #games"), [
            "! invalid room name: use 1-24 letters, digits, '_', '-' or '.'"])
        self.assertEqual(self.said(alice, "/join TESTROOM"),
                         ["! you are in testroom already"])
        self.assertEqual(self.said(alice, "/part"),
                         ["! you are in testroom, where everyone lands"])
        self.h.send(alice, "/join games")
        self.h.read(alice)
        self.assertEqual(self.said(alice, "/join games"), ["! you are in games already"])
        self.assertEqual(self.said(alice, "/rooms"), ["* rooms (2): games (1), testroom (0)"])

    def test_closed_server_joins_only_configured_rooms(self):
        """With open_rooms off, /join to a room not configured is refused; the
        configured ones exist while empty and may be joined."""
        self.harness(server={"open_rooms": False, "rooms": ["games"]})
        alice = self.h.login("alice")
        self.assertEqual(self.said(alice, "/rooms"), ["* rooms (2): games (0), testroom (1)"])
        self.assertEqual(self.said(alice, "/join poker"),
                         ["! no such room: poker (/rooms lists them)"])
        self.assertEqual(self.said(alice, "/join games"),
                         ["* you are in games", "* online (1): alice"])
        self.h.send(alice, "/part")
        self.h.read(alice)
        self.assertEqual(self.said(alice, "/rooms"), ["* rooms (2): games (0), testroom (1)"])


class TopicTests(RoomsProtocolCase):
    def test_topic_set_shown_and_cleared(self):
        """Anyone may read a room's topic; only an admin sets it, and the room (the
        admin too) hears it; whoever enters after is shown it; `/topic -` clears it."""
        boss, alice = self.h.login("boss", "s3cret-pass"), self.h.login("alice")
        self.h.read(boss)
        self.assertEqual(self.said(alice, "/topic"), ["* no topic in testroom"])
        self.assertEqual(self.said(alice, "/topic mine now"), ["! permission denied"])
        self.h.send(boss, "/topic  be kind ")
        self.assertEqual(self.read(boss, alice), [["* boss set the topic: be kind"]] * 2)
        self.assertEqual(self.said(alice, "/topic"), ["* topic: be kind"])
        carol = self.h.connect()
        self.h.read(carol)
        self.assertEqual(self.said(carol, "carol"), [
            "* logged in as carol in testroom", "* online (3): alice, @boss, carol",
            "* topic: be kind"])
        self.h.send(alice, "/join games")
        self.h.read(alice)
        self.assertEqual(self.said(alice, "/topic"), ["* no topic in games"])
        self.assertEqual(self.said(alice, "/part"), [
            "* you are in testroom", "* online (3): alice, @boss, carol", "* topic: be kind"])
        self.h.read(boss)
        self.h.send(boss, "/topic -")
        self.assertEqual(self.read(boss, alice), [["* boss cleared the topic"]] * 2)
        self.assertEqual(self.said(alice, "/topic"), ["* no topic in testroom"])


class HistoryProtocolTests(RoomsProtocolCase):
    def setUp(self):
        self.harness(history=3)

    def test_history_after_greeting_marked(self):
        """A late joiner gets the room's last messages and actions as `= TIME ` lines
        after the greeting (and topic), before the live lines; private messages and
        commands are never in it."""
        boss, alice = self.h.login("boss", "s3cret-pass"), self.h.login("alice")
        self.h.send(boss, "/topic hi")
        self.h.send(alice, "zero", "one")
        self.h.clock.advance(1)
        self.h.send(alice, "/me waves", "/msg boss a secret", "/who", "//slash")
        self.h.send(boss, "/msg alice another secret")
        bob = self.h.connect()
        self.h.read(bob)
        self.assertEqual(self.said(bob, "bob"), [
            "* logged in as bob in testroom",
            "* online (3): alice, bob, @boss",
            "* topic: hi",
            "= 2026-11-25 15:00:00Z <alice> one",
            "= 2026-11-25 15:00:01Z + alice waves",
            "= 2026-11-25 15:00:01Z <alice> /slash"])
        self.h.send(alice, "live")
        self.assertEqual(self.h.read(bob), ["<alice> live"])

    def test_history_of_the_room_joined(self):
        """/join shows the joined room's history after who is there; /part shows the
        landing room's, including what was said while the user was away."""
        alice, bob = self.h.login("alice"), self.h.login("bob")
        self.h.send(alice, "/join games", "in games")
        self.h.send(bob, "in testroom")
        self.read(alice, bob)
        self.assertEqual(self.said(bob, "/join games"), [
            "* you are in games", "* online (2): alice, bob",
            "= 2026-11-25 15:00:00Z <alice> in games"])
        self.assertEqual(self.said(alice, "/part"), [
            "* bob joined",
            "* you are in testroom", "* online (1): alice",
            "= 2026-11-25 15:00:00Z <bob> in testroom"])

    def test_lines_said_while_history_loads(self):
        """While a joiner's history is read from disk (here after a reload raised
        `history`, so memory holds none), what the room says goes into it, once and
        marked, and the joiner's own lines wait: nothing is lost, doubled or out of
        order."""
        runner = ManualRunner()
        self.harness(history=10, bans=BanStore(runner, {}))
        alice = self.h.login("alice")
        runner.drain()
        self.h.read(alice)
        self.h.send(alice, "before")
        runner.drain()
        self.h.server.history.limit = 20
        bob = self.h.connect()
        self.h.send(bob, "bob", "hello from bob")
        self.h.send(alice, "meanwhile")
        self.assertEqual(self.read(alice, bob), [[], ["* welcome to testroom", "? username"]])
        runner.drain()
        self.h.send(alice, "after")
        self.assertEqual(self.h.read(bob), [
            "* logged in as bob in testroom", "* online (2): alice, bob",
            "= 2026-11-25 15:00:00Z <alice> before",
            "= 2026-11-25 15:00:00Z <alice> meanwhile",
            "<alice> after"])
        self.assertEqual(self.h.read(alice), ["* bob joined", "<bob> hello from bob"])


class RegisterTests(RoomsProtocolCase):
    def register(self, proto, first=PASSWORD, second=PASSWORD) -> list[str]:
        self.h.send(proto, "/register", first)
        if second is not None:
            self.h.send(proto, second)
        return self.h.read(proto)

    def test_register_asks_twice_and_never_shows_the_password(self):
        """/register asks `? password` twice and registers the name; the password is
        sent to no one (not even back) and logged nowhere; the room hears nothing."""
        alice, bob = self.h.login("alice"), self.h.login("bob")
        self.h.read(alice)
        with capturedLogs() as events:
            self.h.send(alice, "/register")
            self.assertEqual(self.h.read(alice), [
                "* choose a password for alice (at least 8 characters), then type it again",
                "? password"])
            self.assertEqual(self.said(alice, PASSWORD), ["? password"])
            self.assertEqual(self.said(alice, PASSWORD), [
                "* alice is registered: logging in as alice asks for this password"])
        self.assertEqual(self.h.read(bob), [])
        self.assertTrue(self.h.user_file.is_registered("ALICE"))
        self.assertNotIn(PASSWORD, self.h.user_file.path.read_text())
        self.assertFalse(any(PASSWORD in repr(event) for event in events), events)
        self.assertEqual(self.said(alice, "/register"), ["! alice is registered already"])

    def test_register_again_after_the_operator_removed_the_name(self):
        """Once an operator has removed a registered name (chatd-admin remove-user),
        its owner, still online, may /register it again."""
        alice = self.h.login("alice")
        self.h.send(alice, "/register", PASSWORD, PASSWORD)
        self.h.read(alice)
        self.assertTrue(self.h.user_file.remove("alice"))
        self.assertEqual(self.said(alice, "/register")[-1], "? password")
        self.assertEqual(self.said(alice, "new password", "new password"), [
            "? password", "* alice is registered: logging in as alice asks for this password"])
        self.assertTrue(self.h.user_file.is_registered("alice"))

    def test_password_lines_are_taken_as_they_are(self):
        """A password that looks like a command or a line to the room is taken as
        the password, not run or said."""
        alice, bob = self.h.login("alice"), self.h.login("bob")
        self.h.read(alice)
        self.assertEqual(self.register(alice, "/quit now!", "/quit now!")[-1],
                         "* alice is registered: logging in as alice asks for this password")
        self.assertFalse(self.h.closed(alice))
        self.assertEqual(self.h.read(bob), [])

    def test_refused_passwords(self):
        """A password under 8 characters or a second one that differs registers
        nothing, and the next line is an ordinary one again."""
        alice, bob = self.h.login("alice"), self.h.login("bob")
        self.h.read(alice)
        self.assertEqual(self.register(alice, "short", None)[-1],
                         "! password too short (at least 8 characters): not registered")
        self.assertEqual(self.register(alice, PASSWORD, PASSWORD + "!")[-1],
                         "! the passwords differ: not registered")
        self.assertFalse(self.h.user_file.is_registered("alice"))
        self.h.send(alice, "hi")
        self.assertEqual(self.h.read(bob), ["<alice> hi"])

    def test_who_may_register(self):
        """Admins are told they have a password; `registration = "admins"` and
        `"off"` refuse everyone else with their own line."""
        boss = self.h.login("boss", "s3cret-pass")
        self.assertEqual(self.said(boss, "/register"),
                         ["! admins log in with their password already"])
        for mode, line in [("admins", "! only an admin can register a name on this server"),
                           ("off", "! registration is off on this server")]:
            self.harness(server={"registration": mode})
            alice = self.h.login("alice")
            self.assertEqual(self.said(alice, "/register", PASSWORD), [line])
            self.assertFalse(self.h.user_file.is_registered("alice"))


class RegisteredLoginTests(RoomsProtocolCase):
    def setUp(self):
        super().setUp()
        self.alice, self.bob = self.h.login("alice"), self.h.login("bob")
        self.h.send(self.alice, "/register", PASSWORD, PASSWORD)
        self.read(self.alice, self.bob)

    def reconnect(self, host: str = "127.0.0.1"):
        proto = self.h.connect(host)
        self.h.read(proto)
        self.assertEqual(self.said(proto, "alice"), ["? password"])
        return proto

    def test_wrong_password_closes(self):
        """A registered name asks `? password`, even while in use; a wrong password
        gets `! wrong password` and closes, and the one online is not disturbed."""
        proto = self.reconnect()
        self.assertEqual(self.said(proto, "not the password"), ["! wrong password"])
        self.assertTrue(self.h.closed(proto))
        self.assertFalse(self.h.closed(self.alice))
        self.assertEqual(self.read(self.alice, self.bob), [[], []])

    def test_wrong_registered_password_is_not_an_admin_failure(self):
        """An operator's `chatd_failed_admin_logins_total` counts admins' wrong
        passwords only: a registered user's typo is a `wrong password` refusal."""
        proto = self.reconnect()
        self.h.send(proto, "not the password")
        boss = self.h.connect()
        self.h.send(boss, "boss", "not it either")
        stats = self.h.server.stats
        self.assertEqual((stats.failed_admin_logins, stats.refusals.get("wrong password")),
                         (1, 2))

    def test_right_password_takes_over(self):
        """The right password takes over a name still connected (a stale session):
        the old connection gets `! logged in from elsewhere` and is closed, the room
        hears it leave and the new one join."""
        with capturedLogs() as events:
            proto = self.reconnect()
            self.assertEqual(self.said(proto, PASSWORD), [
                "* logged in as alice in testroom", "* online (2): alice, bob"])
        self.assertEqual(self.h.read(self.alice), ["! logged in from elsewhere"])
        self.assertTrue(self.h.closed(self.alice))
        self.assertEqual(self.h.read(self.bob), [
            "* alice left (logged in from elsewhere)", "* alice joined"])
        self.h.close(self.alice)  # the old connection goes: the new one stays
        self.h.send(proto, "still here")
        self.assertEqual(self.h.read(self.bob), ["<alice> still here"])
        self.assertEqual(self.h.server.stats.disconnects.get("replaced"), 1)
        self.assertFalse(any(PASSWORD in repr(event) for event in events), events)
        for conn in (proto, self.alice, self.bob):
            self.assertNotIn(PASSWORD.encode(), conn.transport.value())

    def test_takeover_from_another_room(self):
        """A stale session in another room is taken over too; that room hears it
        leave, and the new login lands in the landing room."""
        self.h.send(self.alice, "/join games")
        self.h.send(self.bob, "/join games")
        self.read(self.alice, self.bob)
        proto = self.reconnect()
        self.assertEqual(self.said(proto, PASSWORD), [
            "* logged in as alice in testroom", "* online (1): alice"])
        self.assertEqual(self.h.read(self.bob), ["* alice left (logged in from elsewhere)"])
        self.assertEqual(self.said(proto, "/rooms"), ["* rooms (2): games (1), testroom (1)"])

    def test_admin_name_in_use_is_taken(self):
        """An admin's name in use is refused as taken at the name, never taken over."""
        boss = self.h.login("boss", "s3cret-pass")
        proto = self.h.connect()
        self.h.read(proto)
        self.assertEqual(self.said(proto, "BOSS"), ["! username BOSS is taken", "? username"])
        self.assertFalse(self.h.closed(boss))

    def test_guest_cannot_use_a_registered_name(self):
        """Once registered, the name is never given without its password, online or
        not: a guest cannot take it after its owner left."""
        self.h.send(self.alice, "/quit")
        self.h.close(self.alice)
        proto = self.reconnect()
        self.assertEqual(self.said(proto, ""), ["! wrong password"])
        self.assertTrue(self.h.closed(proto))

    def test_failed_logins_limit_registered_names(self):
        """After login_failures wrong passwords for a registered name from one
        address, that address is refused at the name for the window; others are not."""
        self.harness(login_failures=2, login_failure_window=300)
        self.alice = self.h.login("alice")
        self.h.send(self.alice, "/register", PASSWORD, PASSWORD)
        for _ in range(2):
            proto = self.reconnect("10.0.0.9")
            self.assertEqual(self.said(proto, "guess"), ["! wrong password"])
        proto = self.h.connect("10.0.0.9")
        self.h.read(proto)
        self.assertEqual(self.said(proto, "alice"), ["! too many failed logins, try later"])
        self.assertTrue(self.h.closed(proto))
        other = self.reconnect("10.0.0.10")
        self.assertEqual(self.said(other, PASSWORD)[0], "* logged in as alice in testroom")
        self.h.clock.advance(301)
        self.reconnect("10.0.0.9")
