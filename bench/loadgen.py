"""The load generator: log clients in, then send and count lines.

Logging in is done here in Python with non-blocking sockets and epoll (a few
thousand events, not the hot path).  Sending and counting the benchmark lines
is the hot path: bench/counter.c does it when a C compiler is available,
count_python() below does the same (more slowly) when it is not.  Both take
the same description of the sockets and return the same result dict.

Every loop here has a deadline: on expiry PhaseFailed is raised and the
caller closes what it opened.
"""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import selectors
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
COUNTER_SRC = HERE / "counter.c"
COUNTER_BIN = BUILD / "counter"

RECV_SIZE = 256 * 1024

# IRC replies, at the start of a line: welcome, end of NAMES, refusals
_IRC_WELCOME = re.compile(rb"(?m)^:\S+ 001 ")
_IRC_JOINED = re.compile(rb"(?m)^:\S+ 366 ")
_IRC_REFUSED = re.compile(rb"(?m)^(?::\S+ (?:43[1-6]|46[1-5]|47[1-5]) |ERROR :)")


class PhaseFailed(Exception):
    """A phase of the benchmark did not finish in time or went wrong."""


# -- the two protocols, as far as logging in goes ------------------------


@dataclass
class Dialect:
    """What a client says and waits for to be logged in and in the room."""

    kind: str  # "chatd" or "irc"
    join: bool = True  # IRC: join #bench after registering (else 001 is enough)

    @property
    def prefix(self) -> bytes:
        """What goes before the text of a message to the room."""
        return b"" if self.kind == "chatd" else b"PRIVMSG #bench :"

    def greeting(self, name: str) -> bytes:
        """Sent as soon as the connection is up."""
        if self.kind == "chatd":
            return b""
        return f"NICK {name}\r\nUSER bench 0 * :bench\r\n".encode()

    def step(self, stage: int, data: bytes, name: str):
        """(new stage, bytes to send, error text or None); stage 9 = logged in."""
        if self.kind == "chatd":
            if stage == 0 and b"? username" in data:
                return 1, f"{name}\r\n".encode(), None
            if stage == 1 and b"* online (" in data:
                return 9, b"", None
            if stage == 1 and b"\n! " in data:
                return stage, b"", data[data.index(b"\n! "):][:120].decode(
                    "utf-8", "replace")
            return stage, b"", None
        refused = _IRC_REFUSED.search(data)
        if refused:
            return stage, b"", data[refused.start():][:200].decode(
                "utf-8", "replace")
        if stage == 0 and _IRC_WELCOME.search(data):
            if not self.join:
                return 9, b"", None
            return 1, b"JOIN #bench\r\n", None
        if stage == 1 and _IRC_JOINED.search(data):
            return 9, b"", None
        return stage, b"", None


@dataclass
class Client:
    name: str
    sock: socket.socket
    stage: int = 0
    seen: bytes = b""
    received: int = 0
    out: bytes = b""

    def fileno(self) -> int:
        return self.sock.fileno()


@dataclass
class Crowd:
    """Logged-in clients and how long logging them in took."""

    clients: list[Client] = field(default_factory=list)
    login_seconds: float = 0.0

    def close(self) -> None:
        for c in self.clients:
            try:
                c.sock.close()
            except OSError:
                pass
        self.clients = []


