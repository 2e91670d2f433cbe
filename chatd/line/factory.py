"""The factory: what all connections share, and who may connect.

ChatFactory builds a ChatProtocol per connection and holds what they have
in common: the room, the limits (changed in place by a reload), the login
failure record, and who is connected, per address, for admission.  It also
closes them all at shutdown.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.protocol import ServerFactory

from chatd.config import Limits
from chatd.core.limits import LoginFailures
from chatd.core.room import Room
from chatd.core.stats import Stats
from chatd.core.text import notice
from chatd.line.protocol import ChatProtocol


class ChatFactory(ServerFactory):
    """Shared state of all connections: the room, the limits, who is connected."""

    protocol = ChatProtocol
    noisy = False

    def __init__(self, room: Room, portal, limits: Limits | None = None, clock=None,
                 stats: Stats | None = None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.room = room
        self.stats = stats if stats is not None else room.stats
        self.portal = portal
        self.limits = limits or Limits()
        self.clock = clock
        self.connections: set[ChatProtocol] = set()
        self.per_host: dict[str, int] = {}
        self.failures = LoginFailures(clock, self.limits)
        self._all_closed: list[defer.Deferred] = []

    def admit(self, conn: ChatProtocol) -> str | None:
        """Count a new connection in, or say why it is refused."""
        if len(self.connections) >= self.limits.max_clients:
            self.stats.refused("server full")
            return "server full"
        if self.per_host.get(conn.host, 0) >= self.limits.max_per_ip:
            self.stats.refused("per-ip limit")
            return "too many connections from your address"
        self.connections.add(conn)
        self.per_host[conn.host] = self.per_host.get(conn.host, 0) + 1
        return None

    def limits_changed(self) -> None:
        """self.limits was changed in place: tell every connection."""
        for conn in list(self.connections):
            conn.limits_changed()

    def release(self, conn: ChatProtocol) -> None:
        self.connections.discard(conn)
        left = self.per_host.get(conn.host, 1) - 1
        if left > 0:
            self.per_host[conn.host] = left
        else:
            self.per_host.pop(conn.host, None)
        if not self.connections:
            waiting, self._all_closed = self._all_closed, []
            for d in waiting:
                d.callback(None)

    def shutdown(self, timeout: float = 5.0) -> defer.Deferred:
        """Tell everyone, close every connection; fires once all are closed.

        Connections that have not gone within timeout seconds are aborted.
        """
        self.room.shutdown()  # members: told and closed by the room
        for conn in list(self.connections):
            conn.say_goodbye(notice("server shutting down"))
        if not self.connections:
            return defer.succeed(None)
        d = defer.Deferred()
        self._all_closed.append(d)

        def abort():
            for conn in list(self.connections):
                conn.transport.abortConnection()

        call = self.clock.callLater(timeout, abort)
        d.addBoth(lambda r: (call.cancel() if call.active() else None, r)[1])
        return d
