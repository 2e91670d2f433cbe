"""A real `twistd -n chatd` and blocking loopback clients for the hostile suite.

Every server runs as its own subprocess with a config file written for it,
listening on an ephemeral port of 127.0.0.1 only.  Clients may take another
loopback source address (127.0.0.N): the server keys its per-address limits
and address bans on that, so tests can be kept apart without a second
listener.

Every line a Client reads is checked against the contract on the way in:
valid UTF-8, ended by CRLF, starting with one of the kinds of server line, and
holding no control, format or separator character.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

from chatd.core.auth import AdminFile

TWISTD = str(Path(sys.executable).parent / "twistd")
DEADLINE = 10.0
# The line protocol's listener; start() finds its port in the log.
LISTEN = "tcp:0:interface=127.0.0.1"
ADMIN, ADMIN_PASSWORD = "boss", "boss-password"

# Limits that no test trips by accident; a test class lowers the one it shows.
LAX = {
    "max_line": 2048,
    "login_timeout": 60,
    "flood_burst": 100000,
    "flood_rate": 100000.0,
    "flood_kick": 100000,
    "flood_kick_window": 30,
    "sendq": 1024 * 1024,
    "max_clients": 2000,
    "max_per_ip": 2000,
    "login_failures": 1000,
    "login_failure_window": 300,
}

KINDS = ("? ", "<", "+ ", "[", "* ", "! ", "= ")
FORBIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# Format characters writing needs (docs/protocol.md): ZWNJ, ZWJ, emoji tags.
ALLOWED = frozenset("\u200c\u200d") | frozenset(map(chr, range(0xE0020, 0xE0080)))


def check_line(line: str) -> None:
    """Fail unless line is a well-formed server line (docs/protocol.md)."""
    assert line.startswith(KINDS), f"server line of no known kind: {line!r}"
    bad = [ch for ch in line
           if ch not in ALLOWED and unicodedata.category(ch) in FORBIDDEN]
    assert not bad, f"control/format characters {bad!r} reached a client: {line!r}"


def wait_for(predicate, what: str, timeout: float = DEADLINE):
    """Poll predicate until it returns something true; fail after timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Server:
    """One `twistd -n chatd` process with its own config, data dir and log."""

    def __init__(self, directory: Path, history: int = 0, **limits):
        self.dir = directory
        # Off unless a test is about it: the suite shares one server, and
        # replayed lines would precede every login's live ones.
        self.history = history
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data = self.dir / "var"
        self.limits = {**LAX, **limits}
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.starts = 0
        AdminFile(self.data / "admins").set_password(ADMIN, ADMIN_PASSWORD)

    def start(self) -> Server:
        """Start (or start again, on the same data dir) and wait until it listens."""
        self.starts += 1
        config = self.write_config()
        self.out = self.dir / f"out{self.starts}.log"
        self.proc = subprocess.Popen(
            self.command(config),
            stdout=self.out.open("w"), stderr=subprocess.STDOUT, cwd=self.dir,
        )
        listening = re.compile(
            rf"chatd listening on {re.escape(LISTEN)} \(127\.0\.0\.1:(\d+)\)")
        found = wait_for(
            lambda: listening.search(self.log()) or self.proc.poll() is not None,
            "chatd to listen")
        assert self.proc.poll() is None, self.log()
        self.port = int(found.group(1))
        return self

    def command(self, config: Path) -> list[str]:
        """The twistd command line; a subclass adds options (a cluster node's)."""
        return [TWISTD, "--pidfile=", "-n", "chatd", "--config", str(config),
                "--data-dir", str(self.data)]

    def write_config(self, motd: str = "") -> Path:
        """Write chatd.toml from self.limits (and motd); the next start or reload reads it."""
        config = self.dir / "chatd.toml"
        lines = ["[server]", f"listen = {json.dumps([LISTEN])}",
                 f"motd = {json.dumps(motd)}", f"history = {self.history}", "[limits]"]
        lines += [f"{key} = {value!r}" for key, value in self.limits.items()]
        config.write_text("\n".join(lines) + "\n")
        return config

    def log(self) -> str:
        return self.out.read_text(errors="replace")

    def logs(self) -> str:
        """Everything every run of this server logged."""
        return "".join(p.read_text(errors="replace") for p in sorted(self.dir.glob("out*.log")))

    def kill(self, sig: int = signal.SIGTERM) -> int | None:
        """Signal the server and wait; its exit status, or None if it had to be SIGKILLed."""
        status = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                status = self.proc.wait(7)  # chatd aborts stragglers after 5 s
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(DEADLINE)
        elif self.proc is not None:
            status = self.proc.returncode
        self.proc = None
        return status

    def connect(self, source: str = "127.0.0.1", rcvbuf: int | None = None) -> Client:
        return Client(self.port, source, rcvbuf)

    def login(self, name: str, password: str | None = None,
              source: str = "127.0.0.1", rcvbuf: int | None = None) -> Client:
        """A client logged in as name, past the `* online` line."""
        client = self.connect(source, rcvbuf)
        client.until("? username")
        client.say(name)
        if password is not None:
            client.until("? password")
            client.say(password)
        client.until("* online")
        return client


class Client:
    """A blocking line client with a deadline on every read."""

    def __init__(self, port: int, source: str = "127.0.0.1", rcvbuf: int | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(DEADLINE)
        if source != "127.0.0.1":
            self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.eof = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def say(self, *lines: str) -> None:
        self.send(b"".join(line.encode("utf-8") + b"\n" for line in lines))

    def _fill(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            raise EOFError(f"connection closed; unread: {self.buf!r}")
        self.buf += data

    def line(self, timeout: float = DEADLINE) -> str:
        """The next server line, checked against the contract."""
        end = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line within {timeout}s; unread: {self.buf[:200]!r}")
            self._fill(left)
        raw, self.buf = self.buf.split(b"\r\n", 1)
        line = raw.decode("utf-8")  # strict: the server only sends UTF-8
        assert "\r" not in line and "\n" not in line, repr(line)
        check_line(line)
        return line

    def until(self, prefix: str, timeout: float = DEADLINE) -> str:
        """Skip lines until one starting with prefix; return it."""
        return self.upto(prefix, timeout)[-1]

    def upto(self, prefix: str, timeout: float = DEADLINE) -> list[str]:
        """Every line up to and including the first starting with prefix."""
        end = time.monotonic() + timeout
        lines = []
        while True:
            lines.append(self.line(max(0.01, end - time.monotonic())))
            if lines[-1].startswith(prefix):
                return lines

    def sync(self) -> list[str]:
        """Lines that came before the answer to a /who sent now (which is dropped).

        The server answers in order, so this is everything it said in reply
        to what this client sent before.
        """
        self.say("/who")
        return self.upto("* online (")[:-1]

    def rest(self, timeout: float = DEADLINE) -> list[str]:
        """Every line until the server closes the connection; fail if it does not."""
        lines = []
        end = time.monotonic() + timeout
        while True:
            try:
                lines.append(self.line(max(0.01, end - time.monotonic())))
            except EOFError:
                assert self.buf == b"", f"partial line before close: {self.buf!r}"
                return lines

    def close(self) -> None:
        self.sock.close()

    def reset(self) -> None:
        """Vanish with a TCP reset, as a crashed client does."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
