"""What the chatd-client tests drive: a real `twistd -n chatd`, raw sockets
for the other people in the room, and the client as a subprocess.

Everything is on 127.0.0.1; every wait polls for a condition and gives up
at a deadline, so a broken client fails a test instead of hanging it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from chatd.core.auth import AdminFile

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
CLIENT = [sys.executable, "-m", "chatd.client"]
ADMIN, ADMIN_PASSWORD = "boss", "a-long-password"
TIMEOUT = 10.0


def free_port() -> int:
    """A port nothing listens on right now (bind to 0, read it, close)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float = TIMEOUT, what=lambda: "condition"):
    """Poll condition() until it returns something true; fail at the deadline.

    what() says what was awaited, computed at the deadline so it can show
    what was seen by then.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what()}")
        time.sleep(0.02)  # the poll interval, not a guess at how long it takes


def make_cert(directory: Path, name: str, san: str) -> tuple[Path, Path]:
    """A self-signed certificate made the way the README tells people to."""
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName={san}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )
    return key, cert


class Server:
    """`twistd -n chatd` on the given endpoints, with admin boss already made."""

    def __init__(self, directory: Path, listen: list[str], irc: tuple[str, ...] = (),
                 config: str = "", web: tuple[str, ...] = (), history: int = 0):
        self.directory = directory
        self.listen = listen
        self.irc = list(irc)  # --irc endpoints
        self.web = list(web)  # --web endpoints
        self.config = config  # more chatd.toml
        self.history = history  # [server] history
        self.data = directory / "data"
        self.log = directory / "twistd.log"
        self.proc: subprocess.Popen | None = None

    def start(self, port: int) -> Server:
        AdminFile(self.data / "admins").set_password(ADMIN, ADMIN_PASSWORD)
        twistd = BIN / "twistd" if (BIN / "twistd").exists() else shutil.which("twistd")
        # History off unless asked for: one server serves a module's tests,
        # and lines replayed from an earlier test would come before each
        # login's live ones.
        config = self.directory / "chatd.toml"
        config.write_text(f"[server]\nhistory = {self.history}\n" + self.config)
        argv = [str(twistd), "-n", "--pidfile=", f"--logfile={self.log}", "chatd",
                "--config", str(config), "--data-dir", str(self.data)]
        for endpoint in self.listen:
            argv += ["--listen", endpoint]
        for endpoint in self.irc:
            argv += ["--irc", endpoint]
        for endpoint in self.web:
            argv += ["--web", endpoint]
        self.proc = subprocess.Popen(argv, cwd=self.directory, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Every listener, not only port: they bind one after another, and a
        # TLS one reads its certificate first.
        ports = {port} | {int(e.split(":")[1]) for e in self.listen + self.irc + self.web
                          if e.split(":")[0] in ("tcp", "ssl") and e.split(":")[1].isdigit()}
        wait_for(lambda: all(map(self.accepts, ports)) or self._died(),
                 what=lambda: "chatd to listen")
        assert self.proc.poll() is None, self.log.read_text()
        return self

    def _died(self) -> bool:
        return self.proc.poll() is not None

    @staticmethod
    def accepts(port: int) -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)


class LineConn:
    """Another person in the room, on a plain blocking socket."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buffer = b""
        self.seen: list[str] = []
        self.name = ""  # once logged in

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def expect(self, text: str, timeout: float = TIMEOUT) -> str:
        """Read lines until one contains text; return it."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\r\n" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\r\n", 1)
                line = raw.decode("utf-8")
                self.seen.append(line)
                if text in line:
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"never got {text!r}; got {self.seen!r}")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"closed before {text!r}; got {self.seen!r}")
            self.buffer += chunk

    def login(self, name: str, password: str | None = None) -> LineConn:
        self.expect("? username")
        self.send(name)
        if password is not None:
            self.expect("? password")
            self.send(password)
        self.expect(f"* logged in as {name}")
        self.name = name
        return self

    def close(self) -> None:
        self.sock.close()


def admin(port: int) -> LineConn:
    return LineConn(port).login(ADMIN, ADMIN_PASSWORD)


def client_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CHATD_PASSWORD"}
    env.update(extra)
    return env


def run_client(args: list[str], stdin: bytes = b"", env: dict | None = None,
               timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """The client in pipe mode, start to finish."""
    return subprocess.run(CLIENT + args, input=stdin, capture_output=True, check=False,
                          env=env or client_env(), timeout=timeout, cwd=ROOT)


class ClientProc:
    """The client in pipe mode, kept running: write stdin, wait for stdout."""

    def __init__(self, args: list[str], env: dict | None = None):
        self.proc = subprocess.Popen(
            CLIENT + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env or client_env(), cwd=ROOT)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8").rstrip("\n"))

    def expect(self, text: str, timeout: float = TIMEOUT) -> str:
        return wait_for(lambda: next((x for x in self.lines if text in x), None),
                        timeout, what=lambda: f"{text!r} on stdout; got {self.lines!r}")

    def send(self, line: str) -> None:
        self.proc.stdin.write(line.encode("utf-8") + b"\n")
        self.proc.stdin.flush()

    def end_input(self) -> None:
        self.proc.stdin.close()

    def wait(self, timeout: float = TIMEOUT) -> tuple[int, str]:
        """(exit status, stderr) once the client has ended on its own."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout)
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        stderr = self.proc.stderr.read().decode("utf-8")
        self.proc.stderr.close()
        self.proc.stdout.close()
        return code, stderr

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.wait()
