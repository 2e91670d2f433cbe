"""The core as domain objects (server, rooms, moderation), no I/O.

Clients are fakes that receive what the line format renders, so the
assertions read as what a line-protocol user would see.
"""

from twisted.logger import capturedLogs
from twisted.trial import unittest

from chatd.core.errors import (
    Banned,
    InvalidName,
    NameTaken,
    NoSuchUser,
    NotAllowed,
    PermissionDenied,
)
from chatd.core.store import BanStore
from chatd.line.codec import who_line
from tests.helpers import BrokenClient, FakeClient, join, make_server


class RoomTestCase(unittest.TestCase):
    def setUp(self):
        self.start()

    def start(self, **kw) -> None:
        """A fresh server with boss as admin; kw as for make_server."""
        self.server, self.clock = make_server(admins={"boss": "pw"}, **kw)
        self.room = self.server.landing

    def join(self, name, admin=False, client=None):
        client = client or FakeClient()
        member = join(self.server, name, client, admin=admin, address="127.0.0.1:1")
        self.clock.advance(0)
        return member, client


class MembershipTests(RoomTestCase):
    def test_join_greets_and_announces(self):
        """A newcomer sees their name and who is online; the others see them join."""
        _, alice = self.join("alice")
        alice.lines()
        _, boss = self.join("boss", admin=True)
        self.assertEqual(
            boss.lines(),
            ["* logged in as boss (admin) in chatd", "* online (2): alice, @boss"],
        )
        self.assertEqual(alice.lines(), ["* boss joined"])

    def test_motd_after_login(self):
        """The message of the day follows the login lines, one notice per line."""
        self.server.motd = "be nice\nno spam"
        _, alice = self.join("alice")
        self.assertEqual(alice.lines()[-2:], ["* be nice", "* no spam"])

    def test_newcomer_hears_only_what_follows(self):
        """Someone joining mid-turn gets their greeting first and nothing said before."""
        alice_m, alice = self.join("alice")
        self.server.say(alice_m, self.room, "before carol came")
        carol_m = join(self.server, "carol", FakeClient())
        self.server.say(alice_m, self.room, "after carol came")
        self.clock.advance(0)
        self.assertEqual(carol_m.client.lines(), [
            "* logged in as carol in chatd", "* online (2): alice, carol",
            "<alice> after carol came"])

    def test_joins_in_one_turn_cost_one_write_each(self):
        """Many logins in one turn reach each member as one write, in order."""
        writes = []
        _, alice = self.join("alice")
        alice.deliver = writes.append
        for i in range(20):
            join(self.server, f"user{i}", FakeClient())
        self.clock.advance(0)
        self.assertEqual(len(writes), 1)
        self.assertEqual(writes[0].decode().split("\r\n")[:-1],
                         [f"* user{i} joined" for i in range(20)])

    def test_greeting_lists_at_most_fifty_names(self):
        """A big room's greeting names 50 people and counts the rest; /who names all."""
        for i in range(60):
            join(self.server, f"u{i:02d}", FakeClient())
        member = join(self.server, "zed", FakeClient())
        greeting = member.client.lines()[1]
        self.assertTrue(greeting.startswith("* online (61): u00, u01, "))
        self.assertTrue(greeting.endswith(", u49, and 11 more (/who lists everyone)"))
        self.assertEqual(who_line(*self.room.who()).count(","), 60)

    def test_names_unique_ignoring_case(self):
        """A second ALICE is refused while alice is online."""
        self.join("alice")
        self.assertRaises(NameTaken, self.server.check_name, "ALICE")
        self.assertRaises(NameTaken, join, self.server, "Alice", FakeClient())

    def test_invalid_name_refused(self):
        """A name outside the rules never gets into the room."""
        self.assertRaises(InvalidName, self.server.check_name, "<bob>")

    def test_leave_announced_once(self):
        """Leaving is announced to the others once, even if reported twice."""
        alice_m, alice = self.join("alice")
        _, bob = self.join("bob")
        alice.lines(), bob.lines()
        self.server.logout(alice_m, "lunch")
        self.server.logout(alice_m)
        self.clock.advance(0)
        self.assertEqual(bob.lines(), ["* alice left: lunch"])
        self.assertIsNone(self.server.get("alice"))


