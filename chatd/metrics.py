"""The Prometheus endpoint: `--metrics ENDPOINT` serves /metrics over HTTP.

The counters live in a plain Stats object that the room and the protocol
bump as things happen; nothing here runs on the hot path.  At scrape time
a collector reads Stats, the connections and the bans, and
prometheus_client writes the text format.

The page is rendered on the reactor thread, not in a worker thread as
prometheus_client.twisted.MetricsResource would: the collector reads the
room's dicts and counters, which only the reactor thread may touch while
they change.  A scrape costs well under a millisecond.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from twisted.application import service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web import pages, resource, server

from chatd.core.stats import Stats

log = Logger()

LAG_EVERY = 1.0

# (metric name without chatd_ and _total, Stats attribute, help)
COUNTERS = [
    ("logins", "logins", "Users who logged in to the room."),
    ("failed_admin_logins", "failed_admin_logins", "Admin logins refused for a wrong password."),
    ("lines_received", "lines_received", "Lines read from clients."),
    ("lines_delivered", "lines_delivered",
     "Lines handed to members (a broadcast counts once per member who got it)."),
    ("bytes_sent", "bytes_sent", "Bytes handed to clients' connections."),
    ("flood_refusals", "flood_refusals", "Lines refused with '! slow down'."),
    ("flood_kicks", "flood_kicks", "Connections closed for flooding."),
    ("sendq_disconnects", "sendq_disconnects",
     "Connections closed because their send queue overflowed."),
]


class LagMeter:
    """How late the reactor runs a timer: a LoopingCall's due time vs now."""

    def __init__(self, clock: IReactorTime, interval: float = LAG_EVERY):
        self.lag = 0.0
        self._clock = clock
        self._interval = interval
        self._start = 0.0
        self._intervals = 0
        self._loop = LoopingCall.withCount(self._tick)
        self._loop.clock = clock

    def start(self) -> None:
        self._start = self._clock.seconds()
        self._intervals = 0
        self._loop.start(self._interval, now=False)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def _tick(self, intervals: int) -> None:
        # This tick was due one interval after the last; withCount says how
        # many have passed since, so a reactor blocked for several
        # intervals shows the whole wait, and the ticks it skipped are counted.
        due = self._start + (self._intervals + 1) * self._interval
        self._intervals += intervals
        self.lag = max(0.0, self._clock.seconds() - due)


class ChatCollector(Collector):
    """Reads the server's state when Prometheus scrapes."""

    def __init__(self, stats: Stats, connections: Callable[[], int],
                 members: Callable[[], int], bans: Callable[[], int], lag: LagMeter):
        self._stats = stats
        self._gauges = [
            ("connections", "Open client connections, logged in or not.", connections),
            ("members", "Users in the room.", members),
            ("bans", "Bans in force.", bans),
            ("reactor_lag_seconds", "How late the reactor last ran a 1 s timer.",
             lambda: lag.lag),
        ]

    def collect(self) -> Iterable[Metric]:
        stats = self._stats
        for name, attribute, text in COUNTERS:
            yield CounterMetricFamily(f"chatd_{name}", text, value=getattr(stats, attribute))
        for name, text, read in self._gauges:
            yield GaugeMetricFamily(f"chatd_{name}", text, value=read())
        for name, counts, text in (
            ("refusals", stats.refusals, "Connections closed before login, by cause."),
            ("disconnects", stats.disconnects, "Members who left the room, by cause."),
        ):
            family = CounterMetricFamily(f"chatd_{name}", text, labels=["cause"])
            for cause, count in sorted(counts.items()):
                family.add_metric([cause], count)
            yield family


class MetricsPage(resource.Resource):
    """GET /metrics: the registry in the format the scraper asks for."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry):
        super().__init__()
        self._registry = registry

    def render_GET(self, request) -> bytes:
        accept = request.getHeader("accept")
        encode, content_type = choose_encoder(accept)
        request.setHeader("content-type", content_type)
        return encode(self._registry)


class MetricsRoot(resource.Resource):
    """/metrics and nothing else: every other path is a 404."""

    def __init__(self, registry: CollectorRegistry):
        super().__init__()
        self._page = MetricsPage(registry)

    def getChild(self, path: bytes, request) -> resource.Resource:
        if path == b"metrics" and not request.postpath:
            return self._page
        return pages.notFound()

    def render(self, request) -> bytes:
        return pages.notFound().render(request)


class QuietSite(server.Site):
    """A scrape every few seconds would flood the log with access lines."""

    noisy = False

    def log(self, request) -> None:
        pass


class MetricsService(service.Service):
    """Measures the reactor's lag while the server runs."""

    def __init__(self, lag: LagMeter, endpoints: list[str]):
        self._lag = lag
        self._endpoints = endpoints

    def startService(self) -> None:
        service.Service.startService(self)
        self._lag.start()
        for endpoint in self._endpoints:
            log.info("chatd metrics on {endpoint} at /metrics", endpoint=endpoint)

    def stopService(self):
        service.Service.stopService(self)
        self._lag.stop()


def make_site(collector: ChatCollector) -> server.Site:
    """An HTTP site serving the collector's metrics at /metrics, from its own registry."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return QuietSite(MetricsRoot(registry))
