"""One WebSocket connection: JSON messages to the login steps, the rooms and
the commands (docs/web.md).

WebConnection is the twisted.web.websocket protocol of one page, and the
core's IClient for its user: events come back rendered by
chatd.web.wire.WEB as whole WebSocket frames, which it writes through an
Outbox (chatd.line.outbox) straight to the TCP transport under the
WebSocket, so the fan-out's shared bytes reach every page unchanged.
Login is the line protocol's (chatd.line.login.Login) and the `/`
commands are its Commands: both write line-protocol replies (`! error`,
`* notice`, `? password`), which reply() turns into JSON objects, so the
page never parses line text.  Admission (the core's Gate), the flood
limit, the send queue, keepalive and the longest line are as for every
other front end.
"""

from __future__ import annotations

import json

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from chatd.config import Limits
from chatd.core.errors import RoomError
from chatd.core.limits import Recent, TokenBucket
from chatd.core.room import IClient, Room, User
from chatd.core.server import Server
from chatd.core.stats import Stats
from chatd.line.codec import error
from chatd.line.login import Login
from chatd.line.outbox import Outbox
from chatd.sockets import tune_client
from chatd.web import wire
from chatd.web.messages import HANDLERS, Messages

log = Logger()

CLOSE_GRACE = 10.0
# Bytes of one message still coming in (wsproto and Twisted keep a message
# whole until its last fragment, with no limit) past which the connection
# is closed: several times the longest message, which is refused whole.
PENDING_FACTOR = 4
CHUNK = 4096  # bytes of a read parsed at a time (see _received)


