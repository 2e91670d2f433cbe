"""The line protocol: bytes to lines, and the login steps.

ChatProtocol is a thin adapter.  It frames lines (accepting LF, CRLF or a
lone CR, never buffering more than one maximal line), runs the login steps
(username, then password for admins), and hands each line in the room to
the room, or to chatd.commands for "/" lines.  Every refusal is one "! " line; the
connection stays open unless the contract says otherwise (docs/protocol.md).
What it writes goes through its Outbox (chatd.outbox); what all connections
share, and admission, is the ChatFactory (chatd.factory).
"""

from __future__ import annotations

import re

from twisted.cred import credentials
from twisted.cred.error import UnauthorizedLogin
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
from chatd.text import clean, encode, error, notice, prompt

log = Logger()

_EOL = re.compile(rb"\r\n|\r|\n")
MAX_NAME_ATTEMPTS = 3
# Seconds a closing connection has to take what was queued for it.
CLOSE_GRACE = 10.0


@implementer(IClient)
class ChatProtocol(Commands, LineReceiver):
    """One connection.  Everything it writes goes through self.outbox, in
    order: the fan-out hot path, and the producer registered with the
    transport."""

    delimiter = b"\r\n"

    def __init__(self):
        self.member: Member | None = None
        self._state = "username"
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
        self._abort_timer = self.factory.clock.callLater(
            CLOSE_GRACE, self.transport.abortConnection)

    # -- connection ---------------------------------------------------

    @property
    def room(self) -> Room:
        return self.factory.room

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
            self._close(error(refusal))
            return
        self._counted = True
        self._flood = TokenBucket(self.factory.clock, limits)
        self._login_timer = self.factory.clock.callLater(
            limits.login_timeout, self._login_timed_out)
        self.reply(notice(f"welcome to {self.room.name}"), prompt("username"))

    def _stop_login_timer(self) -> None:
        if self._login_timer is not None and self._login_timer.active():
            self._login_timer.cancel()
        self._login_timer = None

    def _login_timed_out(self) -> None:
        self._login_timer = None
        if self.member is None and not self._closing:
            self.factory.stats.refused("login timeout")
            self._close(error("login timed out"))

    def _send_queue_exceeded(self) -> None:
        log.info("send queue exceeded for {name} from {host}",
                 name=self.member.name if self.member else None, host=self.host)
        self.factory.stats.sendq_disconnects += 1
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
            self.factory.stats.bytes_sent += len(data)
            self.outbox.write(data)

    def _close(self, *lines: str) -> None:
        if lines:
            self.reply(*lines)
        self.disconnect()

    def say_goodbye(self, line: str) -> None:
        """Send a last line and close, unless this connection is closing already."""
        if not self._closing:
            self._close(line)

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
            self._refused = Recent(self.factory.clock)
        stats = self.factory.stats
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
            stats.refused("flood")
            self._close(error("you were kicked by server: flooding"))
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
        if self._state != "password" and not raw.strip():
            return
        if not self._allowed():
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.reply(error("invalid UTF-8: line dropped"))
            return
        if self._state == "password":
            self._on_password(text)
        elif self._state == "username":
            self._on_username(clean(text).strip())
        else:
            self._on_chat(clean(text))

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

    # -- login --------------------------------------------------------

    def _on_username(self, name: str) -> None:
        if not name:
            return
        try:
            self.room.check_name(name)
        except Banned as e:
            log.info("banned name {name} refused from {host}", name=name,
                     host=self.host)
            self.factory.stats.refused("banned")
            self._close(error(str(e)))
            return
        except RoomError as e:
            self._name_failures += 1
            if self._name_failures >= MAX_NAME_ATTEMPTS:
                self.factory.stats.refused("bad name")
                self._close(error(str(e)), error("too many attempts, goodbye"))
            else:
                self.reply(error(str(e)), prompt("username"))
            return
        if self.room.is_admin_name(name):
            if self.factory.failures.blocked(self.host):
                log.warn("admin login for {name} refused from {host}: too many failures",
                         name=name, host=self.host)
                self.factory.stats.refused("login failures")
                self._close(error("too many failed logins, try later"))
                return
            self._pending_name = name
            self._state = "password"
            self.reply(prompt("password"))
            return
        try:  # an address ban keeps out every name but the admins'
            self.room.check_address(self.host)
        except Banned as e:
            log.info("banned address {host} refused as {name}", name=name, host=self.host)
            self.factory.stats.refused("banned")
            self._close(error(str(e)))
            return
        self._join(name, admin=False)

    def _on_password(self, password: str) -> None:
        name = self._pending_name
        failures = self.factory.failures
        if not failures.begin(self.host):
            log.warn("admin login for {name} refused from {host}: too many failures",
                     name=name, host=self.host)
            self.factory.stats.refused("login failures")
            self._close(error("too many failed logins, try later"))
            return
        self._hold()
        d = self.factory.portal.login(
            credentials.UsernamePassword(name, password), None, IChatAdmin
        )

        def accepted(result):
            failures.end(self.host, failed=False)
            if not self._closing:
                self._join(name, admin=True)

        def refused(failure):
            failure.trap(UnauthorizedLogin)
            # One line per failure, for fail2ban: "failed admin login for NAME from HOST".
            log.warn("failed admin login for {name} from {host}", name=name, host=self.host)
            failures.end(self.host, failed=True)
            self.factory.stats.failed_admin_logins += 1
            self.factory.stats.refused("wrong password")
            self._close(error("wrong password"))

        d.addCallbacks(accepted, refused)
        d.addErrback(self._internal_error)
        d.addBoth(lambda _: self._release())

    def _join(self, name: str, admin: bool) -> None:
        try:
            self.member = self.room.join(name, self, admin=admin, address=self.host)
        except RoomError as e:
            self._state = "username"
            self.reply(error(str(e)), prompt("username"))
            return
        self._state = "chat"
        self._stop_login_timer()
        # Login lines had their own bucket; the room starts with a full one.
        self._flood = TokenBucket(self.factory.clock, self.factory.limits)
        self._watch_idle()

    def _watch_idle(self) -> None:
        """With idle_timeout on, time this user's silence (made only then:
        most servers leave it off, and an idle client should stay small)."""
        if self._idle is None and self.factory.limits.idle_timeout > 0:
            self._idle = IdleTimer(self.factory.clock, self.factory.limits,
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
        self._close(error("internal error, sorry"))

    # -- in the room --------------------------------------------------

    def _on_chat(self, text: str) -> None:
        if not text.strip():
            return
        if text.startswith("/") and not text.startswith("//"):
            self._command(text[1:])
            return
        try:
            self.room.say(self.member, text[1:] if text.startswith("//") else text)
        except RoomError as e:
            self.reply(error(str(e)))
