"""IRC connections on StringTransports, next to line users, for the IRC tests."""

from __future__ import annotations

import base64
from pathlib import Path

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial import unittest

from chatd.core.auth import hash_password
from chatd.irc.factory import IrcFactory
from tests.helpers import FAST, ProtocolHarness

SERVER = "test.irc"


class IrcHarness(ProtocolHarness):
    """ProtocolHarness (line users: connect/login/send/read) plus an
    IrcFactory on the same server, gate and portal: `irc()` connects an IRC
    client, `irc_login(nick)` registers one, `say(p, ...)` feeds it lines,
    `lines(p)` returns and clears what it got."""

    def __init__(self, tmp_path, **kw):
        kw.setdefault("flood_burst", 50)  # the flood limit has its own tests
        super().__init__(tmp_path, **kw)
        self.irc_factory = IrcFactory(self.server, self.factory.portal, self.gate,
                                      self.clock, SERVER)

    def irc(self, host: str = "127.0.0.1", port: int = 5000):
        proto = self.irc_factory.buildProtocol(None)
        proto.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", host, port)))
        return proto

    def say(self, proto, *lines: str | bytes) -> None:
        for line in lines:
            raw = line if isinstance(line, bytes) else line.encode("utf-8")
            proto.dataReceived(raw + b"\r\n")
        self.clock.advance(0)

    def lines(self, proto) -> list[str]:
        return self.read(proto)

    def irc_login(self, nick: str, *before: str, caps: str = "", host: str = "127.0.0.1"):
        """A registered IRC client (its welcome read); caps are requested first."""
        proto = self.irc(host)
        if caps:
            self.say(proto, "CAP LS 302", f"CAP REQ :{caps}", "CAP END")
        self.say(proto, *before, f"NICK {nick}", f"USER {nick} 0 * :{nick}")
        out = self.lines(proto)
        assert any(f" 001 {nick} " in line for line in out), out
        return proto

    def irc_close(self, proto) -> None:
        proto.connectionLost(Failure(ConnectionDone()))
        self.clock.advance(0)


def numerics(lines: list[str]) -> list[str]:
    """The command of each line (`001`, `PRIVMSG`...), tags and source aside."""
    out = []
    for line in lines:
        words = line.split(" ")
        if words[0].startswith("@"):
            words = words[1:]
        if words[0].startswith(":"):
            words = words[1:]
        out.append(words[0])
    return out


def plain(account: str, password: str) -> str:
    """AUTHENTICATE's argument for SASL PLAIN."""
    return base64.b64encode(f"\0{account}\0{password}".encode()).decode()


class IrcTestCase(unittest.TestCase):
    """An IrcHarness with admin boss (s3cret-pass) and registered reggie
    (reg-pass); harness_args are the harness's limits and options."""

    harness_args: dict = {}

    def setUp(self):
        path = Path(self.mktemp())
        path.mkdir(parents=True)
        self.h = IrcHarness(path, admins={"boss": "s3cret-pass"}, motd="be nice",
                            **self.harness_args)
        self.h.user_file.set_hash("reggie", hash_password("reg-pass", **FAST))

    def closed(self, proto) -> bool:
        return proto.transport.disconnecting