class TalkTests(RoomTestCase):
    def test_message_to_everyone_else(self):
        """A line goes to every other member as <name> text, not back to its sender."""
        alice_m, alice = self.join("alice")
        _, bob = self.join("bob")
        _, carol = self.join("carol")
        for c in (alice, bob, carol):
            c.lines()
        self.server.say(alice_m, self.room, "hi all")
        self.clock.advance(0)
        self.assertEqual(bob.lines(), ["<alice> hi all"])
        self.assertEqual(carol.lines(), ["<alice> hi all"])
        self.assertEqual(alice.lines(), [])

    def test_turn_coalesced_in_order(self):
        """Lines said in one turn arrive in order, each sender missing only its own."""
        alice_m, alice = self.join("alice")
        bob_m, bob = self.join("bob")
        _, carol = self.join("carol")
        for c in (alice, bob, carol):
            c.lines()
        self.server.say(alice_m, self.room, "1")
        self.server.say(bob_m, self.room, "2")
        self.server.say(alice_m, self.room, "3")
        self.clock.advance(0)
        self.assertEqual(carol.lines(), ["<alice> 1", "<bob> 2", "<alice> 3"])
        self.assertEqual(alice.lines(), ["<bob> 2"])
        self.assertEqual(bob.lines(), ["<alice> 1", "<alice> 3"])

    def test_private_keeps_order_with_broadcasts(self):
        """A private message never overtakes a public line said before it."""
        alice_m, alice = self.join("alice")
        _, bob = self.join("bob")
        alice.lines(), bob.lines()
        self.server.say(alice_m, self.room, "public first")
        self.server.private(alice_m, "BOB", "then private")
        self.clock.advance(0)
        self.assertEqual(bob.lines(), ["<alice> public first", "[alice] then private"])
        self.assertEqual(alice.lines(), ["[->bob] then private"])

    def test_private_to_yourself(self):
        """/msg to yourself shows both sides, as it always did: received, then sent."""
        alice_m, alice = self.join("alice")
        alice.lines()
        self.server.private(alice_m, "ALICE", "note to self")
        self.assertEqual(alice.lines(), ["[alice] note to self", "[->alice] note to self"])

    def test_private_to_nobody(self):
        """A private message to someone not online is refused."""
        alice_m, _ = self.join("alice")
        self.assertRaises(NoSuchUser, self.server.private, alice_m, "ghost", "hello?")

    def test_action(self):
        """/me is shown as '+ name action', a form no message can imitate."""
        alice_m, _ = self.join("alice")
        _, bob = self.join("bob")
        bob.lines()
        self.server.action(alice_m, self.room, "waves")
        self.clock.advance(0)
        self.assertEqual(bob.lines(), ["+ alice waves"])

    def test_failing_recipient_does_not_stop_delivery(self):
        """One member's broken connection is dropped; the others still get the line."""
        alice_m, alice = self.join("alice")
        _, broken = self.join("broken", client=BrokenClient())
        _, carol = self.join("carol")
        alice.lines(), carol.lines()
        broken.broken = True
        self.server.say(alice_m, self.room, "still here?")
        self.clock.advance(0)
        self.assertEqual(carol.lines(),
                         ["<alice> still here?", "* broken left (connection failed)"])
        self.assertTrue(broken.disconnected)
        self.assertIsNone(self.server.get("broken"))
        self.flushLoggedErrors(OSError)


