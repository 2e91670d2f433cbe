"""Shared test fixtures: a room with no I/O, protocols on StringTransports."""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.internet.testing import StringTransport
from zope.interface import implementer

from chatd.config import Limits
from chatd.core.auth import AdminFile, hash_password, make_portal
from chatd.core.room import IClient, Room
from chatd.core.store import BanStore
from chatd.line.factory import ChatFactory

# Cheap scrypt parameters: the tests check the logic, not the cost.
FAST = dict(n=2**4, r=8, p=1)


def run_inline(fn, *args):
    """Stand-in for deferToThread: tests run scrypt on the spot."""
    return defer.maybeDeferred(fn, *args)


@implementer(IClient)
class FakeClient:
    """A person as the room sees them, recording what they receive."""

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


def make_room(admins: dict[str, str] | None = None, **kw) -> tuple[Room, task.Clock]:
    clock = task.Clock()
    admin_names = {name.lower() for name in (admins or {})}
    room = Room(clock, kw.pop("bans", None) or BanStore.in_memory(),
                lambda name: name.lower() in admin_names, **kw)
    return room, clock


class ProtocolHarness:
    """A factory wired like the daemon, with a Clock and in-memory state.

    `run_blocking` runs the password checks (inline by default).
    `connect()` gives a protocol on a StringTransport; `send(proto, ...)`
    feeds it lines and lets the room flush, `read(proto)` returns and clears
    the lines the client got.
    """

    def __init__(self, tmp_path, admins: dict[str, str] | None = None,
                 motd: str = "", bans: BanStore | None = None,
                 run_blocking=run_inline, **limits):
        self.clock = task.Clock()
        self.admin_file = AdminFile(tmp_path / "admins")
        for name, password in (admins or {}).items():
            self.admin_file.set_hash(name, hash_password(password, **FAST))
        self.bans = bans or BanStore.in_memory()
        self.room = Room(self.clock, self.bans, self.admin_file.is_admin,
                         name="testroom", motd=motd)
        self.factory = ChatFactory(self.room, make_portal(self.admin_file, run_blocking),
                                   Limits(**limits), self.clock)

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
