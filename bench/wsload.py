"""The load generator's WebSocket side: chatd's web front end (docs/web.md).

Clients do the HTTP Upgrade handshake on /ws with the page's own Origin,
log in with {"type":"login"}, and count the {"kind":"message"} objects that
arrive as unmasked text frames.  Senders pipeline masked {"type":"say"}
frames into the landing room.  The result has the shape of
loadgen.count_python's, so bench.py summarises both alike.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import resource
import selectors
import socket
import struct
import time

from loadgen import RECV_SIZE, Client, Crowd, PhaseFailed

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


def ws_login(host: str, port: int, count: int, *, inflight: int = 10,
             timeout: float = 60.0) -> Crowd:
    """Connect count WebSocket clients b0.. and log them in, inflight at a time.

    Stage 0: handshake sent; 1: login sent after the 101; 9: welcome seen.
    What arrives after the welcome is read and dropped (drain() the rest).
    """
    crowd = Crowd()
    sel = selectors.DefaultSelector()
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    next_index = pending = done = 0

    def start_one(i: int) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        err = s.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            raise PhaseFailed(f"connect failed: {os.strerror(err)}")
        c = Client(f"b{i}", s)
        c.out = handshake(host, port)
        crowd.clients.append(c)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)

    try:
        while done < count:
            while pending < inflight and next_index < count:
                start_one(next_index)
                next_index += 1
                pending += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise PhaseFailed(
                    f"web login: {done} of {count} logged in after {timeout:.0f} s")
            for key, events in sel.select(min(left, 0.5)):
                c = key.data
                if events & selectors.EVENT_WRITE:
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise PhaseFailed(f"connect failed: {os.strerror(err)}")
                    c.sock.sendall(c.out)
                    c.out = b""
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                if not events & selectors.EVENT_READ:
                    continue
                try:
                    data = c.sock.recv(RECV_SIZE)
                except BlockingIOError:
                    continue
                except OSError as e:
                    raise PhaseFailed(f"{c.name}: {e}") from e
                if not data:
                    raise PhaseFailed(f"{c.name}: server closed the connection"
                                      f" (stage {c.stage})")
                if c.stage == 9:
                    continue
                window = c.seen + data
                if c.stage == 0 and b"\r\n\r\n" in window:
                    status = window.split(b"\r\n", 1)[0]
                    if b" 101 " not in status:
                        raise PhaseFailed(f"{c.name}: handshake refused: {status!r}")
                    c.sock.sendall(client_frame(json.dumps(
                        {"type": "login", "name": c.name}).encode()))
                    c.stage = 1
                    window = window.split(b"\r\n\r\n", 1)[1]
                if c.stage == 1 and WELCOME in window:
                    c.stage = 9
                    done += 1
                    pending -= 1
                elif c.stage == 1 and b'"kind":"error"' in window:
                    at = window.index(b'"kind":"error"')
                    raise PhaseFailed(f"{c.name} refused: {window[at:at + 120]!r}")
                c.seen = window[-512:]
        crowd.login_seconds = time.monotonic() - started
        return crowd
    except BaseException:
        crowd.close()
        raise
    finally:
        sel.close()


def count_ws(spec, messages: int, size: int, timeout: float) -> dict:
    """Senders pipeline messages say frames each; count message objects received.

    spec is loadgen.plan's.  The count is a byte search of the stream with
    the last few bytes kept, so a match split across two reads still counts.
    """
    sel = selectors.DefaultSelector()
    state = {}
    senders = []
    keep = len(MESSAGE) - 1
    for c, expected, is_sender in spec:
        st = {"c": c, "exp": expected, "count": 0, "tail": b"", "out": b"",
              "closed": False}
        state[c.fileno()] = st
        ev = selectors.EVENT_READ
        if is_sender:
            senders.append(st)
            st["out"] = b"".join(say(size, k) for k in range(messages))
            ev |= selectors.EVENT_WRITE
        sel.register(c.sock, ev, st)
    total_expected = sum(st["exp"] for st in state.values())
    total = extra = sent = closed = 0
    timed_out = False
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = t_end = time.monotonic()
    hard = t0 + timeout
    try:
        while total < total_expected:
            if time.monotonic() > hard:
                timed_out = True
                break
            for key, events in sel.select(0.1):
                st = key.data
                sock = st["c"].sock
                if events & selectors.EVENT_WRITE and st["out"]:
                    try:
                        w = sock.send(st["out"])
                        st["out"] = st["out"][w:]
                    except BlockingIOError:
                        pass
                    if not st["out"]:
                        sel.modify(sock, selectors.EVENT_READ, st)
                        sent += messages
                if not events & selectors.EVENT_READ:
                    continue
                try:
                    data = sock.recv(RECV_SIZE)
                except BlockingIOError:
                    continue
                if not data:
                    sel.unregister(sock)
                    st["closed"] = True
                    closed += 1
                    continue
                window = st["tail"] + data
                got = window.count(MESSAGE)
                st["tail"] = window[-keep:]
                before = st["count"]
                st["count"] += got
                if st["count"] > st["exp"]:
                    over = st["count"] - max(before, st["exp"])
                    extra += over
                    got -= over
                total += got
                if total >= total_expected:
                    t_end = time.monotonic()
            if closed == len(state):
                break
    finally:
        sel.close()
    t_done = time.monotonic()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    if total < total_expected:
        t_end = t_done
    counts = [st["count"] for st in state.values()]
    return {
        "clients": len(state), "senders": len(senders), "sent": sent,
        "expected": total_expected, "delivered": total,
        "lost": sum(max(0, st["exp"] - st["count"]) for st in state.values()),
        "extra": extra, "closed": closed, "timed_out": timed_out,
        "window": t_end - t0,
        "cpu": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
        "min_count": min(counts), "max_count": max(counts), "counter": "python",
    }
