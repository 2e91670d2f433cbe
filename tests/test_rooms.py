"""Rooms, history and takeover in the core (chatd.core.server), no sockets.

Clients are fakes that receive what the line format renders, so the
assertions read as what a line-protocol user would see; the fan-out tests
use a second, counting wire format of their own.
"""

from __future__ import annotations

from twisted.internet import task
from twisted.trial import unittest
from zope.interface import implementer

from chatd.core import events as ev
from chatd.core.errors import InvalidName, Muted, NameTaken, NoSuchRoom
from chatd.core.history import History
from chatd.core.room import IClient, IWireFormat
from chatd.core.server import Server
from chatd.core.store import BanStore
from tests.helpers import FakeClient, ManualRunner

T0 = 1795618800.0  # 2026-11-25 15:00:00Z
STAMP = "2026-11-25 15:00:00Z"


class CoreTestCase(unittest.TestCase):
    """A server on a Clock, boss the admin, the wall clock at T0."""

    def setUp(self):
        self.start()

    def start(self, history: int = 0, held: bool = False, **kw) -> None:
        """A fresh server; held: its database calls wait for self.runner.fire()."""
        self.clock = task.Clock()
        self.now = T0
        self.runner = ManualRunner() if held else None
        self.store = BanStore(self.runner, {}) if held else BanStore.in_memory()
        self.history = History(self.store, self.clock, history) if history else None
        self.server = Server(self.clock, self.store, lambda name: name.lower() == "boss",
                             wall_clock=lambda: self.now, history=self.history, **kw)

    def login(self, name: str, room: str | None = None, admin: bool = False,
              client=None, registered: bool = False):
        """name logs in to the landing room (or straight to room), like a front end;
        returns (user, client) with the client's greeting read."""
        client = client or FakeClient()
        user = self.server.login(name, client, admin=admin or name == "boss",
                                 address="127.0.0.1", registered=registered)
        entered = self.server.enter(user, room, login=room is None)
        if self.runner is not None:
            self.runner.drain()  # the room's history
        self.successResultOf(entered)
        self.clock.advance(0)
        client.lines()
        return user, client

    def arrive(self, name: str, client) -> None:
        """name logs in to the landing room; client keeps its greeting unread."""
        self.successResultOf(self.server.enter(self.server.login(name, client), login=True))
        self.clock.advance(0)

    def move(self, user, name: str | None):
        """user leaves their one room for room name (None: the landing room)."""
        (here,) = user.rooms
        room = self.successResultOf(self.server.enter(user, name, leaving=here))
        self.clock.advance(0)
        return room

    def heard(self, *clients) -> list[list[str]]:
        self.clock.advance(0)
        return [client.lines() for client in clients]

    def names(self) -> list[str]:
        return [room.name for room in self.server.rooms]


