"""ClusterBus's own rules, with Redis played by a fake (no sockets).

What a user would notice: in a cluster a line is shown to the people of
its own node in the order Redis gives it (so every node shows one order),
and a cut to Redis never swallows a line that was said.
"""

from __future__ import annotations

import json

from twisted.internet import defer, task
from twisted.logger import capturedLogs
from twisted.trial import unittest
from txredisapi import ResponseError

from chatd.cluster import codec
from chatd.cluster.bus import ClusterBus
from chatd.cluster.url import parse
from chatd.core import events as ev
from chatd.core.errors import Unavailable
from chatd.core.server import Server
from chatd.core.store import BanStore
from tests.helpers import FakeClient


class FakeRedis:
    """Answers every command at once with OK; keeps what EVAL published."""

    def __init__(self):
        self.published: list[str] = []
        self.values: dict[str, str] = {}
        self.evals: list[list] = []  # every script's ARGV

    def execute_command(self, *args):
        """SET KEY VALUE ... [GET] (a node's heartbeat): the old value with GET."""
        assert args[0] == "SET", args
        old = self.values.get(args[1])
        self.values[args[1]] = args[2]
        return defer.succeed(old if args[-1] == "GET" else "OK")

    def exists(self, key):
        return defer.succeed(1)

    def eval(self, script, keys, args):
        self.evals.append(args)
        if "PUBLISH" in script:
            self.published.append(args[1])
            return defer.succeed(1)
        return defer.succeed("")


class BusCase(unittest.TestCase):
    """A node (server and ClusterBus) on a Clock, its link up, Redis faked."""

    def setUp(self):
        self.clock = task.Clock()
        self.bus = ClusterBus(parse("redis://127.0.0.1:1/0"), self.clock, node="a")
        self.server = Server(self.clock, BanStore.in_memory(), bus=self.bus)
        self.bus.attach(self.server, users=None)
        self.redis = FakeRedis()
        # The link came up and the node resynchronised (chatd.cluster.sync).
        self.bus.redis = self.redis
        self.bus.resynced(self.redis)
        self.addCleanup(self.bus.stop)

    def enter(self, name):
        client = FakeClient()
        user = self.successResultOf(self.server.claim(name, client))
        self.successResultOf(self.server.enter(user, login=True))
        self.clock.advance(0)
        client.lines()
        return user, client

    def heard_back(self):
        """Redis hands this node its own batches back, in order."""
        published, self.redis.published = self.redis.published, []
        for message in published:
            self.bus.received(message)
        self.clock.advance(0)



class ClusterBusTests(BusCase):
    def test_own_line_waits_for_redis_order(self):
        """A line said here reaches this node's room only as Redis hands it
        back, after what another node's batch put before it there; its
        sayer does not get it back."""
        ann, ann_client = self.enter("ann")
        _, bob = self.enter("bob")
        self.heard_back()
        bob.lines()
        ann_client.lines()
        self.server.say(ann, self.server.landing, "mine")
        self.clock.advance(0)
        self.assertEqual(bob.lines(), [])
        other = [["e", "chatd", None, ["Message", 0.0, "chatd", "zed", "theirs", ""]]]
        self.bus.received(codec.batch("b", 1, other))
        self.heard_back()
        self.assertEqual(bob.lines(), ["<zed> theirs", "<ann> mine"])
        self.assertEqual(ann_client.lines(), ["<zed> theirs"])

    def test_link_lost_delivers_what_was_on_its_way(self):
        """Lines published but not heard back when the link drops are shown
        here then, and lines said while it is down are shown at once."""
        ann, _ = self.enter("ann")
        _, bob = self.enter("bob")
        self.heard_back()
        bob.lines()
        self.server.say(ann, self.server.landing, "on its way")
        self.clock.advance(0)
        self.bus.lost()
        self.clock.advance(0)
        self.assertEqual(bob.lines(), ["<ann> on its way"])
        self.server.say(ann, self.server.landing, "while down")
        self.clock.advance(0)
        self.assertEqual(bob.lines(), ["<ann> while down"])

    def test_no_new_login_while_down(self):
        """A new login while the link is down is refused with a clear reason,
        never let in with a name that might be in use elsewhere."""
        self.bus.lost()
        failure = self.failureResultOf(self.server.claim("cy", FakeClient()))
        failure.trap(Unavailable)
        self.assertEqual(str(failure.value), "cluster unavailable: try again in a moment")


