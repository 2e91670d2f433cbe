"""Web front-end test helpers: a WebConnection on a StringTransport, and a
minimal real WebSocket client (handshake, masked frames) for loopback tests."""

from __future__ import annotations

import base64
import json
import os
import struct

from twisted.internet import defer, protocol, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from chatd.web.connection import WebConnection
from chatd.web.site import WebFactory

TIMEOUT = 10


def parse_frames(data: bytes) -> tuple[list[dict], bytes]:
    """Whole unmasked server text frames in data as JSON objects, and the rest."""
    out = []
    while len(data) >= 2:
        n, head = data[1] & 0x7F, 2
        if n == 126:
            if len(data) < 4:
                break
            n, head = struct.unpack("!H", data[2:4])[0], 4
        elif n == 127:
            if len(data) < 10:
                break
            n, head = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < head + n:
            break
        opcode, payload = data[0] & 0x0F, data[head:head + n]
        if opcode == 1:
            out.append(json.loads(payload.decode("utf-8")))
        elif opcode == 8:
            out.append({"kind": "(close)"})
        data = data[head + n:]
    return out, data


def client_frame(payload: bytes, opcode: int = 1, fin: bool = True) -> bytes:
    """A masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    first = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head = first + bytes([0x80 | n])
    elif n < 65536:
        head = first + bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head = first + bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class _FakeWebSocket:
    """What twisted.web.websocket hands the protocol: its transport."""

    def __init__(self, transport: StringTransport):
        self.transport = transport



class WebHarness:
    """Web connections on StringTransports sharing a ProtocolHarness's server,
    gate, portal and Clock (so line users and pages meet in the same rooms)."""

    def __init__(self, h, origins=()):
        self.h = h
        self.factory = WebFactory(h.server, h.factory.portal, h.gate, h.clock,
                                  origins=origins, registrar=h.factory.registrar)

    def connect(self, host: str = "127.0.0.1", port: int = 41000):
        conn = WebConnection(self.factory, host)
        transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
        conn.negotiationStarted(_FakeWebSocket(transport))
        conn.negotiationFinished()
        return conn

    def send(self, conn, *messages) -> None:
        for message in messages:
            text = message if isinstance(message, str) else json.dumps(message)
            conn.textMessageReceived(text)
        self.h.clock.advance(0)

    def read(self, conn) -> list[dict]:
        self.h.clock.advance(0)
        messages, rest = parse_frames(conn.transport.value())
        assert rest == b"", "the server writes whole frames"
        conn.transport.clear()
        return messages

    def login(self, name: str, password: str | None = None):
        conn = self.connect()
        self.send(conn, {"type": "login", "name": name})
        if password is not None:
            self.send(conn, {"type": "password", "password": password})
        self.read(conn)
        return conn

    def close(self, conn) -> None:
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure

        conn.connectionLost(Failure(ConnectionDone()))
        self.h.clock.advance(0)


class WsClient(protocol.Protocol):
    """A real WebSocket client: the handshake with an Origin, then JSON both ways."""

    def __init__(self, host: str, origin: str | None, path: str = "/ws"):
        self.host, self.origin, self.path = host, origin, path
        self.status: int | None = None
        self.head = b""
        self.messages: list[dict] = []
        self._buffer = b""
        self._waiting: list[tuple] = []
        self.closed = defer.Deferred()
        self.answered = defer.Deferred()

    def connectionMade(self) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {self.path} HTTP/1.1", f"Host: {self.host}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        if self.origin is not None:
            lines.append(f"Origin: {self.origin}")
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def dataReceived(self, data: bytes) -> None:
        if self.status is None:
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            self.head, _, data = self.head.partition(b"\r\n\r\n")
            self.status = int(self.head.split(b" ", 2)[1])
            self.answered.callback(self.status)
            if self.status != 101:
                return
        messages, self._buffer = parse_frames(self._buffer + data)
        self.messages.extend(messages)
        self._check()

    def header(self, name: str) -> str | None:
        for line in self.head.decode("latin-1").split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    def _check(self) -> None:
        for item in list(self._waiting):
            match, d = item
            for i, message in enumerate(self.messages):
                if match(message):
                    del self.messages[: i + 1]
                    self._waiting.remove(item)
                    d.callback(message)
                    break

    def expect(self, kind: str, **fields) -> defer.Deferred:
        """Fires with the first message of kind (and fields), dropping those before it."""
        d = defer.Deferred()
        self._waiting.append((lambda m: m.get("kind") == kind and all(
            m.get(k) == v for k, v in fields.items()), d))
        self._check()
        return d.addTimeout(TIMEOUT, reactor)

    def send(self, obj) -> None:
        payload = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.transport.write(client_frame(payload))

    def connectionLost(self, reason=protocol.connectionDone) -> None:
        if not self.answered.called:
            self.answered.callback(None)
        self.closed.callback(None)
