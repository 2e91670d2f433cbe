"""A real `redis-server` on a loopback port, for the cluster tests.

The server keeps nothing on disk (`--save ""`, `--appendonly no`), so a
restart comes back EMPTY: the hard case for a cluster, which must then
resynchronise from what its nodes still hold.  The binary is Debian's
`redis-server` package, installed by `tests/ensure-tools.sh` (`make test`);
without it the tests that need it fail rather than skip, so that CI cannot
pass without having run them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

from twisted.trial import unittest

from tests.helpers_hostile import DEADLINE, wait_for
from tests.test_twistd import free_port

INSTALL = "tests/ensure-tools.sh redis-server:redis-server (or apt-get install redis-server)"


def inline(port: int, command: str, timeout: float = 1.0) -> bytes:
    """Redis's first reply to one inline command (a line of text) on 127.0.0.1:port.

    Every Redis accepts inline commands: the test side needs no client
    library for the few questions it asks.  Raises OSError when nothing
    answers.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(command.encode() + b"\r\n")
        return sock.recv(4096)


def ping(port: int) -> bool:
    """Whether a Redis server answers PING on 127.0.0.1:port right now."""
    try:
        return inline(port, "PING").startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process: start, stop, start again empty on the same port.

    It is stopped when the test that made it ends (case.addCleanup).
    """

    def __init__(self, case: unittest.TestCase, directory: Path):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            case.fail(f"redis-server is not installed: {INSTALL}")
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        case.addCleanup(self.stop)

    @property
    def url(self) -> str:
        """What chatd's --cluster takes: database 0 of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start (again, on the same port, with nothing in it); wait until it answers PING."""
        assert self.proc is None, "already running"
        self.starts += 1
        self.out = self.dir / f"redis{self.starts}.log"
        with self.out.open("w") as sink:  # the child has its own copy once started
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.dir)
        wait_for(lambda: self.proc.poll() is not None or ping(self.port),
                 f"redis-server to answer PING on port {self.port}")
        if self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited:\n{self.log()}")
        return self

    def stop(self) -> None:
        """SIGTERM, then wait for it to be gone (it saves nothing)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(DEADLINE)

    def log(self) -> str:
        return self.out.read_text(errors="replace")
