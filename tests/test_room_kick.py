"""A kick out of one room (IRC's KICK, Moderation.kick_from_room): in the core,
and as a line-protocol user kicked by an admin experiences it.

The core's tests read what line clients receive (FakeClient), like
tests/test_rooms.py; the line protocol's run on StringTransports
(tests.helpers.ProtocolHarness).
"""

from __future__ import annotations

from chatd.core.errors import NoSuchUser, NotAllowed, PermissionDenied
from chatd.core.store import BanStore
from tests.helpers import FakeClient, ManualRunner, ProtocolHarness
from tests.test_protocol import ProtocolTestCase
from tests.test_rooms import STAMP, CoreTestCase


class MovedClient(FakeClient):
    """A FakeClient that records the rooms the core took its user out of."""

    def __init__(self):
        super().__init__()
        self.out_of: list[str] = []

    def removed(self, room) -> None:
        self.out_of.append(room.name)


class KickFromRoomTests(CoreTestCase):
    def test_out_of_one_room_heard_there_only(self):
        """The room hears `* bob was kicked from games by boss: spam`, bob gets
        `! you were kicked from games by boss: spam`, and leaves that room
        alone: still logged in, still in poker, which hears nothing; his front
        end is told he is out of games."""
        boss_m, boss = self.login("boss", room="games")
        bob_m, bob = self.login("bob", room="games", client=MovedClient())
        self.successResultOf(self.server.enter(bob_m, "poker"))
        _, carol = self.login("carol", room="games")
        _, dave = self.login("dave", room="poker")
        self.heard(boss, bob, carol, dave)
        self.successResultOf(self.server.moderation.kick_from_room(
            boss_m, self.server.room("games"), "bob", "spam"))
        heard = "* bob was kicked from games by boss: spam"
        self.assertEqual(self.heard(boss, carol, dave, bob), [
            [heard], [heard], [], ["! you were kicked from games by boss: spam"]])
        self.assertEqual(bob.out_of, ["games"])
        self.assertFalse(bob.disconnected)
        self.assertIs(self.server.get("bob"), bob_m)
        self.assertEqual([room.name for room in bob_m.rooms], ["poker"])
        self.assertEqual(self.server.room("games").who()[0], ("@boss", "carol"))

    def test_journaled_before_anyone_hears_it(self):
        """Nothing happens until the journal has the kick; /modlog then shows
        it with the room: `kick bob by boss: from games: spam`."""
        self.start(held=True)
        boss_m, boss = self.login("boss", room="games")
        bob_m, bob = self.login("bob", room="games")
        self.heard(boss)
        done = self.server.moderation.kick_from_room(boss_m, self.server.room("games"),
                                                     "bob", "spam")
        self.assertEqual(self.heard(boss, bob), [[], []])
        self.assertIn(self.server.room("games"), bob_m.rooms)
        self.runner.fire()
        self.successResultOf(done)
        self.assertEqual(self.heard(boss, bob), [
            ["* bob was kicked from games by boss: spam"],
            ["! you were kicked from games by boss: spam"]])
        entries = self.server.moderation.modlog(boss_m, 5)
        self.runner.drain()
        (entry,) = self.successResultOf(entries)
        self.assertEqual(entry.line(), f"{STAMP} kick bob by boss: from games: spam")

    def test_refused(self):
        """Only admins kick; not themselves, not an admin, and only someone in
        that room: each refusal says why, and nothing is journaled."""
        boss_m, _ = self.login("boss", room="games")
        bob_m, _ = self.login("bob", room="games")
        self.login("carol", room="poker")
        self.server.login("root", FakeClient(), admin=True)
        games = self.server.room("games")
        kick = self.server.moderation.kick_from_room
        self.assertRaises(PermissionDenied, kick, bob_m, games, "boss")
        self.assertRaisesRegex(NotAllowed, "you cannot kick yourself", kick, boss_m, games,
                               "BOSS")
        self.assertRaisesRegex(NotAllowed, "you cannot kick an admin", kick, boss_m, games,
                               "root")
        self.assertRaisesRegex(NoSuchUser, "carol is not in games", kick, boss_m, games,
                               "carol")
        self.assertRaisesRegex(NoSuchUser, "nobody is not in games", kick, boss_m, games,
                               "nobody")
        self.assertEqual(self.successResultOf(self.server.moderation.modlog(boss_m, 5)), [])

    def test_gone_from_the_room_while_journaled(self):
        """Someone who left the room while the kick was being written is not
        kicked from wherever they went: the admin is told they are not there."""
        self.start(held=True)
        boss_m, boss = self.login("boss", room="games")
        bob_m, bob = self.login("bob", room="games")
        done = self.server.moderation.kick_from_room(boss_m, self.server.room("games"),
                                                     "bob")
        self.move(bob_m, "poker")
        self.runner.drain()
        self.failureResultOf(done, NoSuchUser)
        self.heard(boss)
        self.assertEqual([room.name for room in bob_m.rooms], ["poker"])

    def test_last_one_out_closes_the_room(self):
        """A room that is not configured disappears when the kick empties it."""
        boss_m, _ = self.login("boss")
        bob_m, _ = self.login("bob", room="games")
        self.successResultOf(self.server.moderation.kick_from_room(
            boss_m, self.server.room("games"), "bob"))
        self.assertIsNone(self.server.room("games"))