class FromOtherNodesTests(BusCase):
    """What another node's batch does here."""

    def test_control_characters_from_redis_never_reach_a_terminal(self):
        """A line that reaches Redis with an escape sequence in it (an old or
        hostile node, a Redis anyone can write to) is cleaned here before
        it is shown: the terminal gets no ESC, no bell."""
        _, bob = self.enter("bob")
        self.heard_back()
        bob.lines()
        said = ev.Message(0, 0.0, "chatd", "zed", "\x1b[2Jhi\x07")
        self.bus.received(codec.batch("b", 1, [codec.line("m", "chatd", "zed", said)]))
        self.clock.advance(0)
        self.assertEqual(bob.lines(), ["<zed> [2Jhi"])

    def test_lines_and_other_items_of_one_batch_keep_their_order(self):
        """A batch that mixes lines with other items (an event, someone
        joining elsewhere) and records that are no line at all (wrong
        fields, no time, a time no clock can show) reaches the room in the
        batch's order, the bad records left out."""
        _, bob = self.enter("bob")
        self.heard_back()
        bob.lines()

        def line(name, text, at=1.0):
            return codec.line("m", "chatd", name, ev.Message(0, at, "chatd", name, text))

        self.bus.received(codec.batch("b", 1, [
            line("zed", "one"),
            ["e", "chatd", None, ["Notice", 1.0, "chatd", "between"]],
            line("zed", "two"),
            "m\x00chatd\x00zed\x00",  # too few fields
            line("zed", "no time").replace("\x001000\x00", "\x00soon\x00"),
            line("zed", "far future", at=1e17),
            ["in", "chatd", "yan", False, None],
            ["e", "chatd", None, ["Joined", 1.0, "chatd", "yan", False]],
            line("yan", "three"),
        ]))
        self.clock.advance(0)
        self.assertEqual(bob.lines(), ["<zed> one", "* between", "<zed> two",
                                       "* yan joined", "<yan> three"])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 3)

    def test_batch_of_another_chatd_version_is_skipped_with_one_warning(self):
        """A node still running an older chatd (JSON batches) during an
        upgrade costs its batches, not this node: one warning in the log."""
        old = "b 7 " + json.dumps([["m", "chatd", "zed", 1.0, "zed", "hi", ""]])
        with capturedLogs() as events:
            self.bus.received(old)
            self.bus.received(old)
        warnings = [e for e in events if "cannot read" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 1)

    def test_ban_from_another_node_removes_its_target_here(self):
        """A ban made on another node takes its target off this node at once,
        even if that node's own word to do it never comes."""
        _, mallory = self.enter("mallory")
        self.heard_back()
        ban = {"name": "mallory", "by_admin": "boss", "reason": "spam",
               "created": 0.0, "expires": None, "address": None}
        self.bus.received(codec.batch("b", 1, [["mod", "ban", ban]]))
        self.clock.advance(0)
        self.assertEqual(mallory.lines()[-1], "! you were banned by boss: spam")
        self.assertTrue(mallory.disconnected)
        self.assertIsNone(self.server.get("mallory"))


class SilentRedis(FakeRedis):
    """Publishes, but never answers a heartbeat: a Redis that hangs."""

    def execute_command(self, *args):
        return defer.Deferred()

    def exists(self, key):
        return defer.Deferred()


class WatchdogTests(BusCase):
    def setUp(self):
        super().setUp()
        self.redis = SilentRedis()
        self.bus.redis = self.redis
        self.dropped = []
        self.bus.link.drop = lambda: self.dropped.append(True)

    def test_redis_that_stops_answering_is_dropped(self):
        """A Redis that stops answering (no reply to a heartbeat, nothing
        else from it for a third of the TTL) counts as lost: the node then
        serves its own users on its own and says so, rather than hanging."""
        third = self.bus.ttl / 3
        self.clock.advance(third)  # heartbeat sent, never answered
        self.assertEqual(self.dropped, [])
        self.clock.advance(third)
        self.assertEqual(self.dropped, [True])

    def test_busy_node_reading_batches_is_not_dropped(self):
        """A node that reads batches from Redis but whose heartbeat answer
        is late (a busy reactor) keeps its link."""
        third = self.bus.ttl / 3
        self.clock.advance(third)
        self.clock.advance(third / 2)
        self.bus.received(codec.batch("b", 1, []))
        self.clock.advance(third / 2)
        self.assertEqual(self.dropped, [])

    def test_hung_redis_is_dropped_when_other_nodes_are_known(self):
        """The same with another node known: checking that node's heartbeat
        waits on the hung Redis too, and must not stop the watchdog."""
        self.bus.received(codec.batch("b", 1, []))  # node b is known from now on
        third = self.bus.ttl / 3
        self.clock.advance(third)
        self.clock.advance(third)
        self.assertEqual(self.dropped, [True])


