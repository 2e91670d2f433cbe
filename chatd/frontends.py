"""What every front end's factory does with its connections, once.

Each front end (chatd.line, chatd.irc, chatd.web) admits its connections
through the core's shared Gate, keeps the set of those open (to tell them
of a reload and to close them at shutdown) and, at shutdown, says goodbye
its own way and aborts whoever has not gone within a timeout.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet import defer

from chatd.core.gate import Gate


class Connections:
    """The open connections of one front end, admitted through the gate."""

    def __init__(self, gate: Gate, clock):
        self.gate = gate
        self.clock = clock
        self.open: set = set()
        self._all_closed: list[defer.Deferred] = []

    def admit(self, conn) -> str | None:
        """Count conn in (its .host against the gate), or say why it is refused."""
        refusal = self.gate.admit(conn.host)
        if refusal is None:
            self.open.add(conn)
        return refusal

    def release(self, conn) -> None:
        """conn has closed: its place in the gate is free."""
        self.open.discard(conn)
        self.gate.release(conn.host)
        if not self.open:
            waiting, self._all_closed = self._all_closed, []
            for d in waiting:
                d.callback(None)

    def close_all(self, goodbye: Callable[[object], None],
                  timeout: float = 5.0) -> defer.Deferred:
        """goodbye(conn) each connection; fires once all are closed, aborting
        those still open after timeout seconds."""
        for conn in list(self.open):
            goodbye(conn)
        if not self.open:
            return defer.succeed(None)
        d = defer.Deferred()
        self._all_closed.append(d)
        call = self.clock.callLater(timeout, lambda: [
            c.transport.abortConnection() for c in list(self.open)])
        d.addBoth(lambda r: (call.cancel() if call.active() else None, r)[1])
        return d