class LineUserKickedTests(ProtocolTestCase):
    """A line user taken out of a room by an admin's KICK (from IRC)."""

    def kick(self, room: str, name: str, reason: str = ""):
        boss = self.h.server.get("boss")
        return self.h.server.moderation.kick_from_room(boss, self.h.server.room(room), name,
                                                       reason)

    def test_back_to_the_landing_room(self):
        """Kicked out of the room they are in, a line user is told so and is
        shown the landing room again (as after /part); what they say next is
        said there."""
        h = self.h
        boss = h.login("boss", "s3cret-pass")
        bob = h.login("bob")
        h.send(boss, "/join games")
        h.send(bob, "/join games")
        h.read(boss), h.read(bob)
        self.successResultOf(self.kick("games", "bob", "calm down"))
        self.assertEqual(h.read(boss), ["* bob was kicked from games by boss: calm down"])
        self.assertEqual(h.read(bob), [
            "! you were kicked from games by boss: calm down",
            "* you are in testroom", "* online (1): bob"])
        h.send(bob, "hello", "/who")
        self.assertEqual(h.read(bob), ["* online (1): bob"])
        self.assertEqual(h.read(boss), [])
        self.assertFalse(h.closed(bob))

    def test_out_of_the_landing_room_disconnects(self):
        """Kicked out of the landing room, where there is nowhere else to go,
        a line user is told `! you were kicked from testroom by boss` and
        disconnected, counted as kicked; they may log in again."""
        h = self.h
        boss = h.login("boss", "s3cret-pass")
        bob = h.login("bob")
        h.read(boss)
        self.successResultOf(self.kick("testroom", "bob"))
        self.assertEqual(h.read(bob), ["! you were kicked from testroom by boss"])
        self.assertTrue(h.closed(bob))
        self.assertIsNone(h.server.get("bob"))
        self.assertEqual(h.read(boss), ["* bob was kicked from testroom by boss"])
        self.assertEqual(h.server.stats.disconnects.get("kicked"), 1)
        h.close(bob)
        self.assertEqual(h.read(boss), [])
        again = h.login("bob")
        self.assertFalse(h.closed(again))

    def slow_history(self):
        """boss in the landing room, bob in games, on a store whose calls wait
        for the runner: the landing room's history must be read again (as
        after a reload) when bob goes back to it.  (runner, boss, bob)"""
        runner = ManualRunner()
        self.h = h = ProtocolHarness(self.mktemp_path(), admins={"boss": "s3cret-pass"},
                                     bans=BanStore(runner, {}), history=10)
        boss, bob = h.connect(), h.connect()
        h.send(boss, "boss", "s3cret-pass")
        h.send(bob, "bob")
        runner.drain()
        h.send(bob, "/join games")
        runner.drain()
        h.read(boss), h.read(bob)
        h.server.history.limit = 20  # a reload's: the rooms' history is read again
        return runner, boss, bob

    def test_lines_wait_for_the_landing_room(self):
        """While the landing room's history is read for a kicked user, what
        they type waits, then is said in the landing room, in order."""
        runner, boss, bob = self.slow_history()
        done = self.kick("games", "bob")
        runner.fire()  # the journal
        self.successResultOf(done)
        self.h.send(bob, "first", "second")
        self.assertEqual(self.h.read(boss), [])
        runner.drain()  # the landing room's history
        self.assertEqual(self.h.read(boss), ["* bob joined", "<bob> first", "<bob> second"])

    def test_kick_crossing_a_join(self):
        """A KICK's move to the landing room that crosses the user's own /join
        still leaves them in one room, the one they are shown, and what they
        typed meanwhile is said there once both are done."""
        runner, boss, bob = self.slow_history()
        done = self.kick("games", "bob")  # its journal entry is written first
        self.h.send(bob, "/join poker", "typed")
        runner.fire()  # the journal: bob is taken out of games, sent to the landing room
        self.successResultOf(done)
        runner.drain()  # poker's history, then the landing room's
        self.assertEqual([room.name for room in self.h.server.get("bob").rooms], ["testroom"])
        shown = self.h.read(bob)
        self.assertEqual(shown[0], "! you were kicked from games by boss")
        self.assertEqual(shown[-2], "* you are in testroom")
        self.assertEqual(self.h.read(boss), ["* bob joined", "<bob> typed"])
