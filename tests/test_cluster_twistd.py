"""Several chatd nodes sharing rooms through a real redis-server (issue 12's "Done when").

Every test starts its own redis-server on a free loopback port and two or
three real `twistd -n chatd --cluster ...` nodes (tests/helpers_cluster.py),
and drives them with line clients (and one raw IRC socket) as users would.
Nothing sleeps: every wait is for a line, with a deadline.
"""

from __future__ import annotations

import re
import subprocess

from twisted.trial import unittest

from tests.helpers_cluster import ROOT, TTL, Cluster, Node
from tests.helpers_hostile import ADMIN, ADMIN_PASSWORD, DEADLINE, Client, wait_for

UNAVAILABLE = "! cluster unavailable: try again in a moment"
PASSWORD = "alice's long password"
HISTORY = re.compile(r"= \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ (.*)\Z")


def online(client: Client) -> set[str]:
    """The names /who lists now (admins without their `@`)."""
    client.say("/who")
    names = client.until("* online (").split(": ", 1)[1]
    return {name.lstrip("@") for name in names.split(", ")}


def said(client: Client, count: int) -> list[str]:
    """The next count chat lines (`<NAME> ...`) client gets, notices skipped."""
    lines: list[str] = []
    while len(lines) < count:
        line = client.line()
        if line.startswith("<"):
            lines.append(line)
    return lines


