"""Several real `twistd -n chatd` nodes clustered through one real redis-server.

Each node is a hostile-suite `Server` (its own data dir, config file, log
and loopback port) started with `--cluster redis://127.0.0.1:PORT/0 --node
NAME`, and a config file with `[cluster] ttl = 3` so that a dead node's
users are gone from the others within seconds.  A node is ready once its
log says `cluster link up`.  Every node has the same two admins, `boss` and
`root` (an admin's name is unique across the cluster like any other, so a
test that wants an admin on each of two nodes logs in one of each).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from twisted.trial import unittest

from chatd.core.auth import AdminFile
from tests.helpers_hostile import ADMIN_PASSWORD, DEADLINE, Client, Server, wait_for
from tests.helpers_redis import RedisServer
from tests.test_twistd import Client as LineClient
from tests.test_twistd import free_port

TTL = 3  # [cluster] ttl: seconds a dead node's users stay listed at most
ROOT = "root"  # the second admin


class Node(Server):
    """One chatd node of a cluster; `irc=True` also opens an IRC listener."""

    def __init__(self, directory: Path, redis: RedisServer, name: str,
                 history: int = 0, irc: bool = False):
        super().__init__(directory, history=history)
        AdminFile(self.data / "admins").set_password(ROOT, ADMIN_PASSWORD)
        self.redis = redis
        self.name = name
        self.irc_port = free_port() if irc else None

    def command(self, config: Path) -> list[str]:
        argv = super().command(config) + ["--cluster", self.redis.url, "--node", self.name]
        if self.irc_port is not None:
            argv += ["--irc", f"tcp:{self.irc_port}:interface=127.0.0.1"]
        return argv

    def write_config(self, motd: str = "") -> Path:
        config = super().write_config(motd)
        with config.open("a") as f:
            f.write(f"[cluster]\nttl = {TTL}\n")
        return config

    def start(self) -> Node:
        """Start and wait until it listens and its link to Redis is up."""
        super().start()
        wait_for(lambda: "cluster link up" in self.log() or self.proc.poll() is not None,
                 f"node {self.name}: cluster link up")
        assert self.proc.poll() is None, self.log()
        return self

    def sigkill(self) -> None:
        """Die as a crashed machine would: no goodbye to Redis or anyone."""
        self.kill(signal.SIGKILL)


class Cluster:
    """A redis-server and the nodes a test starts on it; all stopped at the end."""

    def __init__(self, case: unittest.TestCase):
        self.case = case
        self.dir = Path(case.mktemp()).resolve()
        self.redis = RedisServer(case, self.dir / "redis").start()
        self.nodes: dict[str, Node] = {}
        self.clients: list[Client | IrcClient] = []
        case.addCleanup(lambda: [client.close() for client in self.clients])

    def node(self, name: str, **kw) -> Node:
        """Start node name (a..z) on this cluster's Redis."""
        node = Node(self.dir / name, self.redis, name, **kw)
        self.nodes[name] = node
        self.case.addCleanup(node.kill)
        return node.start()

    def login(self, node: Node, name: str, password: str | None = None) -> Client:
        """A line user logged in on node, past its `* online` line."""
        client = node.login(name, password)
        self.clients.append(client)
        return client

    def connect_as(self, node: Node, name: str) -> tuple[Client, str]:
        """A new connection to node that gave name; the line it was answered."""
        client = node.connect()
        self.clients.append(client)
        client.until("? username")
        client.say(name)
        return client, client.line()

    def irc(self, node: Node, nick: str) -> IrcClient:
        """An IRC client registered on node's IRC listener, in #chatd."""
        client = IrcClient(node.irc_port, nick)
        self.clients.append(client)
        return client


class IrcClient(LineClient):
    """A raw IRC socket, as an IRC program is underneath: registered, in #chatd."""

    def __init__(self, port: int, nick: str):
        super().__init__(port)
        self.say(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
        self.until(f" 001 {nick} ")
        self.say("JOIN #chatd")
        self.until(" 366 ")  # end of NAMES: in the channel

    def until(self, part: str, timeout: float = DEADLINE) -> str:
        """Skip lines until one containing part; return it (fail after timeout)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            line = self.line()
            if part in line:
                return line
        raise AssertionError(f"no line with {part!r} within {timeout}s")