class ModerationTests(RoomTestCase):
    def start(self, **kw) -> None:
        super().start(**kw)
        self.boss_m, self.boss = self.join("boss", admin=True)
        self.alice_m, self.alice = self.join("alice")
        self.bob_m, self.bob = self.join("bob")
        for c in (self.boss, self.alice, self.bob):
            c.lines()

    def test_kick(self):
        """The kicked user is told why and disconnected; the room is told; they may return."""
        with capturedLogs() as events:
            self.server.moderation.kick(self.boss_m, "ALICE", "rude")
        self.clock.advance(0)
        self.assertEqual(self.alice.lines(), ["! you were kicked by boss: rude"])
        self.assertTrue(self.alice.disconnected)
        self.assertEqual(self.bob.lines(), ["* alice was kicked by boss: rude"])
        self.assertEqual(self.boss.lines(), ["* alice was kicked by boss: rude"])
        self.server.check_name("alice")
        self.assertTrue(any(e.get("target") == "alice" and e.get("admin") == "boss"
                            for e in events))

    def test_non_admin_cannot_moderate(self):
        """An ordinary user's /kick, /ban, /unban, /bans are refused and change nothing."""
        self.assertRaises(PermissionDenied, self.server.moderation.kick, self.alice_m, "bob")
        self.assertRaises(PermissionDenied, self.server.moderation.ban, self.alice_m, "bob")
        self.assertRaises(PermissionDenied, self.server.moderation.unban, self.alice_m, "bob")
        self.assertRaises(PermissionDenied, self.server.moderation.bans, self.alice_m)
        self.clock.advance(0)
        self.assertFalse(self.bob.disconnected)
        self.assertEqual(self.bob.lines(), [])

    def test_cannot_target_self_or_admin(self):
        """Admins cannot kick or ban themselves or another admin."""
        self.assertRaises(NotAllowed, self.server.moderation.kick, self.boss_m, "boss")
        self.assertRaises(NotAllowed, self.server.moderation.ban, self.boss_m, "BOSS")
        other = join(self.server, "boss2", FakeClient(), admin=True)
        self.assertRaises(NotAllowed, self.server.moderation.kick, self.boss_m, "boss2")
        self.assertIsNotNone(other)

    def test_kick_unknown(self):
        """Kicking someone who is not online says so."""
        self.assertRaises(NoSuchUser, self.server.moderation.kick, self.boss_m, "ghost")

    def test_ban_keeps_name_out(self):
        """A banned user is disconnected and their name, in any case, is refused after."""
        self.successResultOf(self.server.moderation.ban(self.boss_m, "bob", "spam"))
        self.clock.advance(0)
        self.assertEqual(self.bob.lines(), ["! you were banned by boss: spam"])
        self.assertTrue(self.bob.disconnected)
        self.assertEqual(self.alice.lines(), ["* bob was banned by boss: spam"])
        error = self.assertRaises(Banned, self.server.check_name, "BOB")
        self.assertEqual(str(error), "you are banned: spam")

    def test_ban_offline_name_and_unban(self):
        """A name not online can be banned; /unban lets it in again."""
        self.successResultOf(self.server.moderation.ban(self.boss_m, "troll"))
        self.assertRaises(Banned, self.server.check_name, "troll")
        self.assertEqual([b.name for b in self.server.moderation.bans(self.boss_m)], ["troll"])
        self.successResultOf(self.server.moderation.unban(self.boss_m, "TROLL"))
        self.clock.advance(0)
        self.server.check_name("troll")
        self.assertEqual(self.alice.lines(), ["* troll was banned by boss",
                                              "* troll was unbanned by boss"])
        self.assertEqual(self.server.moderation.bans(self.boss_m), [])

    def test_ban_announced_only_after_commit(self):
        """Nobody hears of a ban until the store has committed it."""
        from twisted.internet import defer

        waiting = []  # the store's writes (the ban, its journal entry), held uncommitted
        self.start(bans=BanStore(lambda fn: waiting.append(defer.Deferred()) or waiting[-1],
                                 {}))
        d = self.server.moderation.ban(self.boss_m, "bob", "spam")
        self.clock.advance(0)
        self.assertEqual(self.alice.lines(), [])
        self.assertFalse(self.bob.disconnected)
        for write in waiting:
            write.callback(None)
        self.successResultOf(d)
        self.clock.advance(0)
        self.assertEqual(self.alice.lines(), ["* bob was banned by boss: spam"])

    def test_bans_listing(self):
        """The ban list says who was banned, by whom, when and why."""
        self.successResultOf(self.server.moderation.ban(self.boss_m, "bob", "spam"))
        [ban] = self.server.moderation.bans(self.boss_m)
        self.assertEqual((ban.name, ban.by_admin, ban.reason), ("bob", "boss", "spam"))
        self.assertEqual(ban.created, self.clock.seconds())

    def test_shutdown_tells_everyone(self):
        """On shutdown every member is told and disconnected."""
        self.server.shutdown()
        for client in (self.boss, self.alice, self.bob):
            self.assertEqual(client.lines(), ["* server shutting down"])
            self.assertTrue(client.disconnected)
        self.assertEqual(self.server.users, [])