class RoomsTests(CoreTestCase):
    def test_join_creates_room_when_open(self):
        """With open rooms, going to a room that does not exist makes it: the old
        room hears `* NAME left (joined ROOM)`, the mover gets `* you are in ROOM`."""
        alice_m, alice = self.login("alice")
        _, bob = self.login("bob")
        alice.lines()
        self.move(alice_m, "games")
        self.assertEqual(self.heard(alice, bob), [
            ["* you are in games", "* online (1): alice"],
            ["* alice left (joined games)"]])
        self.assertEqual(self.names(), ["chatd", "games"])
        self.assertEqual(alice_m.rooms, (self.server.room("GAMES"),))

    def test_closed_server_refuses_unknown_rooms(self):
        """With open_rooms off, a configured room may be entered but any other name
        is refused with `no such room`, and no room is made."""
        self.start(rooms=["games"], open_rooms=False)
        alice_m, _ = self.login("alice")
        with self.assertRaises(NoSuchRoom) as caught:
            self.server.enter(alice_m, "poker", leaving=self.server.landing)
        self.assertEqual(str(caught.exception), "no such room: poker (/rooms lists them)")
        self.assertEqual(self.names(), ["chatd", "games"])
        self.assertEqual(alice_m.rooms, (self.server.landing,))
        self.assertIs(self.move(alice_m, "Games"), self.server.room("games"))

    def test_invalid_room_name_refused(self):
        """A room name must follow the username rule."""
        alice_m, _ = self.login("alice")
        for bad in ("two words", "x" * 25, "#chan"):
            with self.assertRaises(InvalidName) as caught:
                self.server.enter(alice_m, bad)
            self.assertEqual(str(caught.exception),
                             "invalid room name: use 1-24 letters, digits, '_', '-' or '.'")
        self.assertEqual(self.names(), ["chatd"])

    def test_configured_rooms_always_exist(self):
        """Configured rooms are listed while empty and stay when their last member
        leaves; an ordinary room disappears with its last member."""
        self.start(rooms=["Help.desk", "games"])
        self.assertEqual(self.names(), ["chatd", "games", "Help.desk"])
        alice_m, _ = self.login("alice")
        self.move(alice_m, "games")
        self.move(alice_m, "fun")
        self.assertEqual(self.names(), ["chatd", "fun", "games", "Help.desk"])
        self.move(alice_m, None)
        self.assertEqual(self.names(), ["chatd", "games", "Help.desk"])
        self.assertEqual(len(self.server.room("games")), 0)

    def test_room_disappears_when_its_last_member_logs_out(self):
        """A room made by /join goes when the last one in it leaves the server."""
        alice_m, _ = self.login("alice", room="fun")
        self.assertEqual(self.names(), ["chatd", "fun"])
        self.server.logout(alice_m)
        self.assertEqual(self.names(), ["chatd"])

    def test_member_of_two_rooms_hears_both(self):
        """One user may be in two rooms at once (an IRC client's channels): they
        hear each room's lines, and what they say reaches only the room it is said in."""
        alice_m, alice = self.login("alice")
        bob_m, bob = self.login("bob")
        carol_m, carol = self.login("carol", room="games")
        alice.lines()
        self.successResultOf(self.server.enter(alice_m, "games"))
        self.assertEqual(self.heard(alice, bob, carol), [
            ["* you are in games", "* online (2): alice, carol"], [], ["* alice joined"]])
        landing, games = self.server.landing, self.server.room("games")
        self.assertEqual(set(alice_m.rooms), {landing, games})
        self.server.say(bob_m, landing, "in chatd")
        self.server.say(carol_m, games, "in games")
        self.assertEqual(self.heard(alice, bob, carol), [
            ["<bob> in chatd", "<carol> in games"], [], []])
        self.server.say(alice_m, games, "to games only")
        self.assertEqual(self.heard(alice, bob, carol), [[], [], ["<alice> to games only"]])
        self.server.logout(alice_m)
        self.assertEqual(self.heard(bob, carol), [["* alice left"], ["* alice left"]])

    def test_private_messages_cross_rooms(self):
        """/msg reaches its target in whatever room they are; the sender gets the receipt."""
        alice_m, alice = self.login("alice")
        _, carol = self.login("carol", room="games")
        _, bob = self.login("bob")
        alice.lines()
        self.server.private(alice_m, "CAROL", "psst")
        self.assertEqual(self.heard(alice, carol, bob),
                         [["[->carol] psst"], ["[alice] psst"], []])

    def test_topic_shown_on_entry(self):
        """A room's topic is announced to it and shown to whoever enters it after;
        cleared, it is no longer shown; other rooms keep theirs."""
        boss_m, boss = self.login("boss", room="games")
        _, alice = self.login("alice", room="games")
        boss.lines()
        games = self.server.room("games")
        self.server.set_topic(boss_m, games, "chess at 8")
        self.assertEqual(self.heard(boss, alice), [["* boss set the topic: chess at 8"]] * 2)
        _, carol = self.login("carol")
        carol_m = self.server.get("carol")
        self.move(carol_m, "games")
        self.assertEqual(carol.lines(), ["* you are in games",
                                         "* online (3): alice, @boss, carol",
                                         "* topic: chess at 8"])
        self.assertEqual(self.server.landing.topic, "")
        self.assertEqual(self.heard(alice), [["* carol joined"]])
        self.server.set_topic(boss_m, games, "")
        self.assertEqual(self.heard(alice), [["* boss cleared the topic"]])
        self.move(carol_m, None)
        self.move(carol_m, "games")
        self.assertEqual(carol.lines()[-1], "* online (3): alice, @boss, carol")

    def test_kick_heard_in_targets_and_admins_rooms(self):
        """A kick is server-wide: the target's room and the admin's hear it, a third
        room does not; the target is told and disconnected."""
        boss_m, boss = self.login("boss")
        _, dave = self.login("dave")
        _, bob = self.login("bob", room="games")
        _, carol = self.login("carol", room="games")
        _, eve = self.login("eve", room="poker")
        self.heard(boss, dave, bob, carol, eve)
        self.successResultOf(self.server.moderation.kick(boss_m, "bob", "spam"))
        heard = "* bob was kicked by boss: spam"
        self.assertEqual(self.heard(boss, dave, carol, eve, bob), [
            [heard], [heard], [heard], [], ["! you were kicked by boss: spam"]])
        self.assertTrue(bob.disconnected)
        self.assertIsNone(self.server.get("bob"))

    def test_ban_heard_in_targets_and_admins_rooms(self):
        """A ban reaches the target's room and the admin's once it is on disk; the
        name is refused from then on."""
        boss_m, boss = self.login("boss")
        _, bob = self.login("bob", room="games")
        _, carol = self.login("carol", room="games")
        self.heard(boss, bob, carol)
        self.successResultOf(self.server.moderation.ban(boss_m, "bob", "spam", 7200.0))
        heard = "* bob was banned by boss for 2h: spam"
        self.assertEqual(self.heard(boss, carol, bob),
                         [[heard], [heard], ["! you were banned by boss for 2h: spam"]])
        self.assertTrue(bob.disconnected)
        self.assertRaisesRegex(Exception, "you are banned: spam", self.server.check_name, "BOB")

    def test_mute_heard_in_targets_and_admins_rooms(self):
        """A mute is announced in the target's room and the admin's; the target may
        no longer speak in any room."""
        boss_m, boss = self.login("boss")
        bob_m, bob = self.login("bob", room="games")
        self.successResultOf(self.server.enter(bob_m, "poker"))
        _, carol = self.login("carol", room="poker")
        self.heard(boss, bob, carol)
        self.successResultOf(self.server.moderation.mute(boss_m, "bob"))
        heard = "* bob was muted by boss"
        self.assertEqual(self.heard(boss, bob, carol), [[heard], [heard, heard], [heard]])
        self.assertRaises(Muted, self.server.say, bob_m, self.server.room("poker"), "hi")


