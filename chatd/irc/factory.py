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
from chatd.frontends import Connections
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
        self._live = Connections(gate, clock)
        self.connections: set[IrcConnection] = self._live.open
        self._formats: dict[tuple[bool, bool], IrcFormat] = {}

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
        """Count a new connection in (through the gate), or say why it is refused."""
        return self._live.admit(conn)

    def release(self, conn: IrcConnection) -> None:
        self._live.release(conn)

    def limits_changed(self) -> None:
        """Limits changed in place: IRC connections read them at each use."""

    def shutdown(self, timeout: float = 5.0) -> defer.Deferred:
        """Tell everyone, close every connection; fires once all are closed
        (those not gone within timeout seconds are aborted)."""
        return self._live.close_all(
            lambda conn: conn.error("server shutting down"), timeout)
