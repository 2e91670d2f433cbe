"""The Prometheus endpoint: its options, its page over loopback HTTP, the lag meter."""

import re
from pathlib import Path

from twisted.internet import defer, reactor, task
from twisted.internet.protocol import Protocol
from twisted.trial import unittest
from twisted.web.client import Agent, ResponseDone

from chatd import config
from chatd.core.auth import AdminFile
from chatd.metrics import LagMeter
from chatd.tap import Listener, Options, makeService
from tests.test_loopback import LoopbackClients


class Body(Protocol):
    """Collects a response body (readBody warns with the Agent's transport)."""

    def __init__(self):
        self.data = b""
        self.done = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason) -> None:
        if reason.check(ResponseDone):
            self.done.callback(self.data)
        else:
            self.done.errback(reason)


def metric(page: str, name: str) -> float:
    """The value of the sample called name on a /metrics page."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", page, re.MULTILINE)
    assert match, f"{name} not on the page:\n{page}"
    return float(match.group(1))


class MetricsOptionTests(unittest.TestCase):
    def parse(self, *argv):
        options = Options()
        options.parseOptions(list(argv))
        return options.settings

    def test_off_by_default(self):
        """Without --metrics or [metrics] there is no metrics endpoint."""
        self.assertEqual(self.parse().metrics, [])

    def test_config_table_and_option(self):
        """[metrics] listen sets the endpoints; --metrics (repeatable) wins over it."""
        path = Path(self.mktemp())
        path.write_text('[metrics]\nlisten = ["tcp:9100:interface=127.0.0.1"]\n')
        self.assertEqual(self.parse("--config", str(path)).metrics,
                         ["tcp:9100:interface=127.0.0.1"])
        self.assertEqual(self.parse("--config", str(path), "--metrics", "tcp:1",
                                    "--metrics", "tcp:2").metrics, ["tcp:1", "tcp:2"])

    def test_bad_table_is_an_error(self):
        """A typo or a wrong type in [metrics] is refused, not ignored."""
        path = Path(self.mktemp())
        for text, expected in [
            ("[metrics]\nlistn = []\n", "unknown key metrics.listn"),
            ('[metrics]\nlisten = "tcp:9100"\n', "metrics.listen must be a list"),
            ("[metrics]\nlisten = [9100]\n", "metrics.listen must be a list"),
            ("metrics = 3\n", "metrics must be a table"),
        ]:
            path.write_text(text)
            with self.assertRaises(config.ConfigError) as caught:
                config.load(path)
            self.assertIn(expected, str(caught.exception))


class LagMeterTests(unittest.TestCase):
    def test_lag_is_how_late_the_timer_ran(self):
        """A reactor blocked past a tick's due time shows as lag; an idle one shows none."""
        clock = task.Clock()
        meter = LagMeter(clock, interval=1.0)
        meter.start()
        self.addCleanup(meter.stop)
        clock.advance(1)
        self.assertEqual(meter.lag, 0.0)
        clock.advance(3.25)  # blocked: the tick due at 2 runs at 4.25
        self.assertAlmostEqual(meter.lag, 2.25)
        clock.advance(0.75)  # the next tick, on time at 5
        self.assertEqual(meter.lag, 0.0)


class MetricsEndpointTests(LoopbackClients, unittest.TestCase):
    """The whole service with --metrics on a loopback port; chat moves the counters."""

    def setUp(self):
        self.data = Path(self.mktemp())
        AdminFile(self.data / "admins").set_password("boss", "boss-password")
        options = Options()
        options.parseOptions(["--listen", "tcp:0:interface=127.0.0.1",
                              "--metrics", "tcp:0:interface=127.0.0.1",
                              "--data-dir", str(self.data)])
        self.service = makeService(options, reactor)
        self.service.startService()
        listeners = [s for s in self.service if isinstance(s, Listener)]
        self.port = listeners[0].address().port
        group = [s for s in self.service if not isinstance(s, Listener)][-1]
        metrics = next(s for s in group if isinstance(s, Listener))
        self.metrics_port = metrics.address().port
        self.clients = []

    @defer.inlineCallbacks
    def get(self, path: str):
        url = f"http://127.0.0.1:{self.metrics_port}{path}".encode()
        response = yield Agent(reactor).request(b"GET", url)
        reader = Body()
        response.deliverBody(reader)
        body = yield reader.done
        return response.code, response.headers, body.decode()

    @defer.inlineCallbacks
    def test_counters_move_when_users_chat(self):
        """/metrics shows logins, lines and bytes going up as two users chat."""
        code, headers, before = yield self.get("/metrics")
        self.assertEqual(code, 200)
        self.assertTrue(headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain"))
        self.assertEqual(metric(before, "chatd_logins_total"), 0)
        alice = yield self.connect("alice")
        bob = yield self.connect("bob")
        yield alice.expect("* bob joined")
        alice.say("hi bob", "how are you")
        yield bob.expect("<alice> how are you")
        _, _, after = yield self.get("/metrics")
        self.assertEqual(metric(after, "chatd_logins_total"), 2)
        self.assertEqual(metric(after, "chatd_connections"), 2)
        self.assertEqual(metric(after, "chatd_members"), 2)
        self.assertGreaterEqual(metric(after, "chatd_lines_received_total"), 4)
        self.assertGreater(metric(after, "chatd_lines_delivered_total"),
                           metric(before, "chatd_lines_delivered_total") + 2)
        self.assertGreater(metric(after, "chatd_bytes_sent_total"),
                           metric(before, "chatd_bytes_sent_total"))
        for name in ("chatd_failed_admin_logins_total", "chatd_flood_refusals_total",
                     "chatd_flood_kicks_total", "chatd_sendq_disconnects_total",
                     "chatd_bans", "chatd_reactor_lag_seconds"):
            self.assertGreaterEqual(metric(after, name), 0)

    @defer.inlineCallbacks
    def test_bans_and_refusals(self):
        """A ban shows in chatd_bans, and a refused login under its cause."""
        boss = yield self.connect("boss", "boss-password")
        boss.say("/ban mallory spam")
        yield boss.expect("* mallory was banned")
        again = yield self.connect()
        again.say("mallory")
        yield again.closed
        _, _, page = yield self.get("/metrics")
        self.assertEqual(metric(page, "chatd_bans"), 1)
        self.assertEqual(metric(page, 'chatd_refusals_total{cause="banned"}'), 1)

    @defer.inlineCallbacks
    def test_other_paths_are_not_found(self):
        """Only /metrics is served: every other path is a 404."""
        for path in ("/", "/metrics/x", "/metricsx", "/favicon.ico"):
            code, _, _ = yield self.get(path)
            self.assertEqual(code, 404, path)
