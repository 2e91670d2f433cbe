"""The wire side of chatd-client: one session with the server, and how it ended.

Session speaks the line protocol of docs/protocol.md: it answers the login
prompts, recognises how a session ends, and hands every server line, with
anything that could act on a terminal removed, to a front end (FrontEnd:
chatd.client.tui at a terminal, chatd.client.pipe for bots).  Client is one
run: it connects (TCP or TLS), drives the session and keeps the exit status.
The helpers at the end put stdin, stdout and signals right for both front
ends.

Once logged in, what is said goes through a Pacer (chatd.client.pacing),
which keeps under the server's flood limit, learnt with a `/limits` query
whose answer, like that of a `/rooms` query for completing room names, is
hidden from the front end; RoomView (chatd.client.roomview) follows the
room and the people in it.

This module imports neither front end nor the command line (chatd.client.cli
imports all three), and of the server only the line protocol's codec
(chatd.line.codec, which parses the kinds of line: one definition of the
wire for both sides) and what it needs of the core (events and text, no
Twisted; text.clean is also what printable() removes); the front ends take kind_of from there.

Exit status (README.md), each non-zero one with one line on stderr:

    0  quit normally (/quit, Ctrl-D, end of input)
    1  internal error (a bug; a traceback follows)
    2  usage: bad arguments, unreadable --cafile, no way to ask a password
    3  cannot connect (refused, unreachable, unknown host), connection lost,
       or the server shut down
    4  TLS: the server's certificate could not be verified (or no TLS there)
    5  username refused (invalid, taken, too many attempts)
    6  wrong password
    7  banned (at login, or while in the room)
    8  kicked
    128+N  stopped by signal N (SIGINT 130, SIGTERM 143, SIGHUP 129)
"""

from __future__ import annotations

import argparse
import enum
import os
import signal
from collections.abc import Callable
from typing import Protocol

from twisted.internet import defer, error, ssl
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import LogLevel, formatEvent
from twisted.protocols.basic import LineReceiver

from chatd.client.pacing import Pacer
from chatd.client.roomview import RoomView
from chatd.core.text import clean

CONNECT_TIMEOUT = 10
GREETING_TIMEOUT = 10
QUIT_TIMEOUT = 5


