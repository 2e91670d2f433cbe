"""The line protocol's factory: what its connections share, and shutdown.

ChatFactory builds a ChatProtocol per connection.  The server (rooms,
users), the admission gate (limits, failed logins) and the login portal
belong to the core and are shared with every other front end; the factory
adds the set of its own connections, to tell them of a reload and to close
them all at shutdown.
"""

from __future__ import annotations

from twisted.cred.portal import Portal
from twisted.internet import defer
from twisted.internet.protocol import ServerFactory

from chatd.config import Limits
from chatd.core.gate import Gate
from chatd.core.server import Server
from chatd.core.stats import Stats
from chatd.frontends import Connections
from chatd.line.codec import notice
from chatd.line.protocol import ChatProtocol


class ChatFactory(ServerFactory):
    """Shared state of all line connections."""

    protocol = ChatProtocol
    noisy = False

    def __init__(self, server: Server, portal: Portal, gate: Gate | None = None,
                 clock=None, registrar=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.server = server
        self.gate = gate if gate is not None else Gate(Limits(), clock, server.stats)
        self.portal = portal
        self.clock = clock
        # registrar(name, password) -> Deferred: stores a registered name
        # (chatd.core.auth.register); None: /register is unavailable.
        self.registrar = registrar
        self._live = Connections(self.gate, clock)
        self.connections: set[ChatProtocol] = self._live.open

    @property
    def limits(self) -> Limits:
        return self.gate.limits

    @property
    def stats(self) -> Stats:
        return self.server.stats

    def admit(self, conn: ChatProtocol) -> str | None:
        """Count a new connection in (through the gate), or say why it is refused."""
        return self._live.admit(conn)

    def limits_changed(self) -> None:
        """The limits were changed in place: tell every connection."""
        for conn in list(self.connections):
            conn.limits_changed()

    def release(self, conn: ChatProtocol) -> None:
        self._live.release(conn)

    def shutdown(self, timeout: float = 5.0) -> defer.Deferred:
        """Tell everyone, close every connection; fires once all are closed
        (those not gone within timeout seconds are aborted)."""
        return self._live.close_all(
            lambda conn: conn.say_goodbye(notice("server shutting down")), timeout)