class HistoryTests(CoreTestCase):
    def setUp(self):
        self.start(history=3)

    def test_joiner_sees_last_lines_marked(self):
        """Whoever enters a room gets its last N messages and actions, oldest first,
        each as a `= TIME ` line, after the room's greeting; never a private message."""
        alice_m, _ = self.login("alice")
        bob_m, _ = self.login("bob")
        landing = self.server.landing
        self.server.say(alice_m, landing, "one")
        self.now += 1
        self.server.say(bob_m, landing, "two")
        self.server.private(alice_m, "bob", "a secret")
        self.server.action(alice_m, landing, "waves")
        self.now += 61
        self.server.say(bob_m, landing, "four")
        self.server.private(bob_m, "alice", "another secret")
        self.clock.advance(0)
        carol = FakeClient()
        self.arrive("carol", carol)
        self.assertEqual(carol.lines(), [
            "* logged in as carol in chatd",
            "* online (3): alice, bob, carol",
            "= 2026-11-25 15:00:01Z <bob> two",
            "= 2026-11-25 15:00:01Z + alice waves",
            "= 2026-11-25 15:01:02Z <bob> four"])

    def test_each_room_its_own_history(self):
        """A room's history holds what was said in that room only, and the topic
        comes before it."""
        boss_m, _ = self.login("boss")
        alice_m, _ = self.login("alice", room="games")
        games = self.server.room("games")
        self.server.say(boss_m, self.server.landing, "in chatd")
        self.server.say(alice_m, games, "in games")
        self.server.set_topic(boss_m, games, "chess")
        carol_m, carol = self.login("carol")
        self.move(carol_m, "games")
        self.assertEqual(carol.lines(), [
            "* you are in games", "* online (2): alice, carol", "* topic: chess",
            f"= {STAMP} <alice> in games"])

    def test_history_outlives_its_room(self):
        """A room that disappeared and is made again shows what was said before."""
        alice_m, _ = self.login("alice", room="fun")
        self.server.say(alice_m, self.server.room("fun"), "anyone?")
        self.server.logout(alice_m)
        self.clock.advance(0)
        self.assertIsNone(self.server.room("fun"))
        bob_m, bob = self.login("bob")
        self.move(bob_m, "fun")
        self.assertEqual(bob.lines()[-1], f"= {STAMP} <alice> anyone?")

    def test_banned_users_lines_stay(self):
        """A banned user's lines stay in the history, so a moderator can see what
        happened."""
        boss_m, _ = self.login("boss")
        bob_m, _ = self.login("bob")
        self.server.say(bob_m, self.server.landing, "spam spam")
        self.successResultOf(self.server.moderation.ban(boss_m, "bob", "spam"))
        self.clock.advance(0)
        self.assertIsNone(self.server.get("bob"))
        carol = FakeClient()
        self.arrive("carol", carol)
        self.assertEqual(carol.lines()[2:], [f"= {STAMP} <bob> spam spam"])

    def test_lines_said_while_the_ban_is_written_stay(self):
        """What a user says while their ban is being written (before it takes
        effect) reaches the room and stays in its history after they are removed."""
        self.start(history=5, held=True)
        runner = self.runner
        boss_m, boss = self.login("boss")
        bob_m, _ = self.login("bob")
        landing = self.server.landing
        self.server.say(bob_m, landing, "before")
        d = self.server.moderation.ban(boss_m, "bob", "spam")
        self.clock.advance(0)
        self.server.say(bob_m, landing, "during")
        self.server.action(bob_m, landing, "flees")
        self.clock.advance(0)
        self.assertNoResult(d)
        runner.drain()
        self.clock.advance(0)
        runner.drain()
        self.successResultOf(d)
        self.assertIsNone(self.server.get("bob"))
        self.assertEqual(boss.lines(), ["* bob joined", "<bob> before", "<bob> during",
                                        "+ bob flees", "* bob was banned by boss: spam"])
        carol = FakeClient()
        entered = self.server.enter(self.server.login("carol", carol), login=True)
        runner.drain()
        self.successResultOf(entered)
        self.clock.advance(0)
        self.assertEqual(carol.lines()[2:], [f"= {STAMP} <bob> before",
                                             f"= {STAMP} <bob> during",
                                             f"= {STAMP} + bob flees"])
        texts = [text for (text,) in runner.conn.execute(
            "SELECT text FROM history ORDER BY id")]
        self.assertEqual(texts, ["before", "during", "flees"])

    def test_shutdown_reaches_someone_whose_room_is_loading(self):
        """Someone logged in whose landing room's history is still being read is
        told `* server shutting down` too, like everyone else, and never gets the
        room's greeting after."""
        self.start(history=5, held=True)
        _, alice = self.login("alice")
        self.history.limit = 10  # memory forgets: the next entry reads the disk
        bob = FakeClient()
        entering = self.server.enter(self.server.login("bob", bob), login=True)
        self.server.shutdown()
        self.runner.drain()
        self.assertIsNone(self.successResultOf(entering))
        self.assertEqual(self.heard(alice, bob), [["* server shutting down"]] * 2)
        self.assertTrue(alice.disconnected and bob.disconnected)

    def test_refused_lines_are_not_history(self):
        """A line a muted user tried to say, which nobody heard, is not replayed."""
        boss_m, _ = self.login("boss")
        bob_m, _ = self.login("bob")
        self.successResultOf(self.server.moderation.mute(boss_m, "bob"))
        with self.assertRaises(Muted):
            self.server.say(bob_m, self.server.landing, "unheard")
        self.server.say(boss_m, self.server.landing, "heard")
        carol = FakeClient()
        self.arrive("carol", carol)
        self.assertEqual(carol.lines()[2:], [f"= {STAMP} <boss> heard"])

    def test_history_off(self):
        """With history 0, nothing is replayed."""
        self.start(history=0)
        alice_m, _ = self.login("alice")
        self.server.say(alice_m, self.server.landing, "hi")
        self.clock.advance(0)
        carol = FakeClient()
        self.arrive("carol", carol)
        self.assertEqual(carol.lines(), ["* logged in as carol in chatd",
                                         "* online (2): alice, carol"])