class ClusterTests(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(self)

    def admin(self, node, name: str = ADMIN) -> Client:
        return self.cluster.login(node, name, ADMIN_PASSWORD)

    def test_chat_across_nodes_both_ways_in_one_order(self):
        """Alice on node a and bob on node b see each other join, are both in
        /who, and talk both ways as on one server; when alice and bob each
        send twenty lines at once, carol (on a) and dave (on b) read the
        forty lines in the same order, each sender's own in the order sent."""
        c = self.cluster
        a, b = c.node("a"), c.node("b")
        alice = c.login(a, "alice")
        bob = c.login(b, "bob")
        self.assertEqual(alice.line(), "* bob joined")
        self.assertEqual(online(alice), {"alice", "bob"})
        self.assertEqual(online(bob), {"alice", "bob"})
        alice.say("hello from a")
        self.assertEqual(bob.line(), "<alice> hello from a")
        bob.say("hello from b")
        self.assertEqual(alice.line(), "<bob> hello from b")

        carol = c.login(a, "carol")
        dave = c.login(b, "dave")
        carol.until("* dave joined")
        alice.say(*(f"a{i}" for i in range(20)))
        bob.say(*(f"b{i}" for i in range(20)))
        on_a, on_b = said(carol, 40), said(dave, 40)
        self.assertEqual(on_a, on_b)
        self.assertEqual([x for x in on_a if x.startswith("<alice>")],
                         [f"<alice> a{i}" for i in range(20)])
        self.assertEqual([x for x in on_a if x.startswith("<bob>")],
                         [f"<bob> b{i}" for i in range(20)])

    def test_private_message_and_mute_across_nodes(self):
        """alice on node a sends bob on node b a private message: only bob
        gets it and alice gets her `[->bob]` receipt.  An admin on a mutes
        bob: his next line is refused on b with `! you are muted`, and
        nobody hears it."""
        c = self.cluster
        a, b = c.node("a"), c.node("b")
        boss = self.admin(a)
        alice = c.login(a, "alice")
        bob = c.login(b, "bob")
        alice.until("* bob joined")
        alice.say("/msg bob just between us")
        self.assertEqual(alice.line(), "[->bob] just between us")
        # (alice may join bob's view just after his login: she did so at once)
        self.assertEqual(bob.until("["), "[alice] just between us")
        boss.say("/mute bob")
        self.assertEqual(bob.until("* bob was"), "* bob was muted by boss")
        bob.say("can anyone hear me")
        self.assertEqual(bob.line(), "! you are muted")
        self.assertEqual([x for x in alice.sync() if x.startswith("<")], [])

    def test_irc_user_on_one_node_talks_with_line_user_on_another(self):
        """An IRC client on node b, in #chatd, gets a line user's message
        from node a as a PRIVMSG, and its PRIVMSG reaches the line user."""
        c = self.cluster
        a, b = c.node("a"), c.node("b", irc=True)
        alice = c.login(a, "alice")
        bob = c.irc(b, "bob")
        alice.until("* bob joined")
        alice.say("hello irc")
        line = bob.until("PRIVMSG #chatd")
        self.assertTrue(line.startswith(":alice!"), line)
        self.assertTrue(line.endswith(" PRIVMSG #chatd :hello irc"), line)
        bob.say("PRIVMSG #chatd :hello line")
        self.assertEqual(alice.line(), "<bob> hello line")

    def test_name_taken_on_one_node_is_refused_on_another(self):
        """While alice is logged in on node a, `alice` (in any case) is refused
        on node b as taken; once she quits, node b lets the name in."""
        c = self.cluster
        a, b = c.node("a"), c.node("b")
        alice = c.login(a, "alice")
        bob = c.login(b, "bob")
        _, answer = c.connect_as(b, "alice")
        self.assertEqual(answer, "! username alice is taken")
        _, answer = c.connect_as(b, "ALICE")
        self.assertEqual(answer, "! username ALICE is taken")
        alice.say("/quit")
        alice.rest()
        bob.until("* alice left")
        _, answer = c.connect_as(b, "alice")
        self.assertEqual(answer, "* logged in as alice in chatd")

    def removed_across(self, command: str, told: str, announced: str):
        """An admin on node a says command about mallory, who is on node b:
        mallory gets told and is disconnected, bob on b sees announced."""
        c = self.cluster
        a, b = c.node("a"), c.node("b")
        boss = self.admin(a)
        mallory = c.login(b, "mallory")
        bob = c.login(b, "bob")
        boss.until("* bob joined")
        boss.say(command)
        self.assertEqual(mallory.rest()[-1:], [told])  # after "* bob joined"
        self.assertEqual(bob.until("* mallory was"), announced)
        return a, b, bob

    def test_ban_on_one_node_disconnects_and_refuses_on_another(self):
        """An admin on node a bans mallory, who is on node b: mallory is told
        and disconnected at once, bob on b sees the ban, and logging in as
        mallory is refused on b (and on a)."""
        a, b, _ = self.removed_across("/ban mallory spamming",
                                      "! you were banned by boss: spamming",
                                      "* mallory was banned by boss: spamming")
        for node in (b, a):
            again, answer = self.cluster.connect_as(node, "Mallory")
            self.assertEqual(answer, "! you are banned: spamming")
            self.assertEqual(again.rest(), [])

    def test_kick_on_one_node_disconnects_on_another(self):
        """An admin on node a kicks mallory, who is on node b: mallory is told
        and disconnected, bob on b sees it; mallory may log in again."""
        _, b, bob = self.removed_across("/kick mallory calm down",
                                        "! you were kicked by boss: calm down",
                                        "* mallory was kicked by boss: calm down")
        self.cluster.login(b, "mallory")
        self.assertEqual(bob.line(), "* mallory joined")

    def test_killed_node_users_leave_within_ttl(self):
        """Node b is SIGKILLed: within the presence TTL (+5 s) alice on node a
        sees bob leave (`node lost`), /who no longer lists him, and his name
        is free again on a."""
        c = self.cluster
        a, b = c.node("a"), c.node("b")
        alice = c.login(a, "alice")
        c.login(b, "bob")
        self.assertEqual(alice.line(), "* bob joined")
        b.sigkill()
        self.assertEqual(alice.until("* bob left", timeout=TTL + 5), "* bob left (node lost)")
        self.assertEqual(online(alice), {"alice"})
        c.login(a, "bob")

    def test_second_process_with_a_node_name_in_use_stops(self):
        """A second process started as node a by mistake stops by itself,
        saying why in its log, within a heartbeat (a third of the TTL); the
        first node a goes on, and says again who is on it: its user is
        listed on b (the twin had said node a was empty) and heard there."""
        c = self.cluster
        a, b = c.node("a"), c.node("b")
        alice = c.login(a, "alice")
        bob = c.login(b, "bob")
        self.assertEqual(alice.line(), "* bob joined")
        twin = Node(c.dir / "a-twin", c.redis, "a")
        self.addCleanup(twin.kill)
        # Started by hand: it may be gone before Node.start would look.
        twin.out = twin.dir / "out1.log"
        twin.proc = subprocess.Popen(twin.command(twin.write_config()), cwd=twin.dir,
                                     stdout=twin.out.open("w"), stderr=subprocess.STDOUT)
        wait_for(lambda: twin.proc.poll() is not None, "the twin of node a stops",
                 timeout=TTL + 5)
        self.assertIn("another chatd process already runs as node a: this one stops",
                      twin.log())
        wait_for(lambda: online(bob) == {"alice", "bob"}, "alice listed on b again")
        alice.say("still here")
        self.assertEqual(said(bob, 1), ["<alice> still here"])


    def test_redis_outage_and_empty_restart(self):
        """Redis stops, then comes back empty.  Throughout, each node serves
        its own users (they keep talking); admins are told `* cluster link
        lost` and `restored` (logged once each); meanwhile a new login and an
        admin action get `! cluster unavailable`.  Afterwards users talk across
        nodes again, no one was shown leaving, a name held on b is still
        refused on a, and a ban made before the outage still holds on both."""
        c = self.cluster
        a, b = c.node("a"), c.node("b")
        boss, alice, carol = self.admin(a), c.login(a, "alice"), c.login(a, "carol")
        root, bob, dave = self.admin(b, ROOT), c.login(b, "bob"), c.login(b, "dave")
        everyone = {ADMIN, ROOT, "alice", "bob", "carol", "dave"}
        alice.until("* dave joined")
        self.assertEqual(online(alice), everyone)
        boss.say("/ban mallory spamming")
        bob.until("* mallory was banned")

        c.redis.stop()
        self.assertEqual(boss.until("* cluster"), "* cluster link lost")
        self.assertEqual(root.until("* cluster"), "* cluster link lost")
        alice.say("still here on a")
        self.assertEqual(carol.until("<"), "<alice> still here on a")
        bob.say("still here on b")
        self.assertEqual(dave.until("<"), "<bob> still here on b")
        for node in (a, b):
            newcomer, answer = c.connect_as(node, "erin")
            self.assertEqual(answer, UNAVAILABLE)
            self.assertEqual(newcomer.rest(), [])
        boss.say("/kick carol now")
        self.assertEqual(boss.until("! "), UNAVAILABLE)
        root.say("/ban dave now")
        self.assertEqual(root.until("! "), UNAVAILABLE)

        c.redis.start()
        self.assertEqual(boss.until("* cluster", timeout=3 * DEADLINE),
                         "* cluster link restored")
        self.assertEqual(root.until("* cluster", timeout=3 * DEADLINE),
                         "* cluster link restored")
        alice.say("across again")
        self.assertEqual(bob.until("<"), "<alice> across again")
        dave.say("and back")
        self.assertEqual(carol.until("<"), "<alice> across again")
        self.assertEqual(carol.until("<"), "<dave> and back")
        self.assertEqual(online(carol), everyone)
        _, answer = c.connect_as(a, "bob")
        self.assertEqual(answer, "! username bob is taken")
        for node in (a, b):
            _, answer = c.connect_as(node, "mallory")
            self.assertEqual(answer, "! you are banned: spamming")
        for node in (a, b):
            self.assertEqual(node.log().count("cluster link lost"), 1, node.log())
            self.assertEqual(node.log().count("cluster link restored"), 1, node.log())
        for user in (alice, carol, bob, dave):
            self.assertEqual([x for x in user.sync() if " left" in x], [])

    def test_node_started_later_sees_bans_accounts_and_history(self):
        """Node c, started after a ban, a /register and some talk on node a,
        refuses the banned name, asks the registered name for its password
        (and, given it, takes over the session on a) and replays the history."""
        c = self.cluster
        a, _ = c.node("a", history=50), c.node("b", history=50)
        boss = self.admin(a)
        boss.say("/ban mallory spamming")
        boss.until("* mallory was banned")
        alice = c.login(a, "alice")
        alice.say("/register")
        alice.until("? password")
        alice.say(PASSWORD)
        alice.until("? password")
        alice.say(PASSWORD)
        self.assertEqual(alice.line(),
                         "* alice is registered: logging in as alice asks for this password")
        alice.say("said before c started")
        boss.until("<alice> said before c started")

        late = c.node("c", history=50)
        _, answer = c.connect_as(late, "mallory")
        self.assertEqual(answer, "! you are banned: spamming")
        wrong, asked = c.connect_as(late, "alice")
        self.assertEqual(asked, "? password")
        wrong.say("not her password")
        self.assertEqual(wrong.rest(), ["! wrong password"])
        new, asked = c.connect_as(late, "alice")
        self.assertEqual(asked, "? password")
        new.say(PASSWORD)
        self.assertEqual(new.until("* logged in as"), "* logged in as alice in chatd")
        new.say("/rooms")
        greeting = new.upto("* rooms (")
        replayed = [m.group(1) for m in map(HISTORY.match, greeting) if m]
        self.assertIn("<alice> said before c started", replayed)
        self.assertEqual(alice.rest(), ["! logged in from elsewhere"])
        self.assertNotIn(PASSWORD, "".join(node.logs() for node in c.nodes.values()))

