"""Kernel socket settings: the listen backlog.

The burst test runs a real `twistd -n chatd`.
"""

from __future__ import annotations

import selectors
import signal
import socket
import time
from pathlib import Path

from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest

from chatd.sockets import with_backlog
from chatd.tap import Options, makeService
from tests.helpers_hostile import DEADLINE, Server, wait_for

BURST = 300


class BacklogStringTests(unittest.TestCase):
    def test_listeners_get_a_deep_backlog(self):
        """TCP, TLS and UNIX endpoint strings that name no backlog get 1024."""
        for description in [
            "tcp:4000",
            "tcp:4000:interface=127.0.0.1",
            r"tcp6:4000:interface=\:\:",
            "ssl:4443:privateKey=key.pem:certKey=cert.pem",
            "tls:/etc/chatd/certs:port=4443",
            "unix:/run/chatd.sock",
            r"unix:/tmp/odd\:name.sock:mode=660",
            "haproxy:tcp:4000",
        ]:
            self.assertEqual(with_backlog(description), description + ":backlog=1024")

    def test_own_backlog_and_other_types_kept(self):
        """A string that gives backlog=N keeps it; systemd: and stdio: take none."""
        for description in [
            "tcp:4000:backlog=20",
            "tcp:4000:backlog=20:interface=127.0.0.1",
            "haproxy:tcp:4000:backlog=20",
            "systemd:domain=INET:index=0",
            "stdio:",
        ]:
            self.assertEqual(with_backlog(description), description)
        # An escaped '=' or ':' does not make a backlog key, as Twisted reads it.
        self.assertEqual(with_backlog(r"unix:/tmp/backlog\=5"),
                         r"unix:/tmp/backlog\=5:backlog=1024")

    def test_listeners_listen_with_it(self):
        """The daemon's listeners pass the backlog to the reactor, or the one given."""
        data = Path(self.mktemp())
        options = Options()
        options.parseOptions([
            "--data-dir", str(data), "--listen", "tcp:4001",
            "--listen", "tcp:4002:backlog=7:interface=127.0.0.1",
            "--listen", r"tcp6:4003:interface=\:\:1",
            "--listen", f"unix:{data}/chatd.sock",
        ])
        memory = MemoryReactorClock()
        svc = makeService(options, memory)
        svc.privilegedStartService()
        svc.startService()
        self.addCleanup(svc.stopService)
        self.assertEqual([(port, backlog, iface) for port, _, backlog, iface in memory.tcpServers],
                         [(4001, 1024, ""), (4002, 7, "127.0.0.1"), (4003, 1024, "::1")])
        self.assertEqual([(path, backlog) for path, _, backlog, _, _ in memory.unixServers],
                         [(f"{data}/chatd.sock", 1024)])


def _stopped(pid: int) -> bool:
    """True once the process is stopped by a signal (state T in /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


class BurstTests(unittest.TestCase):
    def setUp(self):
        somaxconn = Path("/proc/sys/net/core/somaxconn")
        if not somaxconn.exists():
            raise unittest.SkipTest("needs Linux's /proc/sys/net/core/somaxconn")
        if int(somaxconn.read_text()) <= BURST:
            raise unittest.SkipTest(f"net.core.somaxconn caps every backlog below {BURST}")
        self.server = Server(Path(self.mktemp()).resolve(), max_per_ip=100).start()
        self.addCleanup(self.server.kill)
        self.socks: list[socket.socket] = []
        self.addCleanup(lambda: [s.close() for s in self.socks])

    def test_every_client_of_a_burst_is_answered(self):
        """300 clients connecting at once each get the welcome or a `! ` refusal.

        The server is stopped (SIGSTOP) while the connections are made, as a
        busy server would be, so they all meet its listen queue at once
        whatever the speed of the machine.  With a backlog of 50 the kernel
        drops the handshakes that overflow it, and those clients, connected
        as far as they know, wait forever for a server that never saw them.
        """
        proc = self.server.proc
        proc.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: _stopped(proc.pid), "the server to stop")
            for _ in range(BURST):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self.socks.append(sock)
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", self.server.port))
        finally:
            proc.send_signal(signal.SIGCONT)
        first_lines = self.read_first_lines(DEADLINE)
        unanswered = BURST - len(first_lines)
        self.assertEqual(unanswered, 0,
                         f"{unanswered} of {BURST} clients got no line in {DEADLINE} s")
        self.assertEqual(set(first_lines), {"* welcome to chatd",
                                            "! too many connections from your address"})

    def read_first_lines(self, timeout: float) -> list[str]:
        """The first line each socket gets, for those that get one in time."""
        lines = []
        with selectors.DefaultSelector() as selector:
            for sock in self.socks:
                selector.register(sock, selectors.EVENT_READ, [b""])
            end = time.monotonic() + timeout
            while selector.get_map() and time.monotonic() < end:
                for key, _ in selector.select(max(0.0, end - time.monotonic())):
                    buf = key.data
                    try:
                        data = key.fileobj.recv(4096)
                    except OSError:
                        data = b""
                    buf[0] += data
                    if b"\r\n" in buf[0] or not data:
                        selector.unregister(key.fileobj)
                        if b"\r\n" in buf[0]:
                            lines.append(buf[0].split(b"\r\n", 1)[0].decode())
        return lines