@implementer(IClient)
class WebConnection:
    """One page's WebSocket (twisted.web.websocket.WebSocketProtocol)."""

    wire = wire.WEB  # IClient: how the core's events look on this connection

    asked = None  # a callback for the next password (/register)
    _held: list[str] | None = None  # messages read while holding
    _holds = 0
    _abort_timer = None
    _refused: Recent | None = None

    def __init__(self, factory, host: str, channel=None):
        self.factory = factory
        self.host = host
        self.user: User | None = None
        self.here: Room | None = None  # the room of the `say` being run (CommandContext)
        self._channel = channel  # the HTTP channel the WebSocket took over
        self._logout = None
        self.login: Login | None = None  # from admission until in the landing room
        self.messages = Messages(self)
        self._closing = False
        self._counted = False
        self._login_timer = None
        self._flood: TokenBucket | None = None
        self._pending = 0  # bytes read since the last whole message
        self.ws = None  # the WebSocketTransport
        self.transport = None  # the TCP (or TLS) transport under it
        self.outbox: Outbox | None = None

    # -- what login and commands read (LoginContext, CommandContext) ---

    @property
    def server(self) -> Server:
        return self.factory.server

    @property
    def stats(self) -> Stats:
        return self.factory.server.stats

    @property
    def limits(self) -> Limits:
        return self.factory.gate.limits

    @property
    def clock(self) -> IReactorTime:
        return self.factory.clock

    @property
    def registrar(self):
        return self.factory.registrar

    @property
    def member(self) -> User | None:
        return self.user if self.login is None else None

    @property
    def closing(self) -> bool:
        return self._closing

    # -- IClient ------------------------------------------------------

    def deliver(self, data: bytes) -> None:
        self.outbox.write(data)

    def disconnect(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.outbox.close()
        # A close frame of our own: wsproto's would raise if the page's
        # close frame came first.
        self.outbox.write(wire.CLOSE)
        self.transport.unregisterProducer()
        self.transport.loseConnection()
        self._abort_timer = self.clock.callLater(CLOSE_GRACE, self.transport.abortConnection)

    def removed(self, room: Room) -> None:
        """IClient: an IRC admin's KICK took the user out of room (the page
        saw `kicked`); in no room at all, they go back to the landing room."""
        user = self.user
        if user is None or self._closing or user.rooms:
            return
        d = self.server.enter(user, login=False)
        self.hold_until(d)

    # -- WebSocketProtocol ----------------------------------------------

    def negotiationStarted(self, ws) -> None:
        self.ws = ws
        self.transport = ws.transport  # public on Twisted's WebSocket wire protocol

    def negotiationFinished(self) -> None:
        """The handshake is answered: admit the page, then ask its name."""
        factory, limits = self.factory, self.factory.gate.limits
        if self._channel is not None:
            self._channel.setTimeout(None)  # the HTTP request timeout no longer applies
            read = self._channel.dataReceived
            self._channel.dataReceived = lambda data: self._received(data, read)
            self.transport.unregisterProducer()  # the channel's: the outbox is now
        self.outbox = Outbox(self.transport, limits, self._send_queue_exceeded)
        self.transport.registerProducer(self.outbox, self.outbox.streaming)
        # The handshake's answer may still wait in the transport's buffer:
        # queue behind it until the transport says it is empty (resumeProducing).
        self.outbox.stopProducing()
        tune_client(self.transport, limits)
        refusal = factory.admit(self)
        if refusal is not None:
            log.info("refused a page from {host}: {why}", host=self.host, why=refusal)
            self.close(error(refusal))
            return
        self._counted = True
        self.login = Login(self, factory.gate.failures, factory.portal)
        self._flood = factory.gate.flood_bucket()
        self._login_timer = self.clock.callLater(limits.login_timeout, self._login_timed_out)
        self.send(wire.reply("username", room=self.server.landing.name))

    def _received(self, data: bytes, read) -> None:
        """Bytes from the page, before the WebSocket parses them: a message
        that never ends is not buffered without bound.

        The read is parsed in pieces of CHUNK bytes; each whole message
        resets the count, so it is (within a piece) the bytes of the message
        still arriving, not of everything one read brought (a page sending
        many small messages fast is not "too big")."""
        limit = PENDING_FACTOR * self.factory.gate.limits.max_line + 4096
        for start in range(0, len(data), CHUNK):
            if self._closing:
                return
            piece = data[start:start + CHUNK]
            self._pending += len(piece)
            if self._pending > limit:
                log.info("endless message from {host}: closed", host=self.host)
                self.stats.refused("message too big")
                self.close(error("message too big"))
                return
            read(piece)

    def pongReceived(self, payload: bytes) -> None:
        pass

    def bytesMessageReceived(self, data) -> None:
        self._pending = 0
        if not self._closing and self._allowed():
            self.send(wire.reply("error", text="send JSON text messages"))

    def textMessageReceived(self, text: str) -> None:
        self._pending = 0
        self.stats.lines_received += 1
        if self._held is not None:
            self._held.append(text)
            return
        if self._closing:
            return
        max_line = self.factory.gate.limits.max_line
        if len(text) > max_line and len(text.encode("utf-8", "surrogatepass")) > max_line:
            if self._allowed():
                self.send(wire.reply(
                    "error", text=f"line too long (max {max_line} bytes): dropped"))
            return
        if not self._allowed():
            return
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):  # [[[[...]]]] nested past the stack
            self.send(wire.reply("error", text="invalid JSON: message dropped"))
            return
        kind = message.get("type") if isinstance(message, dict) else None
        handler = HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            self.send(wire.reply("error", text="unknown message type"))
            return
        try:
            handler(self.messages, message)
        except RoomError as e:
            self.reply(error(str(e)))
        except Exception:  # contained to this page, never the WebSocket's reader
            log.failure("{kind} from {host} failed", kind=kind, host=self.host)
            self.reply(error("internal error, sorry"))

    def connectionLost(self, reason) -> None:
        self._closing = True
        if self.outbox is not None:
            self.outbox.close()
        for call in (self._login_timer, self._abort_timer):
            if call is not None and call.active():
                call.cancel()
        logout = self._logout
        self._forget_user()
        if logout is not None:
            logout()
        if self._counted:
            self._counted = False
            self.factory.release(self)

    # -- limits -------------------------------------------------------

    def _allowed(self) -> bool:
        """Charge one message to the flood limit (as chatd.line.protocol does)."""
        if self._flood is None:
            self._flood = self.factory.gate.flood_bucket()
        if self._flood.take():
            return True
        limits = self.factory.gate.limits
        if self._refused is None:
            self._refused = Recent(self.clock)
        stats = self.stats
        if self._refused.add(limits.flood_kick, limits.flood_kick_window) <= limits.flood_kick:
            stats.flood_refusals += 1
            self.send(wire.reply("error", text="slow down"))
        elif self.user is not None:
            log.info("{name} kicked for flooding from {host}", name=self.user.name,
                     host=self.host)
            stats.flood_kicks += 1
            user = self._forget_user()
            self.server.moderation.server_kick(user, "flooding")
        else:
            stats.flood_kicks += 1
            self.refuse("flood", error("you were kicked by server: flooding"))
        return False

    def _login_timed_out(self) -> None:
        self._login_timer = None
        if self.user is None and not self._closing:
            self.refuse("login timeout", error("login timed out"))

    def _send_queue_exceeded(self) -> None:
        log.info("send queue exceeded for {name} from {host}",
                 name=self.user.name if self.user else None, host=self.host)
        self.stats.sendq_disconnects += 1
        user = self._forget_user()
        self._closing = True
        self.transport.abortConnection()
        if user is not None:
            self.server.moderation.server_leave(user, "send queue exceeded", count_as="sendq")

    def _forget_user(self) -> User | None:
        user, self.user, self.here, self._logout = self.user, None, None, None
        return user

    # -- writing ------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Frames to this page alone, in order with what its rooms sent."""
        if self.user is not None:
            for room in self.user.rooms:
                room.settle(self.user)
        self.stats.bytes_sent += len(data)
        self.outbox.write(data)

    def reply(self, *lines: str) -> None:
        """Replies written as line-protocol lines, sent as JSON objects."""
        self.send(b"".join(wire.from_line(line) for line in lines))

    def close(self, *lines: str) -> None:
        if lines:
            self.reply(*lines)
        self.disconnect()

    def refuse(self, cause: str, *lines: str) -> None:
        self.stats.refused(cause)
        self.close(*lines)

    def say_goodbye(self, text: str) -> None:
        if not self._closing:
            self.send(wire.reply("notice", room="", text=text))
            self.disconnect()

    def hold_until(self, done: defer.Deferred) -> None:
        """Read no further message until done (and every other hold) has fired."""
        self._holds += 1
        if self._held is None:
            self._held = []
            self.transport.pauseProducing()
        done.addBoth(lambda _: self._release())

    def _release(self) -> None:
        self._holds -= 1
        if self._holds:
            return
        held, self._held = self._held or [], None
        if self._closing:
            return
        self.transport.resumeProducing()
        for text in held:
            self.textMessageReceived(text)

    def ask(self, then) -> None:
        """The next `password` message goes to then (/register)."""
        self.asked = then

    # -- login ----------------------------------------------------------

    def logged_in(self, user: User, logout) -> None:
        self.user, self._logout = user, logout
        if self._login_timer is not None and self._login_timer.active():
            self._login_timer.cancel()
        self._login_timer = None

    def entered(self, room: Room) -> None:
        """In the landing room: the login is over; messages have their own bucket."""
        if self.login is not None:
            self.login = None
            self._flood = None

    def leave_room(self, reason: str) -> None:
        """/quit (CommandContext)."""
        user = self._forget_user()
        if user is not None:
            self.server.logout(user, reason, count_as="quit")
