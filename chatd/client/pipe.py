"""chatd-client's pipe front end, for bots and scripts (stdin is not a terminal).

Once logged in, every stdin line is sent as it is and every server line is
printed as it came, one per line; at the end of input the client sends
/quit.  Without --user the first stdin line is the username.

Lines go out under the server's flood limit (chatd.client.pacing), so a
file of any length piped in arrives whole; stdin is read no further while
QUEUE_HIGH lines wait, so a long file is never held in memory.
"""

from __future__ import annotations

import getpass
import os
import signal

from twisted.internet import defer
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from chatd.client.session import Client, Exit, catch_signals, restore_fd_flags, save_fd_flags

QUEUE_HIGH, QUEUE_LOW = 64, 16


@implementer(IHalfCloseableProtocol)
class PipeFrontEnd(LineReceiver):
    """stdin lines out once logged in, server lines to stdout; /quit at EOF."""

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20
    retry_username = False

    def __init__(self, client: Client):
        self.client = client
        self._want: str | None = None
        self._closed = defer.Deferred()
        self._eof = False

    def connectionMade(self) -> None:
        self.pauseProducing()

    def show(self, line: str) -> None:
        self.transport.write(line.encode("utf-8") + b"\n")

    def ask_username(self) -> None:
        self._want = "username"
        self.resumeProducing()

    def ask_password(self, name: str) -> None:
        """No CHATD_PASSWORD: ask on the controlling terminal, never on stdin.

        getpass blocks the reactor while the person types; during login
        nothing else is waiting on it, and the server holds the connection.
        In the room (/register) the next stdin lines are the answer, as
        they would be over netcat.
        """
        if self.client.session.in_room:
            return
        try:
            os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
        except OSError:
            self.client.finish(
                Exit.USAGE, f"{name} needs a password: set CHATD_PASSWORD")
            return
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            password = getpass.getpass(f"password for {name}: ")
        except (KeyboardInterrupt, EOFError):
            self.client.finish(128 + signal.SIGINT, "interrupted")
            return
        finally:
            signal.signal(signal.SIGINT, previous)
        self.client.session.send_line(password)

    def logged_in(self, name: str) -> None:
        """Start reading stdin; Session.say paces the lines."""
        self._want = "chat"
        self.resumeProducing()

    def lineReceived(self, line: bytes) -> None:
        line = line.removesuffix(b"\r")
        session = self.client.session
        if session is None or self.client.quitting or self.client.finishing:
            return
        if self._want == "username":
            self._want = None
            self.pauseProducing()
            session.send_username(line.decode("utf-8", "replace"))
        elif self._want == "chat":
            session.say(line, self._sent)
            if session.pacer is not None and session.pacer.pending >= QUEUE_HIGH:
                self.pauseProducing()

    def _sent(self) -> None:
        """A queued line went out: read on once the queue is short again."""
        session = self.client.session
        if self.paused and self._want == "chat" and session.pacer.pending <= QUEUE_LOW:
            self.resumeProducing()
            if self._eof and not self.paused:
                self._end_of_input()

    def lineLengthExceeded(self, line: bytes) -> None:
        self.clearLineBuffer()

    def readConnectionLost(self) -> None:
        """End of input: /quit once every line read is queued (Client.quit
        puts it behind them)."""
        self._eof = True
        if not self.paused:
            self._end_of_input()

    def _end_of_input(self) -> None:
        rest = self.clearLineBuffer()
        if rest:
            self.lineReceived(rest)
        self.client.quit()

    def writeConnectionLost(self) -> None:
        """Nobody reads stdout any more (`chatd-client | head -1`): leave."""
        self._done()
        self.client.quit()

    def connectionLost(self, reason=None) -> None:
        self._done()

    def _done(self) -> None:
        if not self._closed.called:
            self._closed.callback(None)

    def close(self) -> defer.Deferred:
        """Fires once what was printed has been written to stdout."""
        if not self._closed.called:
            self.transport.loseConnection()
        return self._closed


def run(reactor, client: Client) -> None:
    """Run the client as a filter: stdin to the room, the room to stdout."""
    from twisted.internet import stdio

    flags = save_fd_flags((0, 1))
    try:
        client.front = PipeFrontEnd(client)
        stdio.StandardIO(client.front, reactor=reactor)
        catch_signals(reactor, client, (signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
        reactor.callWhenRunning(client.start)
        reactor.run(installSignalHandlers=False)
    finally:
        restore_fd_flags(flags)
