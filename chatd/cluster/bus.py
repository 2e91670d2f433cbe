"""ClusterBus: the core's IBus, carried between the nodes of a cluster by Redis.

What a node publishes in one reactor turn goes out as one batch (its
text: chatd.cluster.codec), in one PUBLISH on `chatd:events` (by a script that also
appends the batch's lines to their rooms' history lists).  Every node, the
sender included, delivers a room's events when Redis hands the batch back:
Redis's one order is every node's order.

While the link is down, what this node's users say is delivered to this
node's users at once (they keep talking to each other); batches sent but
not yet heard back are delivered here when the link drops, so nothing
shown as said is lost.  New logins and admins' actions are refused
(Unavailable) until the link is back and this node has resynchronised
(chatd.cluster.sync).

Another node's batch, read record by record: chatd.cluster.inbound.
A node whose heartbeat (`chatd:node:NODE`, with a TTL: chatd.cluster.heartbeat)
stops is lost.
"""

from __future__ import annotations

import os
import socket
from collections import deque

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from chatd.cluster import sync
from chatd.cluster.codec import LINE_KINDS, encode
from chatd.cluster.codec import batch as _batch
from chatd.cluster.codec import dumps as _dumps
from chatd.cluster.codec import line as _line
from chatd.cluster.heartbeat import NODE, Heartbeat
from chatd.cluster.inbound import read
from chatd.cluster.link import Link
from chatd.cluster.scripts import CLAIM as _CLAIM
from chatd.cluster.scripts import PUBLISH as _PUBLISH
from chatd.cluster.scripts import RELEASE as _RELEASE
from chatd.cluster.url import RedisAddress
from chatd.core import events as ev
from chatd.core.bus import BatchReceiver, IBus, Receiver
from chatd.core.errors import Banned, NameTaken, Unavailable
from chatd.core.text import name_key

log = Logger()

CHANNEL = "chatd:events"

# Lines said travel as records of their own (codec.line).
_LINE_CODES = {cls: code for code, cls in LINE_KINDS.items()}

# Items that wait for the link, not dropped while it is down (see _flush).
_HELD = frozenset({"tell", "expel", "unroom", "replaced", "mod"})