def raise_fd_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE towards wanted (up to the hard cap); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def login(host: str, port: int, dialect: Dialect, count: int, *,
          first: int = 0, inflight: int = 100, timeout: float = 60.0,
          crowd: Crowd | None = None) -> Crowd:
    """Connect and log in count clients, at most inflight at a time.

    Everything that arrives on logged-in clients meanwhile (join notices) is
    read and dropped.  crowd.login_seconds is from the first connect to the
    last client logged in.
    """
    crowd = crowd or Crowd()
    sel = selectors.DefaultSelector()
    for c in crowd.clients:
        sel.register(c.sock, selectors.EVENT_READ, c)
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    next_index, pending, done = 0, 0, 0

    def start_one(i: int) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        err = s.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            raise PhaseFailed(f"connect failed: {os.strerror(err)}")
        name = f"b{first + i}"
        c = Client(name, s)
        c.out = dialect.greeting(name)
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
                    f"login: {done} of {count} logged in after {timeout:.0f} s")
            for key, events in sel.select(min(left, 0.5)):
                c = key.data
                if events & selectors.EVENT_WRITE:
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise PhaseFailed(f"connect failed: {os.strerror(err)}")
                    if c.out:
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
                c.received += len(data)
                if c.stage == 9:
                    continue
                window = c.seen + data
                stage, reply, problem = dialect.step(c.stage, window, c.name)
                if problem:
                    raise PhaseFailed(f"{c.name} refused: {problem.strip()}")
                c.seen = window[-512:]
                if reply:
                    c.sock.sendall(reply)
                if stage != c.stage:
                    c.stage = stage
                    c.seen = b""
                    if stage == 9:
                        done += 1
                        pending -= 1
        crowd.login_seconds = time.monotonic() - started
        return crowd
    except BaseException:
        crowd.close()
        raise
    finally:
        sel.close()


def drain(crowd: Crowd, quiet: float = 0.3, timeout: float = 60.0) -> int:
    """Read and drop until nothing has arrived for quiet seconds; bytes read."""
    sel = selectors.DefaultSelector()
    for c in crowd.clients:
        sel.register(c.sock, selectors.EVENT_READ, c)
    total = 0
    deadline = time.monotonic() + timeout
    try:
        last = time.monotonic()
        while time.monotonic() - last < quiet:
            if time.monotonic() > deadline:
                raise PhaseFailed(f"drain: still receiving after {timeout:.0f} s")
            for key, _ in sel.select(quiet / 3):
                try:
                    data = key.data.sock.recv(RECV_SIZE)
                except BlockingIOError:
                    continue
                if not data:
                    raise PhaseFailed(f"{key.data.name}: server closed the connection")
                total += len(data)
                last = time.monotonic()
    finally:
        sel.close()
    return total


# -- sending and counting ------------------------------------------------


