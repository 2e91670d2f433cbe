"""The line protocol: bytes to lines, and the login steps.

ChatProtocol is a thin adapter.  It frames lines (accepting LF, CRLF or a
lone CR, never buffering more than one maximal line), runs the login steps
(LoginState: username, then password for admins), and hands each line in the
room to the room, or to its chatd.commands.Commands for "/" lines (it is their
CommandContext).  Every refusal is one "! " line; the
connection stays open unless the contract says otherwise (docs/protocol.md).
What it writes goes through its Outbox (chatd.outbox); what all connections
share, and admission, is the ChatFactory (chatd.factory).
"""

from __future__ import annotations

import enum
import re

from twisted.cred import credentials
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from chatd.auth import IChatAdmin
from chatd.commands import Commands
from chatd.errors import Banned, RoomError
from chatd.limits import IdleTimer, Recent, TokenBucket
from chatd.outbox import Outbox
from chatd.room import IClient, Member, Room
from chatd.sockets import peer_host, tcp_socket, tune_client_socket
from chatd.stats import Stats
from chatd.text import clean, encode, error, notice, prompt

log = Logger()

_EOL = re.compile(rb"\r\n|\r|\n")
MAX_NAME_ATTEMPTS = 3
# Seconds a closing connection has to take what was queued for it.
CLOSE_GRACE = 10.0


class LoginState(enum.Enum):
    """Where a connection is in docs/protocol.md's "Login"; ChatProtocol._STEP
    names the method that takes a line in each state."""

    USERNAME = "username"
    PASSWORD = "password"  # an admin's name was given
    IN_ROOM = "in room"


