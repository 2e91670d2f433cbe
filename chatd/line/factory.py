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
        self.connections: set[ChatProtocol] = set()
        self._all_closed: list[defer.Deferred] = []

    @property
    def limits(self) -> Limits:
        return self.gate.limits

    @property
    def stats(self) -> Stats:
        return self.server.stats

    def admit(self, conn: ChatProtocol) -> str | None:
        """Count a new connection in (through the gate), or say why it is refused."""
        refusal = self.gate.admit(conn.host)
        if refusal is None:
            self.connections.add(conn)
        return refusal

    def limits_changed(self) -> None:
        """The limits were changed in place: tell every connection."""
        for conn in list(self.connections):
            conn.limits_changed()

    def release(self, conn: ChatProtocol) -> None:
        self.connections.discard(conn)
        self.gate.release(conn.host)
        if not self.connections:
            waiting, self._all_closed = self._all_closed, []
            for d in waiting:
                d.callback(None)

    def shutdown(self, timeout: float = 5.0) -> defer.Deferred:
        """Tell everyone, close every connection; fires once all are closed.

        Connections that have not gone within timeout seconds are aborted.
        """
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
