"""One IRC connection: framing, registration (CAP, PASS, SASL PLAIN, NICK,
USER), login through the core's portal, then each command to
chatd.irc.commands.

It is the core's IClient for its user: its `wire` is the IrcFormat for
the capabilities it negotiated, so room events reach it as IRC lines
shared with every IRC client of the same capabilities.  Admission, flood
limits, the send queue and keepalive are the same as the line protocol's
(the core's Gate, chatd.line.outbox.Outbox, chatd.sockets).
"""

from __future__ import annotations

from collections import deque

from twisted.internet import defer
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.words.protocols import irc
from zope.interface import implementer

from chatd.core.room import IClient, User
from chatd.core.text import plain
from chatd.irc.commands import Commands
from chatd.irc.registration import Registration
from chatd.irc.wire import split_text
from chatd.line.outbox import Outbox
from chatd.sockets import peer_host, tune_client

log = Logger()

MAX_TAGS = 8191  # bytes of client tags (IRCv3 message-tags)
MAX_MESSAGE = 510  # the message itself, CRLF aside
CLOSE_GRACE = 10.0


@implementer(IClient)
class IrcConnection(LineReceiver):
    delimiter = b"\n"
    MAX_LENGTH = MAX_TAGS + 2 + MAX_MESSAGE + 2

    def __init__(self):
        self.user: User | None = None
        self.nick = "*"
        self.caps: set[str] = set()
        self.wire = None  # the IrcFormat for self.caps, once registered
        self.away: str | None = None
        self.outbox: Outbox | None = None
        self.host = ""
        self.registration = Registration(self)
        self._closing = False
        self._counted = False
        self._flood = None
        self._login_timer = None
        self._abort_timer = None
        self._held: list | None = None
        self._lag: deque[bytes] = deque()  # lines over the flood limit, waiting
        self._lag_timer = None
        self._ping_timer = None  # keepalive, once registered
        self._last_input = 0.0
        self._pinged: float | None = None  # when the keepalive PING went
        self._skipping = False  # the rest of an over-long line is still coming
        self._partial = b""  # a line still waiting for its end (never over MAX_LENGTH)
        self._logout = None
        self.commands: Commands | None = None

    # -- what every part reads ----------------------------------------

    @property
    def server(self):
        return self.factory.server

    @property
    def server_name(self) -> str:
        return self.factory.server_name

    @property
    def stats(self):
        return self.factory.server.stats

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
        self.transport.unregisterProducer()
        self.transport.loseConnection()
        self._abort_timer = self.factory.clock.callLater(CLOSE_GRACE,
                                                         self.transport.abortConnection)

    def removed(self, room) -> None:
        """IClient: the core took the user out of room; the KICK line it sent
        told the client, which leaves the channel by itself."""

    # -- connection ---------------------------------------------------

    def connectionMade(self):
        factory = self.factory
        limits = factory.gate.limits
        self.outbox = Outbox(self.transport, limits, self._send_queue_exceeded)
        self.host = peer_host(self.transport)
        tune_client(self.transport, limits)
        self.transport.registerProducer(self.outbox, self.outbox.streaming)
        refusal = factory.admit(self)
        if refusal is not None:
            self.error(refusal)
            return
        self._counted = True
        self._flood = factory.gate.flood_bucket()
        self._login_timer = factory.clock.callLater(limits.login_timeout, self._timed_out)

    def _timed_out(self) -> None:
        self._login_timer = None
        if self.user is None and not self._closing:
            self.stats.refused("login timeout")
            self.error("login timed out")

    def _send_queue_exceeded(self) -> None:
        self.stats.sendq_disconnects += 1
        user = self._forget_user()
        self._closing = True
        self.transport.abortConnection()
        if user is not None:
            self.server.moderation.server_leave(user, "send queue exceeded", count_as="sendq")

    def _forget_user(self) -> User | None:
        user, self.user, self._logout = self.user, None, None
        return user

    def connectionLost(self, reason):
        self._closing = True
        if self.outbox is not None:
            self.outbox.close()
        self._lag.clear()
        for call in (self._login_timer, self._abort_timer, self._lag_timer, self._ping_timer):
            if call is not None and call.active():
                call.cancel()
        logout = self._logout
        self._forget_user()
        if logout is not None:
            logout()
        if self._counted:
            self._counted = False
            self.factory.release(self)

    # -- writing ------------------------------------------------------

    def send(self, *lines: str) -> None:
        """Lines to this client alone, in order with what its rooms sent."""
        self.send_bytes(b"".join((line + "\r\n").encode("utf-8") for line in lines))

    def send_bytes(self, data: bytes) -> None:
        """Rendered lines to this client alone, in order with what its rooms sent."""
        if self.user is not None:
            for room in self.user.rooms:
                room.settle(self.user)
        self.stats.bytes_sent += len(data)
        self.outbox.write(data)

    def reply(self, numeric: str, *params: str) -> None:
        """`:server NUMERIC nick params...`; the last parameter is trailing."""
        *middle, last = params or ("",)
        head = " ".join([f":{self.server_name}", numeric, self.nick, *middle])
        prefix = f"{head} :".encode()
        self.send_bytes(b"".join(split_text(prefix, last)))

    def error(self, text: str) -> None:
        """ERROR and close (IRC's way of ending a connection)."""
        if not self._closing:
            self.send(f"ERROR :Closing Link: {self.host} ({text})")
            self.disconnect()

    # -- reading ------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        self._last_input = self.factory.clock.seconds()
        if self._skipping:  # the tail of an over-long line: dropped up to its end
            end = data.find(b"\n")
            if end < 0:
                return
            self._skipping = False
            data = data[end + 1:]
        # Split the whole read at once (LineReceiver copies the rest of the
        # buffer for every line: a tenth of the IRC input path in the bench).
        lines = data.split(b"\n")
        if self._partial:
            lines[0] = self._partial + lines[0]
        self._partial = lines.pop()
        for line in lines:
            if self._closing:
                return
            if len(line) > self.MAX_LENGTH:
                self._too_long()
            else:
                self.lineReceived(line)
        if len(self._partial) > self.MAX_LENGTH:
            self._partial, self._skipping = b"", True
            self._too_long()

    def lineReceived(self, raw: bytes) -> None:
        if self._held is not None:
            self._held.append(raw)
            return
        if self._closing:
            return
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            return
        if self._lag or not self._flood.take():
            self._delay(raw)
            return
        self._process(raw)

    def _delay(self, raw: bytes) -> None:
        """Over the flood limit: the line waits its turn, as IRC servers do
        (clients send bursts at connect and join), unless too many wait."""
        limits = self.factory.gate.limits
        if len(self._lag) >= limits.flood_kick:
            self._lag.clear()
            self.stats.flood_kicks += 1
            if self.user is not None:
                log.info("{name} kicked for flooding from {host}", name=self.user.name,
                         host=self.host)
                user = self._forget_user()
                self.server.moderation.server_kick(user, "flooding")
            else:
                self.stats.refused("flood")
                self.error("flooding")
            return
        self.stats.flood_refusals += 1
        self._lag.append(raw)
        if self._lag_timer is None:
            self.transport.pauseProducing()
            self._lag_timer = self.factory.clock.callLater(1 / limits.flood_rate, self._unlag)

    def _unlag(self) -> None:
        """The flood limit lets the waiting lines through, one token each."""
        self._lag_timer = None
        while (self._lag and self._held is None and not self._closing
               and self._flood.take()):
            self._process(self._lag.popleft())
        if self._closing or self._held is not None:
            return  # _release carries on
        if self._lag:
            self._lag_timer = self.factory.clock.callLater(
                1 / self.factory.gate.limits.flood_rate, self._unlag)
        else:
            self.transport.resumeProducing()

    def _process(self, raw: bytes) -> None:
        self.stats.lines_received += 1
        if raw.startswith(b"@"):
            tags, _, raw = raw.partition(b" ")
            if len(tags) - 1 > MAX_TAGS:
                self.reply("417", "Input line was too long")
                return
            raw = raw.lstrip(b" ")
        if len(raw) > MAX_MESSAGE:
            self.reply("417", "Input line was too long")
            return
        text = raw.decode("utf-8", "replace")
        try:
            prefix, command, params = irc.parsemsg(text)
        except (irc.IRCBadMessage, ValueError, IndexError):
            return
        self.handle(command.upper(), params)

    def _too_long(self) -> None:
        """An over-long line is dropped whole (nothing after it is lost), with
        417; LineReceiver would have closed the connection."""
        if not self._closing:
            self.reply("417", "Input line was too long")

    def hold_until(self, done: defer.Deferred) -> None:
        self._held = []
        self.transport.pauseProducing()
        done.addBoth(lambda _: self._release())

    def _release(self) -> None:
        held, self._held = self._held or [], None
        if self._closing:
            return
        for raw in held:
            self.lineReceived(raw)
        if self._lag:
            if self._lag_timer is None:
                self._unlag()
        elif self._held is None:
            self.transport.resumeProducing()

    def handle(self, command: str, params: list[str]) -> None:
        if command in ("PING", "PONG", "QUIT"):
            getattr(self, "irc_" + command)(params)
            return
        if command == "CAP":
            self.registration.irc_CAP(params)
            return
        if self.user is None:
            if command in ("PASS", "NICK", "USER", "AUTHENTICATE"):
                getattr(self.registration, "irc_" + command)(params)
            else:
                self.reply(irc.ERR_NOTREGISTERED, "You have not registered")
            return
        if command == "NICK":
            self.registration.irc_NICK(params)
            return
        if command in ("PASS", "USER"):
            self.reply(irc.ERR_ALREADYREGISTRED, "You may not reregister")
            return
        if command == "AUTHENTICATE":
            self.reply("907", "You have already authenticated")
            return
        self.commands.run(command, params)

    # -- registration -------------------------------------------------

    def logged_in(self, user: User, logout) -> None:
        """The portal gave this connection its user: welcome them (Registration)."""
        if self._closing:
            logout()
            return
        self.user, self._logout = user, logout
        self.nick = user.name
        if self._login_timer is not None and self._login_timer.active():
            self._login_timer.cancel()
        self._login_timer = None
        self.wire = self.factory.format_for(self.caps)
        self._flood = self.factory.gate.flood_bucket()
        self.commands = Commands(self)
        self.commands.welcome()
        idle = self.factory.gate.limits.keepalive_idle
        self._ping_timer = self.factory.clock.callLater(idle, self._keepalive)

    def _keepalive(self) -> None:
        """keepalive_idle seconds without a byte from the client: PING it;
        as long again without an answer (or anything): ERROR and close."""
        clock, idle = self.factory.clock, self.factory.gate.limits.keepalive_idle
        now = clock.seconds()
        self._ping_timer = None
        if self._closing:
            return
        if self._pinged is not None and self._last_input < self._pinged:
            user = self._forget_user()
            self.error(f"Ping timeout: {idle} seconds")
            if user is not None:
                self.server.logout(user, cause="ping timeout", count_as="ping timeout")
            return
        quiet = now - self._last_input
        if quiet < idle:
            self._pinged = None
            self._ping_timer = clock.callLater(idle - quiet, self._keepalive)
            return
        self._pinged = now
        self.send(f"PING :{self.server_name}")
        self._ping_timer = clock.callLater(idle, self._keepalive)

    def wire_changed(self) -> None:
        """Capabilities changed after registration: rooms must see the new format."""
        user = self.user
        rooms = user.rooms
        for room in rooms:
            room.discard(user)
        self.wire = self.factory.format_for(self.caps)
        for room in rooms:
            room.add(user)

    # -- always ---------------------------------------------------------

    def irc_PING(self, params: list[str]) -> None:
        token = params[-1] if params else self.server_name
        self.send(f":{self.server_name} PONG {self.server_name} :{token}")

    def irc_PONG(self, params: list[str]) -> None:
        pass  # the keepalive's answer: reading it was the point

    def irc_QUIT(self, params: list[str]) -> None:
        reason = plain(params[0]) if params else ""
        user = self._forget_user()
        if user is not None:
            self.server.logout(user, reason, count_as="quit")
        self.error(f"Quit: {reason}" if reason else "Quit")

