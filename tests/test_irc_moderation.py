"""IRC operators (chatd admins) on a StringTransport: KICK, MODE +b/-b (bans),
MODE +q/-q (mutes), their numerics, and what line users in the same rooms see.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from chatd.core.store import BanStore
from chatd.irc.factory import IrcFactory
from chatd.irc.moderation import mask_name
from tests.helpers import ManualRunner, ProtocolHarness

ADMINS = {"boss": "boss-password", "root": "root-password"}
BOSS = ":boss!boss@test.irc"


class IrcModerationTestCase(unittest.TestCase):
    """boss is an admin on IRC, root an admin on the line protocol."""

    def setUp(self, bans: BanStore | None = None):
        path = Path(self.mktemp())
        path.mkdir(parents=True)
        # A burst of commands in one test turn is not a flood here.
        self.h = h = ProtocolHarness(path, admins=ADMINS, bans=bans, flood_burst=50)
        self.irc = IrcFactory(h.server, h.factory.portal, h.gate, h.clock, "test.irc")

    def connect(self, nick: str, password: str | None = None, *channels: str):
        """An IRC client registered as nick (with PASS password), in channels."""
        proto = self.irc.buildProtocol(None)
        proto.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5000)))
        lines = [f"PASS {password}"] if password else []
        self.h.send(proto, *lines, f"NICK {nick}", f"USER {nick} 0 * :{nick}",
                    *(f"JOIN {channel}" for channel in channels))
        self.h.read(proto)
        return proto

    def boss(self, *channels: str):
        return self.connect("boss", ADMINS["boss"], *channels)

    def line_user(self, name: str, room: str | None = None):
        proto = self.h.login(name, ADMINS.get(name))
        if room is not None:
            self.h.send(proto, f"/join {room}")
            self.h.read(proto)
        return proto

    def forget(self, *protos) -> None:
        """What protos were sent so far is not what the test is about."""
        for proto in protos:
            self.h.read(proto)

    def numerics(self, proto) -> list[str]:
        """The numeric (or command) of each line proto got, and forget them."""
        return [line.split()[1] for line in self.h.read(proto)]


class KickTests(IrcModerationTestCase):
    def test_kick_out_of_the_landing_room_disconnects_a_line_user(self):
        """KICK of a line user from the landing room: they get `! you were kicked
        from testroom by boss: spam` and are disconnected; line users there see
        `* bob was kicked from testroom by boss: spam`, IRC users a KICK."""
        h = self.h
        bob, carol = self.line_user("bob"), self.line_user("carol")
        boss = self.boss("#testroom")
        self.forget(bob, carol)
        h.send(boss, "KICK #testroom bob :spam")
        self.assertEqual(h.read(bob), ["! you were kicked from testroom by boss: spam"])
        self.assertTrue(h.closed(bob))
        self.assertEqual(h.read(carol), ["* bob was kicked from testroom by boss: spam"])
        (kick,) = h.read(boss)
        self.assertTrue(kick.startswith(f"{BOSS} KICK #testroom bob :"), kick)
        self.assertIn("spam", kick)
        self.assertIsNone(h.server.get("bob"))

    def test_kick_out_of_another_room_moves_a_line_user_back(self):
        """KICK #games of a line user shows them the landing room again; they
        stay connected."""
        h = self.h
        bob = self.line_user("bob", "games")
        boss = self.boss("#games")
        self.forget(bob)
        h.send(boss, "KICK #games bob")
        self.assertEqual(h.read(bob)[:2], ["! you were kicked from games by boss",
                                           "* you are in testroom"])
        self.assertFalse(h.closed(bob))
        self.assertEqual([room.name for room in h.server.get("bob").rooms], ["testroom"])

    def test_kick_takes_an_irc_user_out_of_one_channel(self):
        """KICK #games alice: alice sees the KICK and is out of #games only,
        still connected and still talking in #poker."""
        h = self.h
        alice = self.connect("alice", None, "#games", "#poker")
        dave = self.line_user("dave", "poker")
        boss = self.boss("#games")
        self.forget(alice, dave)
        h.send(boss, "KICK #games alice :bye")
        (kick,) = h.read(alice)
        self.assertTrue(kick.startswith(f"{BOSS} KICK #games alice :"), kick)
        self.assertFalse(h.closed(alice))
        h.send(boss, "NAMES #games")
        self.assertEqual(h.read(boss)[-2].split(":")[-1], "@boss")
        h.send(alice, "PRIVMSG #poker :still here", "PRIVMSG #games :and here?")
        self.assertEqual(h.read(dave), ["<alice> still here"])
        self.assertEqual(self.numerics(alice), ["442"])

    def test_kick_numerics(self):
        """461 without a nick, 403 for no such channel, 442 when the kicker is
        not on it, 482 for a non-admin, 401 for no such nick, 441 for a nick
        not on the channel, a NOTICE for kicking yourself or an admin."""
        h = self.h
        self.line_user("bob")
        self.line_user("dave", "poker")
        self.line_user("root")
        alice = self.connect("alice", None, "#testroom")
        boss = self.boss("#testroom")
        self.forget(alice)
        h.send(alice, "KICK #testroom bob")
        self.assertEqual(self.numerics(alice), ["482"])
        h.send(boss, "KICK #testroom", "KICK #nowhere bob", "KICK #poker dave",
               "KICK #testroom ghost", "KICK #testroom dave")
        self.assertEqual(self.numerics(boss), ["461", "403", "442", "401", "441"])
        h.send(boss, "KICK #testroom boss", "KICK #testroom root")
        self.assertEqual(h.read(boss), [":test.irc NOTICE boss :you cannot kick yourself",
                                        ":test.irc NOTICE boss :you cannot kick an admin"])
        self.assertIsNotNone(h.server.get("bob"))


