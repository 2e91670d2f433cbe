"""A node's heartbeat check after Redis came back empty (ClusterBus, fake Redis).

What a user would notice: when Redis restarts empty, the people on the
other nodes are not shown leaving (`node lost`) and joining again just
because their node reconnected a moment later than this one; a node that
really is gone is still shown gone, a TTL after the link is back.
"""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.trial import unittest

from chatd.cluster import codec
from chatd.cluster.bus import NODE, ClusterBus
from chatd.cluster.url import parse
from chatd.core.server import Server
from chatd.core.store import BanStore
from tests.helpers import FakeClient
from tests.test_cluster_bus import FakeRedis

TTL = 15.0


class EmptyRedis(FakeRedis):
    """A Redis that lost everything: no node's heartbeat key exists."""

    def __init__(self):
        super().__init__()
        self.alive: set[str] = set()

    def execute_command(self, *args):
        self.alive.add(args[1])
        return super().execute_command(*args)

    def exists(self, key):
        return defer.succeed(int(key in self.alive))


class HeartbeatAfterEmptyRestartTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.bus = ClusterBus(parse("redis://127.0.0.1:1/0"), self.clock, node="a", ttl=TTL)
        self.server = Server(self.clock, BanStore.in_memory(), bus=self.bus)
        self.bus.attach(self.server, users=None)
        self.addCleanup(self.bus.stop)
        self.up(EmptyRedis())
        self.ann = FakeClient()
        user = self.successResultOf(self.server.claim("ann", self.ann))
        self.successResultOf(self.server.enter(user, login=True))
        # node b says who is on it: bob, in the landing room
        state = [["state", [["bob", False, None, ["chatd"]]]]]
        self.bus.received(codec.batch("b", 1, state))
        self.clock.advance(0)
        self.ann.lines()

    def up(self, redis) -> None:
        self.redis = redis
        self.bus.redis = redis
        self.bus.resynced(redis)

    def test_other_node_not_lost_while_it_reconnects(self):
        """Redis restarts empty and this node is back first: for a TTL, node
        b's missing heartbeat does not make bob leave; then it does."""
        self.bus.lost()
        self.up(EmptyRedis())
        self.clock.pump([TTL / 3] * 2)
        self.assertNotIn(NODE + "b", self.redis.alive)
        self.assertEqual([x for x in self.ann.lines() if "bob" in x], [])
        self.clock.pump([TTL / 3])
        self.assertEqual([x for x in self.ann.lines() if "bob" in x],
                         ["* bob left (node lost)"])
