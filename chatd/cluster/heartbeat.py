"""A node's heartbeat: its presence key, a watchdog on Redis, and lost nodes.

Every ttl/3 the node renews `chatd:node:NODE` (which expires after the
TTL), drops a link whose Redis stopped answering (a heartbeat unanswered
and nothing else heard since: a busy node still reads its batches), and
looks for the other nodes' keys: a node whose key expired is lost, and its
users leave (chatd.core.peers).
"""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.logger import Logger

log = Logger()

NODE = "chatd:node:"  # + node: its heartbeat, with a TTL


class Heartbeat:
    """The heartbeat of bus (a ClusterBus): start() once it is ready,
    heard() whenever Redis says anything, stop() when the node stops."""

    def __init__(self, bus, reactor):
        self._bus = bus
        self._reactor = reactor
        self._heard = 0.0  # when Redis last said anything (reactor seconds)
        self._beating = False  # a heartbeat waits for its answer
        # Until then (reactor seconds) a node whose key is missing is not
        # declared lost: after Redis came back empty every node's key is
        # missing until that node has reconnected too.
        self._grace_until = 0.0
        self._call = task.LoopingCall(self._beat)
        self._call.clock = reactor

    def heard(self) -> None:
        self._heard = self._reactor.seconds()

    def start(self) -> None:
        """The link is up and the node resynchronised."""
        self.answered()
        self._grace_until = self._reactor.seconds() + self._bus.ttl
        if not self._call.running:
            self._call.start(self._bus.ttl / 3, now=False)

    def stop(self) -> None:
        if self._call.running:
            self._call.stop()

    def answered(self, _=None) -> None:
        self._beating = False
        self.heard()

    def _beat(self) -> None:
        """Nothing is returned to the LoopingCall, which would wait for it
        (a hung Redis would then stop the heartbeat, watchdog included),
        and nothing raised here stops it."""
        try:
            self._beat_once()
        except Exception:
            log.failure("cluster: heartbeat failed")

    def _beat_once(self) -> None:
        bus = self._bus
        if not bus.ready():
            return
        redis, now, ttl = bus.redis, self._reactor.seconds(), bus.ttl
        if self._beating and now - self._heard >= ttl / 3:
            log.warn("cluster: Redis has not answered for {seconds:.0f} s",
                     seconds=now - self._heard)
            bus.link.drop()
            return
        self._beating = True
        d = redis.set(NODE + bus.node, "1", expire=max(int(ttl), 1))
        d.addCallbacks(self.answered, lambda f: None)
        peers = bus.server.peers
        nodes = sorted(bus.known() | peers.nodes)
        checks = [redis.exists(NODE + node) for node in nodes]

        def checked(results):
            for node, (ok, alive) in zip(nodes, results, strict=True):
                if ok and not alive and self._reactor.seconds() >= self._grace_until:
                    bus.forget(node)
                    users = peers.lost(node)
                    log.info("cluster: node {node} lost ({count} users)", node=node,
                             count=len(users))

        defer.DeferredList(checks, consumeErrors=True).addCallback(checked).addErrback(
            lambda f: log.failure("cluster: checking the other nodes failed", f))
