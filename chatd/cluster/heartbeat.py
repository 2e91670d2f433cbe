"""A node's heartbeat: its presence key, a watchdog on Redis, and lost nodes.

Every ttl/3 the node renews `chatd:node:NODE` (which expires after the
TTL), drops a link whose Redis stopped answering (a heartbeat unanswered
and nothing else heard since: a busy node still reads its batches), and
looks for the other nodes' keys: a node whose key expired is lost, and its
users leave (chatd.core.peers).

The key holds this process's token (when it started, then random).  If a
renewal replaces another token (or a batch comes with it), a second
process runs with the same --node: the newer of the two stops (other()).
"""

from __future__ import annotations

import secrets
import time

from twisted.internet import defer, task
from twisted.logger import Logger
from txredisapi import ResponseError

from chatd.cluster import sync

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
        # Ordered by start time: of two processes with one --node, the
        # newer has the greater token.
        self.token = f"{int(time.time() * 1000):015d}-{secrets.token_hex(4)}"
        self._replies_old = True  # SET ... GET (Redis 6.2 and newer) works
        self.duplicate = False  # another process runs as this node: this one stops
        self._warned = False
        self._suspect = None  # another token found in the key once: alive if again
        self._reasserted: set[str] = set()  # twins this process answered

    def renew(self, redis) -> defer.Deferred:
        """Write this node's key (this process's token, with the TTL); fires
        with the token it replaced, or None."""
        command = ["SET", NODE + self._bus.node, self.token, "EX", max(int(self._bus.ttl), 1)]
        if not self._replies_old:
            return redis.execute_command(*command).addCallback(lambda _: None)

        def older(failure):
            failure.trap(ResponseError)
            if "syntax" not in str(failure.value).lower():  # LOADING, OOM...: not that
                return failure
            log.warn("cluster: this Redis has no SET ... GET (6.2 and newer): two"
                     " processes started with the same --node go unnoticed")
            self._replies_old = False
            return self.renew(redis)

        return redis.execute_command(*command, "GET").addErrback(older)

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

    def _renewed(self, replaced) -> None:
        self.answered()
        replaced = None if replaced is None else str(replaced)
        if replaced is None or replaced == self.token:
            self._suspect = None
        elif replaced == self._suspect:
            # This process wrote the key at its last beat and the other token
            # is back: another process is alive and writes it too.  (Once
            # could be a dead predecessor's, from a Redis restored from disk.)
            self.other(replaced)
        else:
            self._suspect = replaced

    def _refused(self, failure) -> None:
        """Redis answered a renewal with an error (OOM, READONLY...): it is
        there, so the watchdog leaves the link, but the error is logged."""
        if failure.check(ResponseError):
            self.answered()
            log.warn("cluster: Redis refused this node's heartbeat: {why}",
                     why=failure.getErrorMessage())

    def other(self, token: str) -> None:
        """Another process runs as this node (its token is token): the
        newer of the two stops (bus.quit); the older goes on, and says
        again who is on it."""
        node, token = self._bus.node, str(token)
        if self.duplicate:
            return
        if self.token > token:
            self.duplicate = True
            log.error("cluster: another chatd process already runs as node {node}:"
                      " this one stops. Give every node its own --node.", node=node)
            if self._bus.quit is not None:
                self._bus.quit()
        else:
            if not self._warned:
                self._warned = True
                log.error("cluster: another chatd process started as node {node} too;"
                          " it stops. Give every node its own --node.", node=node)
            if token in self._reasserted:
                return
            self._reasserted.add(token)
            # What it told the others of this node is wrong (nobody is on
            # it), and its link-up freed the names of this node's users.
            self._bus.send(["state", self._bus.presence()])
            if self._bus.redis is not None:
                sync.reclaim(self._bus.redis, self._bus.server, node).addErrback(
                    lambda f: log.failure("cluster: claiming names again failed", f))

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
        self.renew(redis).addCallbacks(self._renewed, self._refused)
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
