"""The IRC front end's factory: its connections, their shared wire formats, shutdown.

The server, gate and portal are the core's, shared with the line protocol.
IRC clients that negotiated the same capabilities share one IrcFormat, so
a room renders each turn once for all of them.
"""

from __future__ import annotations

import socket

from twisted.cred.portal import Portal
from twisted.internet import defer
from twisted.internet.protocol import ServerFactory

from chatd.core.gate import Gate
from chatd.core.server import Server
from chatd.irc.protocol import IrcConnection
from chatd.irc.wire import IrcFormat


class IrcFactory(ServerFactory):
    protocol = IrcConnection
    noisy = False

    def __init__(self, server: Server, portal: Portal, gate: Gate, clock=None,
                 server_name: str | None = None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.server = server
        self.portal = portal
        self.gate = gate
        self.clock = clock
        self.server_name = server_name or socket.gethostname() or "chatd"
        self.connections: set[IrcConnection] = set()
        self._formats: dict[tuple[bool, bool], IrcFormat] = {}
        self._all_closed: list[defer.Deferred] = []

    @property
    def limits(self):
        return self.gate.limits

    def format_for(self, caps: set[str]) -> IrcFormat:
        """The one IrcFormat for clients with these capabilities."""
        times = "server-time" in caps
        # Only these change the bytes (message-tags alone adds no tag yet), so
        # clients that differ in nothing else share one format, rendered once.
        key = (times, times and "batch" in caps)
        fmt = self._formats.get(key)
        if fmt is None:
            fmt = self._formats[key] = IrcFormat(self.server_name, times=times,
                                                 history=key[1])
        return fmt

    def admit(self, conn: IrcConnection) -> str | None:
        refusal = self.gate.admit(conn.host)
        if refusal is None:
            self.connections.add(conn)
        return refusal

    def release(self, conn: IrcConnection) -> None:
        self.connections.discard(conn)
        self.gate.release(conn.host)
        if not self.connections:
            waiting, self._all_closed = self._all_closed, []
            for d in waiting:
                d.callback(None)

    def limits_changed(self) -> None:
        """Limits changed in place: IRC connections read them at each use."""

    def shutdown(self, timeout: float = 5.0) -> defer.Deferred:
        for conn in list(self.connections):
            conn.error("server shutting down")
        if not self.connections:
            return defer.succeed(None)
        d = defer.Deferred()
        self._all_closed.append(d)
        call = self.clock.callLater(timeout, lambda: [
            c.transport.abortConnection() for c in list(self.connections)])
        d.addBoth(lambda r: (call.cancel() if call.active() else None, r)[1])
        return d
