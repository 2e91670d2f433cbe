"""Shared test fixtures: a server with no I/O, protocols on StringTransports."""

from __future__ import annotations

import sqlite3

from twisted.internet import defer, task
from twisted.internet.testing import StringTransport
from zope.interface import implementer

from chatd.config import Limits
from chatd.core.auth import AdminFile, UserFile, account_checkers, hash_password
from chatd.core.gate import Gate
from chatd.core.history import History
from chatd.core.login import make_portal
from chatd.core.room import IClient, User
from chatd.core.server import Server
from chatd.core.store import BanStore, migrate
from chatd.line.codec import LINE
from chatd.line.factory import ChatFactory

# Cheap scrypt parameters: the tests check the logic, not the cost.
FAST = dict(n=2**4, r=8, p=1)


def run_inline(fn, *args):
    """Stand-in for deferToThread: tests run scrypt on the spot."""
    return defer.maybeDeferred(fn, *args)


class ManualRunner:
    """A store runner (BanStore(runner, {})) whose database calls wait until the
    test fires them, in order: a ban, a journal entry or history "being written"."""

    def __init__(self):
        self.conn = sqlite3.connect(":memory:")
        migrate(self.conn)
        self.waiting: list[tuple] = []

    def __call__(self, fn):
        d = defer.Deferred()
        self.waiting.append((fn, d))
        return d

    def fire(self) -> None:
        """Run and commit the oldest waiting call."""
        fn, d = self.waiting.pop(0)
        result = fn(self.conn)
        self.conn.commit()
        d.callback(result)

    def fail(self, exc: Exception) -> None:
        """The oldest waiting call fails as the database would."""
        _, d = self.waiting.pop(0)
        d.errback(exc)

    def drain(self, most: int = 20) -> None:
        """Fire every waiting call, and those they cause, at most `most` of them."""
        for _ in range(most):
            if not self.waiting:
                return
            self.fire()
        raise AssertionError("database calls keep coming")

    def rows(self) -> list[tuple]:
        """The moderation journal, oldest first."""
        return self.conn.execute(
            "SELECT at, action, actor, target, reason, expires, address"
            " FROM modlog ORDER BY id").fetchall()


@implementer(IClient)
class FakeClient:
    """A person as the core sees them, recording what they receive in the
    line protocol's format."""

    wire = LINE

    def __init__(self):
        self.data = b""
        self.disconnected = False

    def deliver(self, data: bytes) -> None:
        self.data += data

    def disconnect(self) -> None:
        self.disconnected = True

    def lines(self) -> list[str]:
        """Everything received so far, as lines, and forget it."""
        out, self.data = self.data.decode("utf-8").split("\r\n"), b""
        assert out[-1] == "", "every server line ends with CRLF"
        return out[:-1]


class BrokenClient(FakeClient):
    """A client whose connection fails once `broken` is set."""

    broken = False

    def deliver(self, data: bytes) -> None:
        if self.broken:
            raise OSError("the socket fell over")
        super().deliver(data)


def make_server(admins: dict[str, str] | None = None, registered=(), **kw
                ) -> tuple[Server, task.Clock]:
    """A server with no I/O on a Clock; admins and registered are names."""
    clock = task.Clock()
    admin_names = {name.lower() for name in (admins or {})}
    registered_names = {name.lower() for name in registered}
    server = Server(clock, kw.pop("bans", None) or BanStore.in_memory(),
                    lambda name: name.lower() in admin_names,
                    is_registered_name=lambda name: name.lower() in registered_names, **kw)
    return server, clock


def join(server: Server, name: str, client=None, admin: bool = False,
         address: str | None = "127.0.0.1", room: str | None = None) -> User:
    """Log name in and put them in room (the landing room), as a front end does."""
    user = server.login(name, client or FakeClient(), admin=admin, address=address)
    server.enter(user, room, login=room is None)
    return user


class ProtocolHarness:
    """A factory wired like the daemon, with a Clock and in-memory state.

    `run_blocking` runs the password checks (inline by default).
    `connect()` gives a protocol on a StringTransport; `send(proto, ...)`
    feeds it lines and lets the room flush, `read(proto)` returns and clears
    the lines the client got.  With `history=N` the server keeps each
    room's last N lines (a History on the harness's store and Clock).
    """

    def __init__(self, tmp_path, admins: dict[str, str] | None = None,
                 motd: str = "", bans: BanStore | None = None,
                 run_blocking=run_inline, server: dict | None = None,
                 history: int | None = None, **limits):
        self.clock = task.Clock()
        self.admin_file = AdminFile(tmp_path / "admins")
        for name, password in (admins or {}).items():
            self.admin_file.set_hash(name, hash_password(password, **FAST))
        self.user_file = UserFile(tmp_path / "users")
        self.bans = bans or BanStore.in_memory()
        if history is not None:
            server = {"history": History(self.bans, self.clock, history), **(server or {})}
        self.server = Server(self.clock, self.bans, self.admin_file.is_admin,
                             landing="testroom", motd=motd,
                             is_registered_name=self.user_file.is_registered,
                             **(server or {}))
        self.gate = Gate(Limits(**limits), self.clock, self.server.stats)
        portal = make_portal(self.server, *account_checkers(self.admin_file, self.user_file,
                                                             run_blocking))

        def registrar(name, password):
            self.user_file.set_hash(name, hash_password(password, **FAST))
            return defer.succeed(None)

        self.factory = ChatFactory(self.server, portal, self.gate, self.clock, registrar)

    @property
    def room(self):
        """The landing room, where every login lands."""
        return self.server.landing

    def connect(self, host: str = "127.0.0.1", port: int = 40000):
        from twisted.internet.address import IPv4Address

        proto = self.factory.buildProtocol(None)
        transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
        proto.factory = self.factory
        proto.makeConnection(transport)
        return proto

    def send(self, proto, *lines: str | bytes, eol: bytes = b"\n") -> None:
        for line in lines:
            raw = line if isinstance(line, bytes) else line.encode("utf-8")
            proto.dataReceived(raw + eol)
        self.clock.advance(0)

    def read(self, proto) -> list[str]:
        self.clock.advance(0)
        data = proto.transport.value()
        proto.transport.clear()
        text = data.decode("utf-8")
        assert text == "" or text.endswith("\r\n"), "server lines end with CRLF"
        return text.split("\r\n")[:-1]

    def login(self, name: str, password: str | None = None):
        proto = self.connect()
        self.send(proto, name)
        if password is not None:
            self.send(proto, password)
        self.read(proto)
        return proto

    def close(self, proto) -> None:
        """The client vanishes (what a real transport does on loseConnection)."""
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure

        proto.connectionLost(Failure(ConnectionDone()))
        self.clock.advance(0)

    def closed(self, proto) -> bool:
        return proto.transport.disconnecting
