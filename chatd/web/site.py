"""The web front end's HTTP side: the page, its static files and the
WebSocket at /ws, on one twisted.web Site; and WebFactory, what all pages share.

Every response carries a strict Content-Security-Policy (the page runs
only its own script and talks only to its own origin), nosniff and
no-referrer.  The WebSocket handshake is refused with 403 unless its
Origin is the page's own (the scheme and the Host the browser sent, so
the page works by whatever name or address it was opened) or one of
`[web] origins`: another site cannot drive a visitor's session.
"""

from __future__ import annotations

import re
from pathlib import Path

from twisted.cred.portal import Portal
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import pages, static
from twisted.web import server as web
from twisted.web.websocket import WebSocketResource

from chatd.core.gate import Gate
from chatd.core.server import Server
from chatd.frontends import Connections
from chatd.sockets import peer_host
from chatd.web.connection import WebConnection

log = Logger()

STATIC = Path(__file__).parent / "static"
# What a Host header may be to be written back into a header.
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def own_origin(request: web.Request) -> str | None:
    """The page's origin as its browser sees it: scheme and Host header."""
    host = (request.getHeader("host") or "").strip()
    if not _HOST.fullmatch(host):
        return None
    return ("https://" if request.isSecure() else "http://") + host.lower()


def security_headers(request: web.Request) -> list[tuple[str, str]]:
    """The headers every response carries."""
    origin = own_origin(request)
    connect = "'self'"
    if origin is not None:  # some browsers do not count ws: as 'self'
        connect += " " + origin.replace("http", "ws", 1)
    csp = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
           f"connect-src {connect}; base-uri 'none'; form-action 'none'; "
           "frame-ancestors 'none'")
    return [("Content-Security-Policy", csp), ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer")]


class _Request(web.Request):
    def process(self) -> None:
        for name, value in security_headers(self):
            self.setHeader(name, value)
        super().process()


class _Static(static.File):
    """The page's files; no directory listings."""

    def directoryListing(self):
        return pages.forbidden()


class _Socket(WebSocketResource):
    """/ws: the WebSocket, for pages of an allowed origin only."""

    def render_GET(self, request: web.Request):
        origin = (request.getHeader("origin") or "").lower()
        if not origin or origin not in self.factory.allowed_origins(request):
            log.info("WebSocket from {host} refused: origin {origin!r}",
                     host=peer_host(request.channel.transport), origin=origin)
            self.factory.server.stats.refused("origin")
            request.setResponseCode(403)
            request.setHeader("content-type", "text/plain; charset=utf-8")
            return b"origin not allowed\n"
        return super().render_GET(request)


class WebFactory:
    """What all WebSocket connections share; its `site` serves them."""

    def __init__(self, server: Server, portal: Portal, gate: Gate, clock=None,
                 origins: list[str] | tuple[str, ...] = (), registrar=None,
                 static_dir: Path = STATIC):
        if clock is None:
            from twisted.internet import reactor as clock
        self.server = server
        self.portal = portal
        self.gate = gate
        self.clock = clock
        self.registrar = registrar
        self.origins = frozenset(origin.lower().rstrip("/") for origin in origins)
        self._live = Connections(gate, clock)
        self.connections: set[WebConnection] = self._live.open
        root = _Static(str(static_dir))
        root.putChild(b"static", _Static(str(static_dir)))  # the page asks /static/...
        root.putChild(b"ws", _Socket(self))
        self.site = _site(root)

    @property
    def limits(self):
        return self.gate.limits

    def allowed_origins(self, request: web.Request) -> frozenset[str]:
        own = own_origin(request)
        return self.origins | {own} if own else self.origins

    def buildProtocol(self, request: web.Request) -> WebConnection:
        """A connection for a handshake that passed the origin check."""
        return WebConnection(self, peer_host(request.channel.transport), request.channel)

    def admit(self, conn: WebConnection) -> str | None:
        """Count a new connection in (through the gate), or say why it is refused."""
        return self._live.admit(conn)

    def release(self, conn: WebConnection) -> None:
        self._live.release(conn)

    def limits_changed(self) -> None:
        """Limits changed in place: web connections read them at each use."""

    def shutdown(self, timeout: float = 5.0) -> defer.Deferred:
        """Tell everyone, close every connection; fires once all are closed
        (those not gone within timeout seconds are aborted)."""
        return self._live.close_all(
            lambda conn: conn.say_goodbye("server shutting down"), timeout)


def _site(root) -> web.Site:
    site = web.Site(root, requestFactory=_Request)
    site.displayTracebacks = False
    site.noisy = False
    return site