class DuplicateNodeTests(BusCase):
    """Two processes started with the same --node (what an operator would
    otherwise find out from users on one of them hearing nothing)."""

    OLDER = "000000000000001-aaaaaaaa"  # a token from long before this process
    NEWER = "999999999999999-ffffffff"

    def setUp(self):
        super().setUp()
        self.stopped = []
        self.bus.quit = lambda: self.stopped.append(True)

    def test_newer_process_stops_without_speaking_for_the_other(self):
        """The newer process stops as soon as it hears the other one, with
        an error in its log, and says no goodbye in the node's name (the
        other process's users stay listed everywhere)."""
        self.enter("ann")
        self.heard_back()
        with capturedLogs() as events:
            self.bus.received(codec.batch("a", 1, [["hello"]], self.OLDER))
        self.assertEqual(self.stopped, [True])
        self.assertIn("this one stops", " ".join(e.get("log_format", "") for e in events))
        self.successResultOf(self.bus.stop())
        self.assertEqual(self.redis.published, [])

    def test_older_process_goes_on(self):
        """The process that was there first keeps serving its users, tells
        the other nodes again who is on it (the newer one had told them
        nobody was) and claims their names again (its link-up freed them)."""
        ann, _ = self.enter("ann")
        self.heard_back()
        self.redis.evals.clear()
        with capturedLogs() as events:
            self.bus.received(codec.batch("a", 1, [["state", []]], self.NEWER))
        self.clock.advance(0)
        self.assertEqual(self.stopped, [])
        self.assertIn("it stops", " ".join(e.get("log_format", "") for e in events))
        published, self.redis.published = self.redis.published, []
        self.assertIn('["state",[["ann",false,null,["chatd"]]]]', published[-1])
        self.bus.received(published[-1])
        # The newer one's link-up freed the node's names: ann's is claimed again.
        self.assertIn(["ann", "a", "0"], self.redis.evals)
        _, bob = self.enter("bob")
        self.heard_back()
        bob.lines()
        self.server.say(ann, self.server.landing, "still here")
        self.clock.advance(0)
        self.heard_back()
        self.assertEqual(bob.lines(), ["<ann> still here"])

    def test_heartbeat_finds_an_idle_duplicate(self):
        """A duplicate that publishes nothing is found by the heartbeat: the
        node's key holds the other process's token at two beats running
        (once could be a dead predecessor's, from a Redis restored from
        disk: a node restarted under its old name keeps going)."""
        self.redis.values["chatd:node:a"] = self.OLDER
        self.clock.advance(self.bus.ttl / 3)
        self.clock.advance(self.bus.ttl / 3)
        self.assertEqual(self.stopped, [])
        self.redis.values["chatd:node:a"] = self.OLDER
        self.clock.advance(self.bus.ttl / 3)
        self.redis.values["chatd:node:a"] = self.OLDER  # the twin writes it again
        self.clock.advance(self.bus.ttl / 3)
        self.assertEqual(self.stopped, [True])

    def test_redis_without_set_get(self):
        """A Redis older than 6.2 (no SET ... GET) keeps the heartbeat going,
        with one warning; a Redis still loading its data is not taken for one."""
        refusals = []

        def execute_command(*args):
            if args[-1] == "GET":
                reason = refusals.pop(0)
                return defer.fail(ResponseError(reason))
            return defer.succeed("OK")

        self.redis.execute_command = execute_command
        refusals.append("LOADING Redis is loading the dataset in memory")
        third = self.bus.ttl / 3
        self.clock.advance(third)
        self.assertEqual(self.bus.heartbeat._replies_old, True)
        refusals.append("ERR syntax error")
        with capturedLogs() as events:
            self.clock.advance(third)
        self.assertIn("no SET ... GET", " ".join(e.get("log_format", "") for e in events))
        self.clock.advance(third)  # plain SET from now on: nothing left to pop
        self.assertEqual(self.stopped, [])
