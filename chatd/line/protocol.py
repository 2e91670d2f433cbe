"""The line protocol: bytes to lines, each line to the login steps, the room or a command.

ChatProtocol is a thin adapter between a socket and the core.  It frames
lines (accepting LF, CRLF or a lone CR, never buffering more than one
maximal line), hands each line before login to its chatd.line.login.Login,
then each line in a room to the server (chatd.core.server), or to
chatd.line.commands.Commands for "/" lines; it is their LoginContext and
CommandContext.  It is the core's IClient for its user: events come back
rendered by chatd.line.codec.LINE.  The line protocol shows one room at a
time (`here`), though the core would allow several.  Every refusal is one
"! " line; the connection stays open unless the contract says otherwise
(docs/protocol.md).  What it writes goes through its Outbox
(chatd.line.outbox); what all connections share is the ChatFactory
(chatd.line.factory), and through it the core's Gate.
"""

from __future__ import annotations

import re

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from chatd.config import Limits
from chatd.core.errors import RoomError
from chatd.core.limits import IdleTimer, Recent, TokenBucket
from chatd.core.room import IClient, Room, User
from chatd.core.server import Server
from chatd.core.stats import Stats
from chatd.core.text import clean
from chatd.line import kicked
from chatd.line.codec import LINE, encode, error, notice, prompt
from chatd.line.commands import Commands
from chatd.line.login import Login, LoginState
from chatd.line.outbox import Outbox
from chatd.sockets import peer_host, tune_client

log = Logger()

_EOL = re.compile(rb"\r\n|\r|\n")
# Seconds a closing connection has to take what was queued for it.
CLOSE_GRACE = 10.0