class Exit(enum.IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    CONNECTION = 3
    TLS = 4
    USERNAME = 5
    PASSWORD = 6
    BANNED = 7
    KICKED = 8


# Server lines that end a session, and how (docs/protocol.md).
_ENDINGS = [
    ("! wrong password", Exit.PASSWORD),
    ("! you are banned", Exit.BANNED),
    ("! you were banned by ", Exit.BANNED),
    ("! you were kicked by ", Exit.KICKED),
    ("! you were kicked from ", Exit.KICKED),  # ends it only from the landing room
    ("! too many attempts", Exit.USERNAME),
]
# What the session asks the server by itself after login, and the start of
# the answer; each answer (or a `! ` refusal from an older server) is hidden.
_QUERIES = [("/limits", "* limits "), ("/rooms", "* rooms (")]
_REFUSALS = ("! unknown command ", "! slow down")


def printable(text: str) -> str:
    """text without control (C0, C1, ESC, DEL) and format characters.

    The server already removes them, but a client must not let whatever
    answers on the port move the cursor, retitle the window or hide text.
    It is the server's own rule (chatd.core.text.clean), so the joiners and
    selectors that make one emoji of several (👨‍👩‍👧) stay where they do that
    job, as they were sent.  Tabs become a space so that the width of a
    line is known.
    """
    return clean(text)


class FrontEnd(Protocol):
    """What a Session needs from the side facing the person or the bot."""

    retry_username: bool

    def show(self, line: str) -> None: ...
    def ask_username(self) -> None: ...
    def ask_password(self, name: str) -> None: ...
    def logged_in(self, name: str) -> None: ...
    def close(self) -> defer.Deferred: ...


class Session(LineReceiver):
    """The wire side: login steps, server lines to the front end, endings."""

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self, client: Client):
        self.client = client
        self.name: str | None = None
        self.in_room = False
        self._tried_name = False
        self._last_error = ""
        self._ending: tuple[Exit, str] | None = None
        self._greeting = None
        self.open = False
        self.room = RoomView()
        self.pacer: Pacer | None = None  # once in the room
        self._asked: list[str] = []  # answers to our own queries still to come

    def connectionMade(self) -> None:
        self.open = True
        self.client.session = self
        self._greeting = self.client.reactor.callLater(
            GREETING_TIMEOUT, self._no_greeting)

    def _no_greeting(self) -> None:
        hint = "" if self.client.args.tls else " (a TLS port? try --tls)"
        self._ending = (Exit.CONNECTION, f"no answer from the server{hint}")
        self.transport.abortConnection()

    def lineLengthExceeded(self, line: bytes) -> None:
        self.clearLineBuffer()

    def lineReceived(self, raw: bytes) -> None:
        if self._greeting is not None and self._greeting.active():
            self._greeting.cancel()
        line = printable(raw.rstrip(b"\r").decode("utf-8", "replace"))
        self.room.feed(line)
        if self._asked and self._answer(line):
            return
        front = self.client.front
        front.show(line)
        for start, code in _ENDINGS:
            if line.startswith(start):
                why = line[2:]
                if code == Exit.USERNAME:
                    why = f"username refused: {self._last_error} (too many attempts)"
                self._ending = (code, why)
        if line == "* bye":
            self._ending = (Exit.OK, "")
        elif line.startswith("* you are in ") and self._ending is not None \
                and self._ending[0] == Exit.KICKED:
            self._ending = None  # kicked out of a room, shown the landing room: still here
        elif line == "* server shutting down":
            self._ending = (Exit.CONNECTION, "the server shut down")
        elif line.startswith("! ") and not self.in_room:
            self._last_error = line[2:]
        elif line == "? username":
            self._ask_username(front)
        elif line == "? password":
            # In the room it is /register asking for a new password: typed,
            # never CHATD_PASSWORD (the password this login used).
            password = None if self.in_room else os.environ.get("CHATD_PASSWORD")
            if password is not None:
                self.send_line(password)
            else:
                front.ask_password(self.name or "")
        elif line.startswith("* logged in as ") and not self.in_room:
            self.in_room = True
            self.name = line.split()[4]
            self._start_pacing()
            front.logged_in(self.name)

    def _start_pacing(self) -> None:
        self.pacer = Pacer(self.client.reactor, self.send_line)
        for query, answer in _QUERIES:
            self.pacer.send(query.encode())
            self._asked.append(answer)
        self.pacer.hold()

    def _answer(self, line: str) -> bool:
        """Whether line answers one of our own queries (then it is not shown)."""
        expected = self._asked[0]
        if line.startswith(expected):
            if expected == "* limits ":
                self._limits(line)
        elif line.startswith(_REFUSALS):
            if expected == "* limits ":
                self.pacer.release()  # an older server: assume the defaults
        else:
            return False
        self._asked.pop(0)
        return True

    def _limits(self, line: str) -> None:
        values = dict(word.partition("=")[::2] for word in line.split()[2:])
        try:
            burst, rate = int(values["flood_burst"]), float(values["flood_rate"])
        except (KeyError, ValueError):
            self.pacer.release()
            return
        if burst >= 1 and 0 < rate < float("inf"):
            self.pacer.set_limits(burst, rate)
        else:
            self.pacer.release()

    def say(self, text: str | bytes, sent: Callable[[], None] | None = None) -> None:
        """A line typed (or piped) in the room, let out under the flood limit;
        sent() is called once it is written."""
        if isinstance(text, str):
            text = text.encode("utf-8")
        if self.pacer is None:
            self.send_line(text)
            if sent is not None:
                sent()
        else:
            self.pacer.send(text, sent)

    def _ask_username(self, front: FrontEnd) -> None:
        if self._tried_name and not front.retry_username:
            self._ending = (Exit.USERNAME, f"username refused: {self._last_error}")
            self.transport.loseConnection()
        elif self.client.args.user and not self._tried_name:
            self.send_username(self.client.args.user)
        else:
            front.ask_username()

    def send_username(self, name: str) -> None:
        self._tried_name = True
        self.name = name
        self.send_line(name)

    def send_line(self, text: str | bytes) -> None:
        """One line to the server; the text is never logged (it may be a password)."""
        if isinstance(text, str):
            text = text.encode("utf-8")
        self.transport.write(text + b"\r\n")

    def connectionLost(self, reason) -> None:
        self.open = False
        if self.pacer is not None:
            self.pacer.stop()
        if self._greeting is not None and self._greeting.active():
            self._greeting.cancel()
        if self._ending is not None:
            code, message = self._ending
        elif self.client.quitting:
            code, message = Exit.OK, ""
        else:
            code, message = _lost(reason, self.client.address)
        self.client.finish(code, message)