class TakeoverTests(CoreTestCase):
    def test_registered_login_takes_the_name_over(self):
        """A registered name logged in again takes the name over: the old connection
        gets `! logged in from elsewhere` and is closed, its rooms hear
        `* NAME left (logged in from elsewhere)`, the new one joins as usual."""
        alice_m, old = self.login("alice", registered=True)
        self.successResultOf(self.server.enter(alice_m, "games"))
        _, bob = self.login("bob")
        _, carol = self.login("carol", room="games")
        self.heard(old, bob)
        new = FakeClient()
        user = self.server.login("ALICE", new, registered=True)
        self.assertEqual(self.heard(old, bob, carol), [
            ["! logged in from elsewhere"],
            ["* alice left (logged in from elsewhere)"],
            ["* alice left (logged in from elsewhere)"]])
        self.assertTrue(old.disconnected)
        self.assertIs(self.server.get("alice"), user)
        self.assertEqual(self.server.stats.disconnects.get("replaced"), 1)
        self.successResultOf(self.server.enter(user, login=True))
        self.assertEqual(self.heard(new, bob, old), [
            ["* logged in as ALICE in chatd", "* online (2): ALICE, bob"],
            ["* ALICE joined"], []])
        self.assertFalse(self.server.logout(alice_m))  # the old one's late logout
        self.assertIs(self.server.get("alice"), user)

    def test_guest_and_admin_names_are_not_taken_over(self):
        """Without a registered password, a name in use is refused as taken; an
        admin's name in use too, and the one online stays."""
        _, alice = self.login("alice")
        boss_m, boss = self.login("boss")
        self.assertRaises(NameTaken, self.server.login, "alice", FakeClient())
        self.assertRaises(NameTaken, self.server.login, "boss", FakeClient(), admin=True,
                          registered=True)
        self.assertFalse(alice.disconnected or boss.disconnected)
        self.assertIs(self.server.get("boss"), boss_m)


