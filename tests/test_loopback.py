"""Several real clients over loopback TCP against the whole service."""

from pathlib import Path

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.protocols.basic import LineReceiver
from twisted.trial import unittest

from chatd.core.auth import AdminFile
from chatd.tap import Listener, Options, makeService

TIMEOUT = 10


class LineClient(LineReceiver):
    """A test client that records lines and lets a test wait for one."""

    delimiter = b"\r\n"

    def __init__(self):
        self.lines: list[str] = []
        self._waiting: list[tuple[callable, defer.Deferred]] = []
        self.closed = defer.Deferred()

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line.decode("utf-8"))
        self._check()

    def _check(self) -> None:
        for item in list(self._waiting):
            match, d = item
            for i, line in enumerate(self.lines):
                if match(line):
                    del self.lines[: i + 1]
                    self._waiting.remove(item)
                    d.callback(line)
                    break

    def expect(self, prefix: str) -> defer.Deferred:
        """Fires with the first line starting with prefix (dropping those before it)."""
        d = defer.Deferred()
        self._waiting.append((lambda line: line.startswith(prefix), d))
        self._check()
        return d.addTimeout(TIMEOUT, reactor)

    def say(self, *lines: str) -> None:
        for line in lines:
            self.sendLine(line.encode("utf-8"))

    def connectionLost(self, reason=protocol.connectionDone):
        self.closed.callback(None)


class LoopbackClients:
    """Real line clients for a TestCase whose setUp starts the service
    (self.service) listening on self.port; they are closed in tearDown."""

    clients: list[LineClient]

    @defer.inlineCallbacks
    def tearDown(self):
        for client in self.clients:
            if client.transport.connected:
                client.transport.loseConnection()
        yield defer.DeferredList([c.closed for c in self.clients])
        yield self.service.stopService()

    @defer.inlineCallbacks
    def connect(self, name=None, password=None):
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
        client = yield connectProtocol(endpoint, LineClient())
        self.clients.append(client)
        yield client.expect("? username")
        if name is not None:
            client.say(name)
            if password is not None:
                yield client.expect("? password")
                client.say(password)
            yield client.expect("* online")
        return client


class LoopbackTests(LoopbackClients, unittest.TestCase):
    def setUp(self):
        self.data = Path(self.mktemp())
        AdminFile(self.data / "admins").set_password("boss", "boss-password")
        options = Options()
        options.parseOptions(["--listen", "tcp:0:interface=127.0.0.1",
                              "--data-dir", str(self.data)])
        self.service = makeService(options, reactor)
        self.service.startService()
        listener = next(s for s in self.service if isinstance(s, Listener))
        self.port = listener.address().port
        self.clients: list[LineClient] = []

    @defer.inlineCallbacks
    def test_three_people_story(self):
        """Join, chat, kick and rejoin, ban and refusal, with three real clients."""
        boss = yield self.connect("boss", "boss-password")
        alice = yield self.connect("alice")
        bob = yield self.connect("bob")
        yield alice.expect("* bob joined")
        alice.say("hi bob")
        self.assertEqual((yield bob.expect("<alice>")), "<alice> hi bob")
        self.assertEqual((yield boss.expect("<alice>")), "<alice> hi bob")

        bob.say("/kick alice")
        self.assertEqual((yield bob.expect("!")), "! permission denied")

        boss.say("/kick bob calm down")
        self.assertEqual((yield bob.expect("!")), "! you were kicked by boss: calm down")
        yield bob.closed
        self.assertEqual((yield alice.expect("* bob")), "* bob was kicked by boss: calm down")

        bob = yield self.connect("bob")
        yield alice.expect("* bob joined")
        boss.say("/ban bob spam")
        self.assertEqual((yield bob.expect("!")), "! you were banned by boss: spam")
        yield bob.closed
        again = yield self.connect()
        again.say("Bob")
        self.assertEqual((yield again.expect("!")), "! you are banned: spam")
        yield again.closed

    @defer.inlineCallbacks
    def test_wrong_password_closes(self):
        """A wrong admin password is refused and the connection closed."""
        client = yield self.connect()
        client.say("boss")
        yield client.expect("? password")
        client.say("not it")
        self.assertEqual((yield client.expect("!")), "! wrong password")
        yield client.closed

    @defer.inlineCallbacks
    def test_vanishing_clients_disturb_nobody(self):
        """Clients dropping mid-login and mid-line leave the others chatting."""
        alice = yield self.connect("alice")
        bob = yield self.connect("bob")
        steps = [(b"", None), (b"carol\r\n", "* online"), (b"boss\n", "? password"),
                 (b"dave\nhalf a li", "* online")]
        for data, reply in steps:
            ghost = yield self.connect()
            ghost.transport.write(data)
            if reply:
                yield ghost.expect(reply)
            ghost.transport.abortConnection()
            yield ghost.closed
        self.assertEqual((yield bob.expect("* carol")), "* carol joined")
        self.assertEqual((yield bob.expect("* carol")), "* carol left")
        self.assertEqual((yield bob.expect("* dave left")), "* dave left")
        alice.say("still here")
        self.assertEqual((yield bob.expect("<")), "<alice> still here")

    @defer.inlineCallbacks
    def test_shutdown_notice(self):
        """Stopping the service tells every client and closes them all."""
        alice = yield self.connect("alice")
        waiting = yield self.connect()
        yield self.service.stopService()
        self.service.startService = lambda: None
        for client in (alice, waiting):
            self.assertEqual((yield client.expect("*")), "* server shutting down")
            yield client.closed
        self.service.stopService = lambda: defer.succeed(None)
