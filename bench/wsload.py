"""The load generator's WebSocket side: chatd's web front end (docs/web.md).

Clients do the HTTP Upgrade handshake on /ws with the page's own Origin,
log in with {"type":"login"}, and count the {"kind":"message"} objects that
arrive as unmasked text frames.  Senders pipeline masked {"type":"say"}
frames into the landing room.  The result has the shape of
loadgen.count_python's, so bench.py summarises both alike.
"""

from __future__ import annotations

import base64
import json
import os
import struct

from loadgen import Crowd, Dialect, count_python, login

ROOM = "chatd"  # the landing room, where every client is after login
MESSAGE = b'"kind":"message"'  # JSON escapes '"' in text: only a real kind matches
WELCOME = b'"kind":"welcome"'


def client_frame(payload: bytes) -> bytes:
    """A masked text frame, as a browser sends it (a zero mask key: XOR is a no-op)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    return head + b"\0\0\0\0" + payload


def handshake(host: str, port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Origin: http://{host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n").encode()


def say(size: int, seq: int) -> bytes:
    """One masked say frame whose text is size bytes."""
    head = f"m{seq} "
    text = head + "x" * max(0, size - len(head))
    return client_frame(json.dumps(
        {"type": "say", "room": ROOM, "text": text}, separators=(",", ":")).encode())


class WsDialect(Dialect):
    """A page logging in: the /ws handshake, then a login frame, then welcome."""

    def __init__(self, host: str, port: int):
        super().__init__("chatd")
        self.host, self.port = host, port

    def greeting(self, name: str) -> bytes:
        return handshake(self.host, self.port)

    def step(self, stage: int, data: bytes, name: str):
        """(new stage, bytes to send, error text or None); stage 9 = logged in."""
        if stage == 0 and b"\r\n\r\n" in data:
            status = data.split(b"\r\n", 1)[0]
            if b" 101 " not in status:
                return stage, b"", f"handshake refused: {status!r}"
            login = json.dumps({"type": "login", "name": name}).encode()
            return 1, client_frame(login), None
        if stage == 1 and WELCOME in data:
            return 9, b"", None
        if stage == 1 and b'"kind":"error"' in data:
            at = data.index(b'"kind":"error"')
            return stage, b"", repr(data[at:at + 120])
        return stage, b"", None


def ws_login(host: str, port: int, count: int, *, inflight: int = 10,
             timeout: float = 60.0) -> Crowd:
    """Connect count pages b0.. to /ws and log them in (loadgen.login's loop)."""
    return login(host, port, WsDialect(host, port), count, inflight=inflight,
                 timeout=timeout)


def count_ws_messages(tail: bytes, data: bytes) -> tuple[int, bytes]:
    """Message objects in tail + data; the new tail (a split match counts once)."""
    window = tail + data
    return window.count(MESSAGE), window[-(len(MESSAGE) - 1):]


def count_ws(spec, messages: int, size: int, timeout: float) -> dict:
    """Senders pipeline messages say frames each; count message objects received.

    spec is loadgen.plan's; the loop is loadgen.count_python's.  The count is
    a byte search of the stream, the last few bytes kept for the next read.
    """
    payload = b"".join(say(size, k) for k in range(messages))
    return count_python(spec, Dialect("chatd"), messages, size, 0, timeout,
                        payload=payload, tally=count_ws_messages)