@implementer(IWireFormat)
class CountingFormat:
    """A second wire format: counts how many times it renders a shared line."""

    def __init__(self, tag: str):
        self.tag = tag
        self.renders = 0

    def render(self, event: ev.Event) -> bytes:
        self.renders += 1
        what = getattr(event, "text", "")
        return f"{self.tag} {type(event).__name__} {what}\n".encode()

    def render_for(self, event: ev.Event, viewer: str) -> bytes:
        return f"{self.tag} to {viewer}: {type(event).__name__}\n".encode()


@implementer(IClient)
class Recorder:
    """A client of any wire format that keeps each write as it was handed over."""

    def __init__(self, wire):
        self.wire = wire
        self.writes: list[bytes] = []

    def deliver(self, data: bytes) -> None:
        self.writes.append(data)

    def disconnect(self) -> None:
        pass


class FanOutTests(CoreTestCase):
    def test_rendered_once_per_format_and_shared(self):
        """A turn's events are rendered once per wire format in the room, whatever
        the number of members; every member of a format gets the very same bytes
        object, and a sender gets the turn without their own lines."""
        irc, web = CountingFormat("irc"), CountingFormat("web")
        users = {}
        for name, wire in [("a1", irc), ("a2", irc), ("a3", irc), ("b1", web), ("b2", web)]:
            client = Recorder(wire)
            users[name] = self.server.login(name, client), client
            self.server.enter(users[name][0], login=True)
        self.clock.advance(0)
        for _, client in users.values():
            client.writes.clear()
        irc.renders = web.renders = 0
        landing = self.server.landing
        self.server.say(users["a1"][0], landing, "from irc")
        self.server.action(users["b1"][0], landing, "from web")
        self.server.say(users["a2"][0], landing, "from irc again")
        self.clock.advance(0)
        self.assertEqual((irc.renders, web.renders), (3, 3))
        writes = {name: client.writes for name, (_, client) in users.items()}
        self.assertEqual({name: len(w) for name, w in writes.items()},
                         dict.fromkeys(writes, 1))  # one write each
        self.assertEqual(writes["a3"], [b"irc Message from irc\nirc Action from web\n"
                                        b"irc Message from irc again\n"])
        self.assertEqual(writes["b2"], [b"web Message from irc\nweb Action from web\n"
                                        b"web Message from irc again\n"])
        # Each sender gets the turn without their own line.
        self.assertEqual(writes["a1"], [b"irc Action from web\nirc Message from irc again\n"])
        self.assertEqual(writes["a2"], [b"irc Message from irc\nirc Action from web\n"])
        self.assertEqual(writes["b1"], [b"web Message from irc\nweb Message from irc again\n"])
        # A turn with one sender: everyone else of a format shares one bytes object.
        self.server.say(users["b1"][0], landing, "again")
        self.clock.advance(0)
        last = {name: client.writes[-1] for name, (_, client) in users.items()}
        self.assertIs(last["a1"], last["a2"])
        self.assertIs(last["a1"], last["a3"])
        self.assertEqual(last["b2"], b"web Message again\n")
        self.assertEqual(len(writes["b1"]), 1)  # not their own line back
        self.assertEqual((irc.renders, web.renders), (4, 4))

    def test_identical_bytes_within_a_format(self):
        """Members of one format who sent nothing this turn get one bytes object
        (`is`): one render, one write each."""
        irc, web = CountingFormat("irc"), CountingFormat("web")
        clients = [Recorder(irc) for _ in range(3)] + [Recorder(web) for _ in range(3)]
        for i, client in enumerate(clients):
            self.server.enter(self.server.login(f"user{i}", client), login=True)
        self.clock.advance(0)
        sender = self.server.login("boss", Recorder(irc), admin=True)
        self.server.enter(sender, login=True)
        self.clock.advance(0)
        for client in clients:
            client.writes.clear()
        irc.renders = web.renders = 0
        self.server.set_topic(sender, self.server.landing, "hello")
        self.server.say(sender, self.server.landing, "line")
        self.clock.advance(0)
        self.assertEqual((irc.renders, web.renders), (2, 2))
        irc_writes = [c.writes[0] for c in clients[:3]]
        web_writes = [c.writes[0] for c in clients[3:]]
        self.assertTrue(all(w is irc_writes[0] for w in irc_writes))
        self.assertTrue(all(w is web_writes[0] for w in web_writes))
        self.assertEqual([line.split()[:2] for line in web_writes[0].splitlines()],
                         [[b"web", b"Topic"], [b"web", b"Message"]])
        (own,) = sender.client.writes[-1:]
        self.assertEqual([line.split()[:2] for line in own.splitlines()],
                         [[b"irc", b"Topic"]])

    def test_newcomer_of_another_format_hears_only_what_follows(self):
        """Someone of another wire format who enters mid-turn gets their greeting,
        then only what was said after they came; the others still share one render."""
        irc, web = CountingFormat("irc"), CountingFormat("web")
        a1, a2 = Recorder(irc), Recorder(irc)
        for name, client in [("a1", a1), ("a2", a2)]:
            self.server.enter(self.server.login(name, client), login=True)
        self.clock.advance(0)
        a1.writes.clear()
        a2.writes.clear()
        irc.renders = 0
        speaker = self.server.get("a1")
        self.server.say(speaker, self.server.landing, "before")
        b1 = Recorder(web)
        self.server.enter(self.server.login("b1", b1), login=True)
        self.server.say(speaker, self.server.landing, "after")
        self.clock.advance(0)
        self.assertEqual(b1.writes, [b"web to b1: Welcome\n", b"web Message after\n"])
        self.assertEqual(a2.writes, [b"irc Message before\nirc Joined \nirc Message after\n"])
        self.assertEqual((irc.renders, web.renders), (3, 3))