@implementer(IBus)
class ClusterBus:
    """See the module docstring.  attach() it to the Server it serves and
    start `bus.link` (a service) once the data files are open."""

    keeps_history = True  # as delivered, in Redis's order (see deliver)

    def __init__(self, address: RedisAddress, reactor, node: str | None = None,
                 ttl: float = 15.0):
        self.node = node or f"{socket.gethostname()}-{os.getpid()}"
        self.ttl = ttl
        self._reactor = reactor
        self._rooms: dict[str, Receiver] = {}
        self._batches: dict[str, BatchReceiver] = {}  # the same rooms' receive_all
        self._out: list = []  # items of the next batch
        self._flush_call = None
        self._seq = 0
        # This node's own events of the next batch, as made here: heard
        # back, they are delivered as they are, not decoded again.
        self._own: dict[str, list[tuple[str | None, ev.Event]]] = {}  # by room
        self._held: list = []  # items for other nodes kept while the link is down
        # Published, not heard back: (seq, own events by room).
        self._sent: deque[tuple[int, dict]] = deque()
        self._ready = False  # up and resynchronised
        self._was_up = False
        self._known: set[str] = set()  # other nodes heard from
        self.server = None
        self.users = None  # the users file (accounts)
        self.redis = None  # the command connection while up
        self.link = Link(address, CHANNEL, reactor, self.received, self._up, self.lost)
        self.quit = None  # stops this process (make_bus: reactor.stop)
        self._misread = False  # a batch it could not read was logged
        self.heartbeat = Heartbeat(self, reactor)

    def attach(self, server, users) -> None:
        self.server, self.users = server, users

    # -- IBus: room events --------------------------------------------

    def publish(self, room: str, event: ev.Event, sender: object) -> None:
        if not self._ready:  # the link is down: this node's users hear it at once
            self.deliver(room, event, sender)
            return
        key = sender.key if sender is not None else None
        code = _LINE_CODES.get(event.__class__)
        if code is not None:  # most events: a record of its own (codec.line)
            self._out.append(_line(code, room, key, event))
        else:
            self._out.append(["e", room, key, encode(event)])
        if self._flush_call is None:
            self._flush_call = self._reactor.callLater(0, self._flush)
        own = self._own.get(room)
        if own is None:
            self._own[room] = [(key, event)]
        else:
            own.append((key, event))

    def subscribe(self, room: str, receive: Receiver, receive_all: BatchReceiver) -> None:
        self._rooms[room] = receive
        self._batches[room] = receive_all

    def unsubscribe(self, room: str) -> None:
        self._rooms.pop(room, None)
        self._batches.pop(room, None)

    # -- IBus: names, presence, people elsewhere ----------------------

    def ready(self) -> bool:
        return self._ready

    def claim(self, user_key: str, takeover: bool) -> defer.Deferred:
        if not self._ready:
            return defer.fail(Unavailable())
        d = self.redis.eval(_CLAIM, [], [user_key, self.node, "1" if takeover else "0"])

        def claimed(owner):
            sync.check_claim(self.server, owner)
            if owner:  # taken over from a live node: its user goes
                self.send(["replaced", user_key])

        return d.addCallbacks(claimed, self._unavailable)

    def release(self, user_key: str) -> None:
        if self._ready:
            self.send(["gone", user_key])
            self.redis.eval(_RELEASE, [], [self.node, user_key]).addErrback(
                lambda f: None)  # the link is down: the node's TTL frees it

    def entered(self, room: str, user) -> None:
        if self._ready:
            self.send(["in", room, user.name, user.admin, user.address])

    def left(self, room: str, user) -> None:
        if self._ready:
            self.send(["out", name_key(room), user.key])

    def tell(self, user, event: ev.Event) -> None:
        if not self._ready:
            raise Unavailable()
        self.send(["tell", user.node, user.key, encode(event)])

    def expel(self, user, event: ev.Event, count_as: str) -> None:
        if not self._ready:
            raise Unavailable()
        self.send(["expel", user.node, user.key, encode(event), count_as])

    def unroom(self, user, room: str) -> None:
        if not self._ready:
            raise Unavailable()
        self.send(["unroom", user.node, user.key, room])

    def moderated(self, kind: str, **details) -> defer.Deferred:
        if not self._ready:
            return defer.fail(Unavailable())
        d = sync.store(self.redis, kind, details)

        def stored(_):
            self.send(["mod", kind, details])
            self._flush()

        return d.addCallbacks(stored, self._unavailable)

    @staticmethod
    def _unavailable(failure):
        failure.trap(Exception)
        if failure.check(NameTaken, Unavailable, Banned):
            return failure
        log.failure("cluster: a Redis command failed", failure)
        raise Unavailable()

    # -- batches out --------------------------------------------------

    def send(self, item: list) -> None:
        """item in this node's next batch."""
        self._out.append(item)
        if self._flush_call is None:
            self._flush_call = self._reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        if self._flush_call is not None:
            if self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
        items, self._out = self._out, []
        own, self._own = self._own, {}
        if not items:
            return
        if not self._ready:
            self.hand_over(own)
            # Presence is sent whole after a reconnection ("state"); what
            # was said to or done to someone elsewhere waits for the link.
            self._held += [item for item in items if item[0] in _HELD]
            return
        self._seq += 1
        self._sent.append((self._seq, own))
        limit = self.server.history.limit if self.server.history is not None else 0
        # A node reads its own batches' header (NODE SEQ TOKEN) only.
        args = [CHANNEL, _batch(self.node, self._seq, items, self.heartbeat.token), limit]
        if limit:  # only each room's newest `limit` lines of the batch matter
            for room, pairs in own.items():
                said = [e for _, e in pairs if e.__class__ in _LINE_CODES][-limit:]
                if said:
                    args += (room, _dumps([[int(e.at * 1000), e.kind, e.name, e.text]
                                           for e in said]))
        self.redis.eval(_PUBLISH, [], args).addErrback(
            lambda f: log.warn("cluster: a batch was not published: {why}",
                               why=f.getErrorMessage()))

    def hand_over(self, heard: dict) -> None:
        """Events heard, [(sender, event), ...] by room (another node's
        lines, or this node's own events heard back or kept while the link
        is down): the lines kept in history, then all to this node's rooms,
        one call per room."""
        history, batches = self.server.history, self._batches
        for room, pairs in heard.items():
            if history is not None:
                history.keep_many(room, [e for _, e in pairs if e.__class__ in _LINE_CODES])
            receive_all = batches.get(room)
            if receive_all is not None:
                receive_all(pairs)

    def deliver(self, room: str, event: ev.Event, sender) -> None:
        """An event to this node's members of room, kept in its history (in
        the order delivered) if it is a line said."""
        if event.__class__ in _LINE_CODES and self.server.history is not None:
            self.server.history.keep(room, event)
        receive = self._rooms.get(room)
        if receive is not None:
            receive(event, sender)

    def known(self) -> set[str]:
        """The other nodes heard from (whose heartbeats are checked)."""
        return self._known

    def forget(self, node: str) -> None:
        self._known.discard(node)  # node is gone: its heartbeat is no longer checked

    # -- batches in ---------------------------------------------------

    def received(self, message: str) -> None:
        """A batch from Redis (any node's, this one's included)."""
        self.heartbeat.heard()
        end = message.find("\n")  # the header; its own batch is not copied
        try:
            node, seq, token = (message if end < 0 else message[:end]).split(" ")
        except ValueError:  # a batch from a node running another chatd version
            if not self._misread:
                self._misread = True
                log.warn("cluster: a batch this node cannot read: every node must run"
                         " the same chatd version ({head!r:.60})", head=message[:60])
            return
        if node == self.node:
            if token != self.heartbeat.token:
                self.heartbeat.other(token)
                return
            seq = int(seq)
            while self._sent and self._sent[0][0] <= seq:
                _, sent = self._sent.popleft()
                self.hand_over(sent)
            return
        if node not in self._known:
            self._known.add(node)
        if end < 0:
            return
        read(self, node, message[end + 1:].split("\n"))

    def presence(self) -> list:
        """Who is on this node, as a \"state\" item says it."""
        return [[u.name, u.admin, u.address, [room.name for room in u.rooms]]
                for u in self.server.users]

    # -- the link -----------------------------------------------------

    def _up(self, redis) -> None:
        self.redis = redis
        d = self.heartbeat.renew(redis)  # a predecessor's token: it is gone
        d.addCallback(lambda _: sync.resync(redis, self.server, self.users,
                                                  history=not self._was_up))
        d.addCallback(self._tell_accounts)
        d.addCallback(lambda _: sync.reclaim(redis, self.server, self.node))
        d.addCallbacks(lambda _: self.resynced(redis), self._sync_failed,
                       errbackArgs=(redis,))

    def _tell_accounts(self, accounts: list[dict]) -> None:
        """The other nodes learn the accounts resync() added to Redis."""
        for account in accounts:
            self._out.append(["mod", "account", account])

    def resynced(self, redis) -> None:
        """The link is up with redis and this node has resynchronised: ready."""
        if self.redis is not redis:  # lost again meanwhile
            return
        self._ready = True
        self.heartbeat.start()
        held, self._held = self._held, []
        self._out[:0] = [["hello"], ["state", self.presence()], *held]
        self._flush()
        if self._was_up:
            log.info("cluster link restored")
            self._tell_admins("cluster link restored")
        else:
            log.info("cluster link up: node {node} via {address}", node=self.node,
                     address=self.link.address)
        self._was_up = True

    def _sync_failed(self, failure, redis) -> None:
        log.failure("cluster: resynchronising failed; retrying", failure)
        if redis is self.redis and redis.transport is not None:
            redis.transport.loseConnection()  # the link comes back and tries again

    def lost(self) -> None:
        """The link to Redis is down."""
        self.redis = None
        if not self._ready:
            return
        self._ready = False
        sent, self._sent = self._sent, deque()
        for _, own in sent:
            self.hand_over(own)
        self._flush()  # what was queued: delivered here
        log.warn("cluster link lost")
        self._tell_admins("cluster link lost")

    def _tell_admins(self, text: str) -> None:
        for user in self.server.users:
            if user.admin:
                self.server.tell(user, ev.Notice(ev.next_id(), self.server.now(), "", text))

    def stop(self) -> defer.Deferred:
        """This node is stopping: the others drop its users now, not after the TTL."""
        self.heartbeat.stop()
        if not self._ready:
            return defer.succeed(None)
        self._ready = False
        redis = self.redis
        keys = [user.key for user in self.server.users]
        d = redis.eval(_RELEASE, [], [self.node, *keys]) if keys else defer.succeed(None)
        if self.heartbeat.duplicate:  # the node's key, and its goodbye, are the other's
            return d.addErrback(lambda f: None)
        self.send(["bye"])
        self._flush()
        d.addCallback(lambda _: redis.delete(NODE + self.node))
        return d.addErrback(lambda f: None)