@implementer(IClient)
class ChatProtocol(LineReceiver):
    """One connection.  Everything it writes goes through self.outbox, in
    order: the fan-out hot path, and the producer registered with the
    transport."""

    delimiter = b"\r\n"
    wire = LINE  # IClient: how the core's events look on this connection
    removed = kicked.removed  # IClient: an admin's KICK took the user out of a room

    # Rarely set: class defaults until a connection needs its own (an idle
    # logged-in client should stay small; make bench, memory).
    _ask = None  # a callback for the next line (/register's passwords)
    _held: list[bytes] | None = None  # lines read while holding
    _holds = 0  # hold_until's Deferreds not yet fired
    _abort_timer = None
    _refused: Recent | None = None  # refused lines, once over the flood limit

    def __init__(self):
        self.user: User | None = None  # once logged in
        self.here: Room | None = None  # the room this user is shown
        self._logout = None  # the cred logout, once logged in
        self._login: Login | None = None  # from admission until in the room
        self._buffer = b""
        self._discarding = False
        self._skip_lf = False
        self._closing = False
        self.outbox: Outbox | None = None  # once connected
        self._counted = False  # this connection counts against the limits
        self._login_timer = None
        self._idle: IdleTimer | None = None  # once logged in
        self._flood: TokenBucket | None = None
        self.host = ""

    # -- IClient ------------------------------------------------------

    def deliver(self, data: bytes) -> None:
        self.outbox.write(data)

    def disconnect(self) -> None:
        """Close after what is queued is written, or abort if that never happens."""
        if self._closing:
            return
        self._closing = True
        self.outbox.close()
        # With a producer registered, loseConnection would wait for it.
        self.transport.unregisterProducer()
        self.transport.loseConnection()
        # A peer that stops reading would hold the connection open forever.
        self._abort_timer = self.clock.callLater(CLOSE_GRACE, self.transport.abortConnection)

    # -- connection ---------------------------------------------------

    @property
    def server(self) -> Server:
        return self.factory.server

    @property
    def registrar(self):
        """How /register stores a name (CommandContext): the factory's."""
        return self.factory.registrar

    @property
    def member(self) -> User | None:
        """The logged-in user while they are in a room (CommandContext)."""
        return self.user if self.here is not None else None

    @property
    def stats(self) -> Stats:
        return self.factory.stats

    @property
    def limits(self) -> Limits:
        return self.factory.limits

    @property
    def clock(self) -> IReactorTime:
        return self.factory.clock

    @property
    def buffered(self) -> int:
        """Bytes of a line still waiting for its end (never over max_line)."""
        return len(self._buffer)

    @property
    def MAX_LENGTH(self) -> int:
        """limits.max_line, read at use so that a reload applies at once."""
        return self.factory.limits.max_line

    def connectionMade(self):
        limits = self.factory.limits
        self.outbox = Outbox(self.transport, limits, self._send_queue_exceeded)
        self.host = peer_host(self.transport)
        tune_client(self.transport, limits)
        self.transport.registerProducer(self.outbox, self.outbox.streaming)
        refusal = self.factory.admit(self)
        if refusal is not None:
            log.info("refused a connection from {host}: {why}", host=self.host, why=refusal)
            self.close(error(refusal))
            return
        self._counted = True
        self._login = Login(self, self.factory.gate.failures, self.factory.portal)
        self._flood = self.factory.gate.flood_bucket()
        self._login_timer = self.clock.callLater(limits.login_timeout, self._login_timed_out)
        self.reply(notice(f"welcome to {self.server.landing.name}"), prompt("username"))

    def _stop_login_timer(self) -> None:
        if self._login_timer is not None and self._login_timer.active():
            self._login_timer.cancel()
        self._login_timer = None

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
        self.transport.abortConnection()  # at once: memory first, the room after
        if user is not None:
            self.server.moderation.server_leave(user, "send queue exceeded", count_as="sendq")

    def _forget_user(self) -> User | None:
        """This connection is done with its user (who is, or is about to be,
        logged out by whoever called): the user, if there was one."""
        user, self.user, self.here, self._logout = self.user, None, None, None
        return user

    def connectionLost(self, reason):
        self._closing = True
        self.outbox.close()
        self._stop_login_timer()
        if self._abort_timer is not None and self._abort_timer.active():
            self._abort_timer.cancel()
        self._abort_timer = None
        if self._idle is not None:
            self._idle.stop()
        logout = self._logout
        self._forget_user()
        if logout is not None:
            logout()  # every room hears `* NAME left`
        if self._counted:
            self._counted = False
            self.factory.release(self)

    def reply(self, *lines: str) -> None:
        """Lines to this connection only, in order with what its rooms sent."""
        if self.user is not None:
            for room in self.user.rooms:
                room.settle(self.user)
        data = b"".join(encode(line) for line in lines)
        self.stats.lines_delivered += len(lines)
        self.stats.bytes_sent += len(data)
        self.outbox.write(data)

    def close(self, *lines: str) -> None:
        """Send lines, then close (CommandContext)."""
        if lines:
            self.reply(*lines)
        self.disconnect()

    @property
    def closing(self) -> bool:
        return self._closing

    def refuse(self, cause: str, *lines: str) -> None:
        """Close a connection that has not joined, counted under cause in /stats."""
        self.stats.refused(cause)
        self.close(*lines)

    def say_goodbye(self, line: str) -> None:
        """Send a last line and close, unless this connection is closing already."""
        if not self._closing:
            self.close(line)

    # -- framing ------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Split lines on LF, CRLF or CR; discard, never buffer, a too-long line."""
        if self._idle is not None:
            self._idle.heard()
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        parts = _EOL.split(data)
        self.factory.stats.lines_received += len(parts) - 1
        self._skip_lf = data.endswith(b"\r")
        for part in parts[:-1]:
            if self._closing:
                return
            if self._discarding:
                self._discarding = False
                continue
            line, self._buffer = self._buffer + part, b""
            if len(line) > self.MAX_LENGTH:
                self.lineLengthExceeded(line)
            else:
                self.lineReceived(line)
        tail = parts[-1]
        if self._discarding or self._closing:
            return
        if len(self._buffer) + len(tail) > self.MAX_LENGTH:
            self._buffer = b""
            self._discarding = True
            self.lineLengthExceeded(tail)
        else:
            self._buffer += tail

    def lineLengthExceeded(self, line: bytes) -> None:
        """Refuse the line, keep the connection (LineReceiver would drop it)."""
        if self._held is not None:
            self._held.append(None)  # answered in turn, after what is held
        elif not self._closing and self._allowed():
            self.reply(error(f"line too long (max {self.MAX_LENGTH} bytes): dropped"))

    def _allowed(self) -> bool:
        """Charge one line to the flood limit; False if it is over.

        Every non-blank line counts, before login too and whether or not it
        is valid, so no kind of line can make the server answer faster than
        the limit.  Too many refusals and the server closes the connection.
        """
        flood = self._flood
        if flood is None:
            if self.outbox is None:  # not even connected: nothing to limit
                return True
            # Made at the first line in the room: an idle user stays small.
            flood = self._flood = self.factory.gate.flood_bucket()
        if flood.take():
            return True
        limits = self.factory.limits
        if self._refused is None:  # most people never flood: no history until then
            self._refused = Recent(self.clock)
        stats = self.stats
        if self._refused.add(limits.flood_kick, limits.flood_kick_window) <= limits.flood_kick:
            stats.flood_refusals += 1
            self.reply(error("slow down"))
        elif self.user is not None:
            log.info("{name} kicked for flooding from {host}", name=self.user.name,
                     host=self.host)
            stats.flood_kicks += 1
            user = self._forget_user()
            self.server.moderation.server_kick(user, "flooding")
        else:
            log.info("flooding connection from {host} closed", host=self.host)
            stats.flood_kicks += 1
            self.refuse("flood", error("you were kicked by server: flooding"))
        return False

    def lineReceived(self, raw: bytes | None) -> None:
        if self._held is not None:
            self._held.append(raw)
            return
        if self._closing:
            return
        if raw is None:
            self.lineLengthExceeded(b"")
            return
        login = self._login
        if not raw.strip() and (login is None or login.state is not LoginState.PASSWORD):
            return  # a blank line is ignored, but is a (wrong) password
        if not self._allowed():
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.reply(error("invalid UTF-8: line dropped"))
            return
        if login is not None:
            login.line(text)
        else:
            self._on_chat(text)

    def hold_until(self, done: defer.Deferred) -> None:
        """Stop reading; keep further lines, in order, until done and every
        other hold have fired (a password check, a command that writes to
        disk, a KICK's move to the landing room).  Login- and CommandContext."""
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
        for raw in held:
            self.lineReceived(raw)

    # -- in the room --------------------------------------------------

    def logged_in(self, user: User, logout) -> None:
        """The portal gave this connection its user (LoginContext); the
        landing room comes next (enter_room)."""
        self.user, self._logout = user, logout
        self._stop_login_timer()

    def entered(self, room: Room) -> None:
        """The user is in room, shown here from now on (Login- and CommandContext)."""
        if self._login is not None:
            self._login = None
            # Login lines had their own bucket; the room starts with a full
            # one, made at the first line (_allowed).
            self._flood = None
            self._watch_idle()
        self.here = room
        for other in self.user.rooms:  # shown one room: a KICK's move may have crossed a /join
            if other is not room:
                self.server.part(self.user, other, cause=f"joined {room.name}")

    def _watch_idle(self) -> None:
        """With idle_timeout on, time this user's silence (made only then:
        most servers leave it off, and an idle client should stay small)."""
        if self._idle is None and self.factory.limits.idle_timeout > 0:
            self._idle = IdleTimer(self.clock, self.factory.limits,
                                   self.disconnect_idle)
        if self._idle is not None:
            self._idle.restart()

    def limits_changed(self) -> None:
        """The shared limits were changed in place (a reload): re-time what
        does not read them at each use."""
        if self.here is not None and not self._closing:
            self._watch_idle()

    def disconnect_idle(self) -> None:
        """The server disconnects a user who sent nothing for idle_timeout
        seconds: the one place it does, for whatever must know of it."""
        if self.user is None or self._closing:
            return
        self.reply(error("idle timeout"))
        user = self._forget_user()
        # Journaled, then announced to the rooms.
        self.server.moderation.server_leave(user, "idle timeout", count_as="idle")
        self.disconnect()

    def ask(self, then) -> None:
        """Hand the next line, whatever it is, to then(text) (CommandContext:
        /register's passwords, never shown to anyone)."""
        self._ask = then

    def _on_chat(self, text: str) -> None:
        if self._ask is not None:
            then, self._ask = self._ask, None
            then(text)
            return
        if self.here is None:
            return  # between rooms: lines wait in hold_until
        text = clean(text)
        if not text.strip():
            return
        if text.startswith("/") and not text.startswith("//"):
            Commands(self).run(text[1:])
            return
        try:
            self.server.say(self.user, self.here, text[1:] if text.startswith("//") else text)
        except RoomError as e:
            self.reply(error(str(e)))

    def leave_room(self, reason: str) -> None:
        """The user leaves by their own choice (/quit; CommandContext)."""
        user = self._forget_user()
        self.server.logout(user, reason, count_as="quit")