class ModeTests(IrcModerationTestCase):
    def test_ban_disconnects_a_line_user_who_is_then_refused(self):
        """MODE #testroom +b bob!*@*: bob (a line user) gets `! you were banned
        by boss` and is disconnected; /bans lists the ban, MODE b too, and bob
        is refused at login; -b lifts it."""
        h = self.h
        bob, root = self.line_user("bob"), self.line_user("root")
        boss = self.boss("#testroom")
        self.forget(bob, root)
        h.send(boss, "MODE #testroom +b bob!*@*")
        self.assertEqual(h.read(bob), ["! you were banned by boss"])
        self.assertTrue(h.closed(bob))
        self.assertEqual(h.read(root), ["* bob was banned by boss"])
        h.send(root, "/bans")
        bans = h.read(root)
        self.assertEqual(bans[0], "* bans (1):")
        self.assertTrue(bans[1].startswith("* bob by boss at "), bans)
        h.read(boss)
        h.send(boss, "MODE #testroom b")
        self.assertEqual(h.read(boss)[0].split()[1:5], ["367", "boss", "#testroom", "bob!*@*"])
        again = h.connect()
        h.send(again, "BOB")
        self.assertEqual(h.read(again)[-1], "! you are banned")
        self.assertTrue(h.closed(again))
        h.send(boss, "MODE #testroom -b bob!*@*")
        self.assertEqual(h.read(root), ["* bob was unbanned by boss"])
        self.assertFalse(h.closed(self.line_user("bob")))

    def test_bare_nick_and_several_changes(self):
        """A bare nick is a mask too, and one MODE line may carry several
        changes (+bb carol dave): each is a chatd ban of an offline name."""
        h = self.h
        boss = self.boss("#testroom")
        h.send(boss, "MODE #testroom +bb carol dave!*")
        self.assertEqual(sorted(ban.name for ban in h.server.bans.all(h.server.now())),
                         ["carol", "dave"])

    def test_quiet_is_mute(self):
        """MODE +q bob mutes bob everywhere (his lines get `! you are muted`);
        -q lifts it.  The room is told as for /mute and /unmute."""
        h = self.h
        bob, root = self.line_user("bob"), self.line_user("root")
        boss = self.boss("#testroom")
        self.forget(bob, root)
        h.send(boss, "MODE #testroom +q bob!*@*")
        self.assertEqual(h.read(root), ["* bob was muted by boss"])
        h.send(bob, "hello?")
        self.assertEqual(h.read(bob)[-1], "! you are muted")
        self.assertEqual(h.read(root), [])
        h.send(boss, "MODE #testroom -q bob")
        self.assertEqual(h.read(root), ["* bob was unmuted by boss"])
        h.send(bob, "hello!")
        self.assertEqual(h.read(root), ["<bob> hello!"])

    def test_refusals(self):
        """482 for a non-admin's change; a mask that names anything but one
        name gets a NOTICE; 472 for a mode chatd does not change, 461 for a
        mask missing; the core's refusals are NOTICEs.  Nothing is banned."""
        h = self.h
        self.line_user("bob")
        self.line_user("root")
        alice = self.connect("alice", None, "#testroom")
        boss = self.boss("#testroom")
        self.forget(alice)
        h.send(alice, "MODE #testroom +b bob")
        self.assertEqual(self.numerics(alice), ["482"])
        h.send(boss, "MODE #testroom +b b*!*@*", "MODE #testroom +b *!*@127.0.0.1")
        self.assertEqual(h.read(boss), [
            ":test.irc NOTICE boss :b*!*@*: chatd bans names: use nick or nick!*@*",
            ":test.irc NOTICE boss :*!*@127.0.0.1: chatd bans names: use nick or nick!*@*"])
        h.send(boss, "MODE #testroom +m", "MODE #testroom +q")
        self.assertEqual(self.numerics(boss), ["472", "461"])
        h.send(boss, "MODE #testroom +b root", "MODE #testroom -b carol")
        self.assertEqual(h.read(boss), [":test.irc NOTICE boss :you cannot ban an admin",
                                        ":test.irc NOTICE boss :carol is not banned"])
        self.assertEqual(h.server.bans.all(h.server.now()), [])

    def test_mask_names(self):
        """The masks that name one chatd name, and some that do not."""
        self.assertEqual([mask_name(m) for m in ("bob", "Bob!*", "bob!*@*")],
                         ["bob", "Bob", "bob"])
        for mask in ("b?b!*@*", "*!*@*", "bob!bob@host", "bob!*@10.0.0.1", "", "!*@*"):
            self.assertIsNone(mask_name(mask), mask)


class JournalFirstTests(IrcModerationTestCase):
    def setUp(self):
        self.runner = ManualRunner()
        super().setUp(bans=BanStore(self.runner, {}))

    def test_lines_after_a_ban_wait_for_the_journal(self):
        """The room hears of a ban once it is on disk, and the admin's next
        lines wait until then: they reach the room after the ban, in order."""
        h = self.h
        self.line_user("bob")
        root = self.line_user("root")
        boss = self.boss("#testroom")
        self.forget(root)
        h.send(boss, "MODE #testroom +b bob", "PRIVMSG #testroom :after")
        self.assertEqual(h.read(root), [])
        self.runner.drain()
        self.assertEqual(h.read(root), ["* bob was banned by boss", "<boss> after"])
