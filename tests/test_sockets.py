"""Kernel socket settings: the listen backlog and keepalive on client sockets.

The burst test runs a real `twistd -n chatd`; the keepalive tests read the
options back from the server's side of real loopback connections.
"""

from __future__ import annotations

import selectors
import shutil
import signal
import socket
import time
from pathlib import Path

from twisted.internet import defer, protocol, reactor, ssl
from twisted.internet.endpoints import (
    SSL4ClientEndpoint,
    TCP4ClientEndpoint,
    connectProtocol,
    serverFromString,
)
from twisted.internet.testing import MemoryReactorClock
from twisted.trial import unittest

from chatd.sockets import with_backlog
from chatd.tap import Options, makeService
from tests.helpers import ProtocolHarness
from tests.helpers_client import make_cert
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


class FirstData(protocol.Protocol):
    """A client that only notes when the server first speaks and when it closes."""

    def __init__(self):
        self.spoke = defer.Deferred()
        self.closed = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        if not self.spoke.called:
            self.spoke.callback(data)

    def connectionLost(self, reason=protocol.connectionDone) -> None:
        self.closed.callback(None)


KEEPALIVE_OPTIONS = [
    (socket.SOL_SOCKET, "SO_KEEPALIVE"),
    (socket.IPPROTO_TCP, "TCP_KEEPIDLE"),
    (socket.IPPROTO_TCP, "TCP_KEEPINTVL"),
    (socket.IPPROTO_TCP, "TCP_KEEPCNT"),
    (socket.IPPROTO_TCP, "TCP_USER_TIMEOUT"),
    (socket.IPPROTO_TCP, "TCP_NODELAY"),
]


class KeepaliveTests(unittest.TestCase):
    """A peer that vanished without a FIN is found out by the kernel's probes."""

    @defer.inlineCallbacks
    def server_side_options(self, listen: str, client_endpoint, **limits):
        """The keepalive options on chatd's side of one real connection."""
        path = Path(self.mktemp())
        path.mkdir()
        harness = ProtocolHarness(path, **limits)
        port = yield serverFromString(reactor, listen).listen(harness.factory)
        self.addCleanup(port.stopListening)
        client = yield connectProtocol(client_endpoint(port.getHost().port), FirstData())
        yield client.spoke  # the greeting: connectionMade has run
        (conn,) = harness.factory.connections
        sock = conn.transport.getHandle()
        if not isinstance(sock, socket.socket):  # TLS: the TCP transport below
            sock = conn.transport.transport.getHandle()
        options = {name: sock.getsockopt(level, getattr(socket, name))
                   for level, name in KEEPALIVE_OPTIONS if hasattr(socket, name)}
        yield defer.DeferredList([harness.factory.shutdown(), client.closed])
        return options

    def expected(self, idle: int, interval: int, count: int) -> dict[str, int]:
        values = {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": idle, "TCP_KEEPINTVL": interval,
                  "TCP_KEEPCNT": count,
                  "TCP_USER_TIMEOUT": min((idle + interval * count) * 1000, 2**31 - 1),
                  "TCP_NODELAY": 1}
        return {name: value for name, value in values.items() if hasattr(socket, name)}

    def tcp_client(self, port: int):
        return TCP4ClientEndpoint(reactor, "127.0.0.1", port)

    @defer.inlineCallbacks
    def test_defaults(self):
        """By default the kernel probes a quiet peer after 60 s, every 10 s, 5
        times, and gives up on unacknowledged data after 110 s: the settings
        under which a dead peer's connection closes within two minutes."""
        options = yield self.server_side_options("tcp:0:interface=127.0.0.1",
                                                 self.tcp_client)
        self.assertEqual(options, self.expected(60, 10, 5))

    @defer.inlineCallbacks
    def test_configured(self):
        """keepalive_idle, keepalive_interval and keepalive_count set the probes."""
        options = yield self.server_side_options(
            "tcp:0:interface=127.0.0.1", self.tcp_client,
            keepalive_idle=7, keepalive_interval=3, keepalive_count=4)
        self.assertEqual(options, self.expected(7, 3, 4))

    @defer.inlineCallbacks
    def test_largest_values_still_admit_and_greet(self):
        """The largest keepalive settings the config accepts do not break a
        connection: it is greeted and counted against the limits (the user
        timeout they add up to is capped at what the kernel takes)."""
        options = yield self.server_side_options(
            "tcp:0:interface=127.0.0.1", self.tcp_client,
            keepalive_idle=32767, keepalive_interval=32767, keepalive_count=127)
        self.assertEqual(options, self.expected(32767, 32767, 127))

    @defer.inlineCallbacks
    def test_tls_clients_too(self):
        """A TLS connection's TCP socket gets keepalive (and no Nagle delay) too."""
        if shutil.which("openssl") is None:
            raise unittest.SkipTest("needs openssl (tests/ensure-tools.sh openssl)")
        directory = Path(self.mktemp())
        directory.mkdir()
        key, cert = make_cert(directory, "server", "IP:127.0.0.1")
        options = yield self.server_side_options(
            f"ssl:0:privateKey={key}:certKey={cert}:interface=127.0.0.1",
            lambda port: SSL4ClientEndpoint(reactor, "127.0.0.1", port,
                                            ssl.CertificateOptions()),
            keepalive_idle=9, keepalive_interval=2, keepalive_count=3)
        self.assertEqual(options, self.expected(9, 2, 3))