@implementer(IClient)
class ChatProtocol(LineReceiver):
    """One connection.  Everything it writes goes through self.outbox, in
    order: the fan-out hot path, and the producer registered with the
    transport."""

    delimiter = b"\r\n"

    def __init__(self):
        self.member: Member | None = None
        self.commands: Commands | None = None  # once in the room
        self._state = LoginState.USERNAME
        self._name_failures = 0
        self._pending_name: str | None = None
        self._buffer = b""
        self._discarding = False
        self._skip_lf = False
        self._held: list[bytes] | None = None
        self._closing = False
        self.outbox: Outbox | None = None  # once connected
        self._counted = False  # this connection counts against the limits
        self._login_timer = None
        self._abort_timer = None
        self._idle: IdleTimer | None = None  # once logged in
        self._flood: TokenBucket | None = None
        self._refused: Recent | None = None
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
    def room(self) -> Room:
        return self.factory.room

    @property
    def stats(self) -> Stats:
        return self.factory.stats

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
        sock = tcp_socket(self.transport)
        if sock is not None:
            try:
                tune_client_socket(sock, limits.keepalive_idle, limits.keepalive_interval,
                                   limits.keepalive_count)
            except OSError as e:  # the peer may be gone already; admission must still run
                log.warn("socket options for {host} not set: {why}", host=self.host, why=e)
        self.transport.registerProducer(self.outbox, self.outbox.streaming)
        refusal = self.factory.admit(self)
        if refusal is not None:
            log.info("refused a connection from {host}: {why}", host=self.host, why=refusal)
            self.close(error(refusal))
            return
        self._counted = True
        self._flood = TokenBucket(self.clock, limits)
        self._login_timer = self.clock.callLater(limits.login_timeout, self._login_timed_out)
        self.reply(notice(f"welcome to {self.room.name}"), prompt("username"))

    def _stop_login_timer(self) -> None:
        if self._login_timer is not None and self._login_timer.active():
            self._login_timer.cancel()
        self._login_timer = None

    def _login_timed_out(self) -> None:
        self._login_timer = None
        if self.member is None and not self._closing:
            self._refuse("login timeout", error("login timed out"))

    def _send_queue_exceeded(self) -> None:
        log.info("send queue exceeded for {name} from {host}",
                 name=self.member.name if self.member else None, host=self.host)
        self.stats.sendq_disconnects += 1
        member, self.member = self.member, None
        self._closing = True
        self.transport.abortConnection()  # at once: memory first, the room after
        if member is not None:
            self.room.moderation.server_leave(member, "send queue exceeded", count_as="sendq")

    def connectionLost(self, reason):
        self._closing = True
        self.outbox.close()
        self._stop_login_timer()
        if self._abort_timer is not None and self._abort_timer.active():
            self._abort_timer.cancel()
        self._abort_timer = None
        if self._idle is not None:
            self._idle.stop()
        if self.member is not None:
            self.room.leave(self.member)
            self.member = None
        if self._counted:
            self._counted = False
            self.factory.release(self)

    def reply(self, *lines: str) -> None:
        """Lines to this connection only, in order with what the room sent."""
        if self.member is not None:
            self.room.send_many(self.member, lines)
        else:
            data = b"".join(encode(line) for line in lines)
            self.stats.bytes_sent += len(data)
            self.outbox.write(data)

    def close(self, *lines: str) -> None:
        """Send lines, then close (CommandContext)."""
        if lines:
            self.reply(*lines)
        self.disconnect()

    def _refuse(self, cause: str, *lines: str) -> None:
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
        if self._flood is None or self._flood.take():
            return True
        limits = self.factory.limits
        if self._refused is None:  # most people never flood: no history until then
            self._refused = Recent(self.clock)
        stats = self.stats
        if self._refused.add(limits.flood_kick, limits.flood_kick_window) <= limits.flood_kick:
            stats.flood_refusals += 1
            self.reply(error("slow down"))
        elif self.member is not None:
            log.info("{name} kicked for flooding from {host}", name=self.member.name,
                     host=self.host)
            stats.flood_kicks += 1
            self.room.moderation.server_kick(self.member, "flooding")
        else:
            log.info("flooding connection from {host} closed", host=self.host)
            stats.flood_kicks += 1
            self._refuse("flood", error("you were kicked by server: flooding"))
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
        if self._state is not LoginState.PASSWORD and not raw.strip():
            return  # a blank line is ignored, but is a (wrong) password
        if not self._allowed():
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.reply(error("invalid UTF-8: line dropped"))
            return
        self._STEP[self._state](self, text)

    def _hold(self) -> None:
        """Stop reading and keep further lines until an answer comes back."""
        self._held = []
        self.transport.pauseProducing()

    def _release(self) -> None:
        held, self._held = self._held or [], None
        if self._closing:
            return
        self.transport.resumeProducing()
        for raw in held:
            self.lineReceived(raw)

    def hold_until(self, done: defer.Deferred) -> None:
        """Hold further lines until done fires (CommandContext)."""
        self._hold()
        done.addBoth(lambda _: self._release())

    # -- login --------------------------------------------------------

    def _on_username(self, text: str) -> None:
        name = clean(text).strip()
        if not name:
            return
        try:
            self.room.check_name(name)
        except Banned as e:
            log.info("banned name {name} refused from {host}", name=name, host=self.host)
            self._refuse("banned", error(str(e)))
            return
        except RoomError as e:
            self._name_failures += 1
            if self._name_failures >= MAX_NAME_ATTEMPTS:
                self._refuse("bad name", error(str(e)), error("too many attempts, goodbye"))
            else:
                self.reply(error(str(e)), prompt("username"))
            return
        if self.room.is_admin_name(name):
            if self.factory.failures.blocked(self.host):
                self._too_many_failures(name)
                return
            self._pending_name = name
            self._state = LoginState.PASSWORD
            self.reply(prompt("password"))
            return
        try:  # an address ban keeps out every name but the admins'
            self.room.check_address(self.host)
        except Banned as e:
            log.info("banned address {host} refused as {name}", name=name, host=self.host)
            self._refuse("banned", error(str(e)))
            return
        self._join(name, admin=False)

    def _too_many_failures(self, name: str) -> None:
        log.warn("admin login for {name} refused from {host}: too many failures",
                 name=name, host=self.host)
        self._refuse("login failures", error("too many failed logins, try later"))

    def _on_password(self, password: str) -> None:
        name = self._pending_name
        failures = self.factory.failures
        if not failures.begin(self.host):
            self._too_many_failures(name)
            return
        self._hold()
        d = self.factory.portal.login(credentials.UsernamePassword(name, password), None,
                                      IChatAdmin)

        def accepted(result):
            failures.end(self.host, failed=False)
            if not self._closing:
                self._join(name, admin=True)

        def refused(failure):
            failure.trap(UnauthorizedLogin)
            # One line per failure, for fail2ban: "failed admin login for NAME from HOST".
            log.warn("failed admin login for {name} from {host}", name=name, host=self.host)
            failures.end(self.host, failed=True)
            self.stats.failed_admin_logins += 1
            self._refuse("wrong password", error("wrong password"))

        d.addCallbacks(accepted, refused)
        d.addErrback(self._internal_error)
        d.addBoth(lambda _: self._release())

    def _join(self, name: str, admin: bool) -> None:
        try:
            self.member = self.room.join(name, self, admin=admin, address=self.host)
        except RoomError as e:
            self._state = LoginState.USERNAME
            self.reply(error(str(e)), prompt("username"))
            return
        self._state = LoginState.IN_ROOM
        self.commands = Commands(self)
        self._stop_login_timer()
        # Login lines had their own bucket; the room starts with a full one.
        self._flood = TokenBucket(self.clock, self.factory.limits)
        self._watch_idle()

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
        if self.member is not None and not self._closing:
            self._watch_idle()

    def disconnect_idle(self) -> None:
        """The server disconnects a user who sent nothing for idle_timeout
        seconds: the one place it does, for whatever must know of it."""
        if self.member is None or self._closing:
            return
        self.reply(error("idle timeout"))
        member, self.member = self.member, None
        # Journaled, then announced to the room.
        self.room.moderation.server_leave(member, "idle timeout", count_as="idle")
        self.disconnect()

    def _internal_error(self, failure) -> None:
        log.failure("internal error for {host}", failure, host=self.host)
        self.close(error("internal error, sorry"))

    # -- in the room --------------------------------------------------

    def _on_chat(self, text: str) -> None:
        text = clean(text)
        if not text.strip():
            return
        if text.startswith("/") and not text.startswith("//"):
            self.commands.run(text[1:])
            return
        try:
            self.room.say(self.member, text[1:] if text.startswith("//") else text)
        except RoomError as e:
            self.reply(error(str(e)))

    def leave_room(self, reason: str) -> None:
        """The user leaves by their own choice (/quit; CommandContext)."""
        member, self.member = self.member, None
        self.room.leave(member, reason, count_as="quit")

    _STEP = {LoginState.USERNAME: _on_username, LoginState.PASSWORD: _on_password,
             LoginState.IN_ROOM: _on_chat}