def _lost(reason, address: str) -> tuple[Exit, str]:
    from OpenSSL import SSL
    from service_identity import VerificationError

    if reason.check(VerificationError):
        host = address.rpartition(":")[0]
        return Exit.TLS, f"TLS: the server's certificate is not valid for {host}"
    if reason.check(SSL.Error):
        why = _ssl_reason(reason.value)
        hint = {"certificate verify failed": " (not signed by a CA you trust; --cafile?)",
                "wrong version number": " (no TLS on that port?)"}.get(why, "")
        return Exit.TLS, f"TLS: handshake with {address} failed: {why}{hint}"
    if reason.check(error.ConnectionDone):
        return Exit.CONNECTION, f"connection to {address} closed by the server"
    return Exit.CONNECTION, f"connection to {address} lost: {reason.getErrorMessage()}"


def _ssl_reason(e: Exception) -> str:
    """The OpenSSL reason ("certificate verify failed"), not the nested tuples."""
    try:
        return "; ".join(str(item[2]) for item in e.args[0]) or str(e)
    except (IndexError, TypeError):
        return str(e)


class Client:
    """One run: connect, drive the session, and remember how it ended."""

    def __init__(self, reactor, args: argparse.Namespace, trust=None):
        self.reactor = reactor
        self.args = args
        self.trust = trust
        self.address = f"{args.host}:{args.port}"
        self.front: FrontEnd | None = None
        self.session: Session | None = None
        self.quitting = False
        self.finishing = False
        self.code: int = Exit.OK
        self.message = ""
        self.failure_text = ""

    def endpoint(self) -> IStreamClientEndpoint:
        ep = HostnameEndpoint(self.reactor, self.args.host, self.args.port,
                              timeout=CONNECT_TIMEOUT)
        if self.args.tls:
            options = ssl.optionsForClientTLS(
                self.args.host, trustRoot=self.trust or ssl.platformTrust())
            ep = wrapClientTLS(options, ep)
        return ep

    def start(self) -> None:
        d = self.endpoint().connect(Factory.forProtocol(lambda: Session(self)))
        d.addErrback(self._cannot_connect)

    def _cannot_connect(self, failure) -> None:
        why = failure.value
        if failure.check(error.ConnectionRefusedError):
            why = "connection refused"
        elif failure.check(error.DNSLookupError):
            why = "unknown host"
        elif failure.check(error.TimeoutError):
            why = "timed out"
        self.finish(Exit.CONNECTION, f"cannot connect to {self.address}: {why}")

    def quit(self, drop: bool = False) -> None:
        """Leave politely: /quit once in the room, else just hang up.

        /quit waits behind the lines still queued (the end of a piped file),
        unless drop: a person leaving at once does not wait for them.
        """
        if self.quitting or self.finishing:
            return
        self.quitting = True
        session = self.session
        if session is None:
            self.finish(Exit.OK, "")
        elif session.in_room:
            if drop and session.pacer is not None:
                session.pacer.drop()
            session.say("/quit", sent=lambda: self.reactor.callLater(
                QUIT_TIMEOUT, session.transport.loseConnection))
        else:
            session.transport.loseConnection()

    def finish(self, code: int, message: str) -> None:
        """The session is over: hang up, let the front end flush, stop."""
        if self.finishing:
            return
        self.finishing = True
        self.code, self.message = code, message
        if self.session is not None and self.session.open:
            self.session.transport.loseConnection()
        d = defer.maybeDeferred(self.front.close) if self.front else defer.succeed(None)
        d.addTimeout(3, self.reactor)
        d.addBoth(lambda _: self.reactor.stop() if self.reactor.running else None)

    def interrupted(self, signum: int) -> None:
        self.finish(128 + signum, "interrupted")

    def observe(self, event: dict) -> None:
        """A log observer: an error logged anywhere is a bug; end with status 1."""
        if event.get("log_level", LogLevel.info) < LogLevel.error:
            return
        f = event.get("log_failure") or event.get("failure")
        self.failure_text = f.getTraceback() if f else (formatEvent(event) or "")
        summary = f"{f.type.__name__}: {f.getErrorMessage()}" if f else \
            formatEvent(event).splitlines()[0]
        self.finish(Exit.INTERNAL, f"internal error: {summary}")


def save_fd_flags(fds) -> dict[int, int]:
    """File status flags, since StandardIO makes stdin and stdout non-blocking.

    A terminal left non-blocking breaks the shell that ran us.
    """
    import fcntl

    return {fd: fcntl.fcntl(fd, fcntl.F_GETFL) for fd in fds}


def restore_fd_flags(flags: dict[int, int]) -> None:
    import fcntl

    for fd, value in flags.items():
        try:
            fcntl.fcntl(fd, fcntl.F_SETFL, value)
        except OSError:
            pass


def catch_signals(reactor, client: Client, signums) -> None:
    """End through Client.finish, so the terminal and stdout are put right."""
    for signum in signums:
        signal.signal(signum, lambda n, frame: reactor.callFromThread(
            client.interrupted, n))