def build_counter(cc: str | None = None) -> Path | None:
    """Compile counter.c into bench/build/ if needed; None without a compiler."""
    cc = cc or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    if (COUNTER_BIN.exists()
            and COUNTER_BIN.stat().st_mtime >= COUNTER_SRC.stat().st_mtime):
        return COUNTER_BIN
    BUILD.mkdir(exist_ok=True)
    tmp = BUILD / f"counter.{os.getpid()}"
    result = subprocess.run(
        [cc, "-O2", "-Wall", "-o", str(tmp), str(COUNTER_SRC)],
        check=False, capture_output=True, text=True, timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(f"building counter.c failed:\n{result.stderr}")
    tmp.replace(COUNTER_BIN)
    return COUNTER_BIN


def plan(crowd: Crowd, senders: int, messages: int) -> list[tuple[Client, int, bool]]:
    """(client, lines it should receive, is it a sender) for every client.

    The senders are spread over the crowd.  Nobody hears their own lines.
    A fourth item, when present, says whether the client's deliveries are
    timed (latency): by default they all are.
    """
    n = len(crowd.clients)
    senders = min(senders, n)
    step = n / senders
    chosen = {int(i * step) for i in range(senders)}
    total = senders * messages
    return [
        (c, total - (messages if i in chosen else 0), i in chosen)
        for i, c in enumerate(crowd.clients)
    ]


def timed(row: tuple) -> bool:
    """Whether a spec row's deliveries are timed (its optional fourth item)."""
    return bool(row[3]) if len(row) > 3 else True


def run_counter(binary: Path, spec, dialect: Dialect, messages: int, size: int,
                rate: float, timeout: float) -> dict:
    """Send and count with the C helper; the sockets are inherited."""
    fds = [c.fileno() for c, *_ in spec]
    stdin = "".join(f"{row[0].fileno()} {row[1]} {int(row[2])} {int(timed(row))}\n"
                    for row in spec)
    cmd = [str(binary), "-m", str(messages), "-s", str(size), "-r", str(rate),
           "-d", str(timeout), "-p", dialect.prefix.decode()]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, pass_fds=fds, text=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout + 15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise PhaseFailed("the counter did not finish in time") from None
    if proc.returncode != 0 or not out.strip():
        raise PhaseFailed(f"the counter failed ({proc.returncode}): {err.strip()}")
    result = json.loads(out)
    result["counter"] = "c"
    if err.strip():
        result["note"] = err.strip()
    return result


def _line(prefix: bytes, size: int, ts: int, seq: int) -> bytes:
    head = f"m{seq} ".encode()[: size - 21]
    return (prefix + head + b"x" * (size - 21 - len(head))
            + b"%020d|\r\n" % ts)


def count_lines(tail: bytes, data: bytes) -> tuple[int, bytes]:
    """Lines of ours (ending in `|` CRLF) in tail + data; the new tail."""
    lines = (tail + data).split(b"\n")
    return sum(1 for ln in lines[:-1] if ln.endswith(b"|\r")), lines[-1][-24:]


def count_python(spec, dialect: Dialect, messages: int, size: int, rate: float,
                 timeout: float, payload: bytes | None = None,
                 tally=count_lines) -> dict:
    """counter.c in Python: the same lines sent, the same result counted.

    payload (rate 0 only): what each sender pipelines instead of the lines;
    tally(tail, data) -> (count, new tail): what counts as one delivery.
    """
    sel = selectors.DefaultSelector()
    prefix = dialect.prefix
    state = {}
    senders = []
    for row in spec:
        c, expected, is_sender = row[:3]
        st = {"c": c, "exp": expected, "count": 0, "tail": b"", "out": b"",
              "closed": False, "timed": timed(row)}
        state[c.fileno()] = st
        ev = selectors.EVENT_READ
        if is_sender:
            senders.append(st)
            if rate == 0:
                st["out"] = payload or b"".join(_line(prefix, size, 0, k)
                                                for k in range(messages))
                ev |= selectors.EVENT_WRITE
        sel.register(c.sock, ev, st)
    total_expected = sum(st["exp"] for st in state.values())
    total_messages = messages * len(senders)
    lat: list[int] = []
    total = extra = sent = closed = 0
    timed_out = False
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    t0_ns = time.monotonic_ns()
    t_end = t0
    hard = t0 + timeout
    try:
        while total < total_expected or (rate > 0 and sent < total_messages):
            if time.monotonic() > hard:
                timed_out = True
                break
            wait = 0.1
            if rate > 0 and sent < total_messages:
                due = min(int((time.monotonic_ns() - t0_ns) / 1e9 * rate) + 1,
                          total_messages)
                while sent < due:
                    st = senders[sent % len(senders)]
                    st["c"].sock.send(_line(prefix, size, time.monotonic_ns(), sent))
                    sent += 1
                wait = max(0.0, min(0.1, sent / rate
                                    - (time.monotonic_ns() - t0_ns) / 1e9))
            for key, events in sel.select(wait):
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
                if rate > 0:
                    lines = (st["tail"] + data).split(b"\n")
                    st["tail"] = lines[-1][-24:]
                    got = 0
                    now = time.monotonic_ns()
                    for ln in lines[:-1]:
                        if ln.endswith(b"|\r"):
                            got += 1
                            if st["timed"]:
                                lat.append(now - int(ln[-22:-2]))
                else:
                    got, st["tail"] = tally(st["tail"], data)
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
    lost = sum(max(0, st["exp"] - st["count"]) for st in state.values())
    lat.sort()
    pct = (lambda q: lat[min(len(lat) - 1, int(len(lat) * q))] / 1e6) if lat else (
        lambda q: -1.0)
    return {
        "clients": len(state), "senders": len(senders), "sent": sent,
        "expected": total_expected, "delivered": total, "lost": lost,
        "extra": extra, "closed": closed, "timed_out": timed_out,
        "window": t_end - t0,
        "cpu": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
        "min_count": min(counts), "max_count": max(counts),
        "latencies": len(lat), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
        "max_ms": lat[-1] / 1e6 if lat else -1.0, "counter": "python",
    }
