"""What the server has done: plain counters, and their recent history.

Stats is a plain object the room and the protocol bump with integer adds
as things happen (no lock, no library call on the hot path).  It knows no
wire format: /stats (chatd.line.commands) and the Prometheus endpoint
(chatd.metrics) each read it and render it their own way.

A connection that never joins the room and is closed by the server counts
once under `refusals` by cause; a member who leaves, whoever closes the
connection, counts once under `disconnects` by cause.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import NamedTuple

from twisted.application import service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

# /stats's "last minute" is measured against a snapshot this old, or older.
WINDOW = 60.0
SNAPSHOT_EVERY = 10.0


class Snapshot(NamedTuple):
    at: float
    lines_received: int
    lines_delivered: int


class Stats:
    """Counters since the server started (started: on the server's clock)."""

    def __init__(self, started: float = 0.0):
        self.started = started
        self.logins = 0
        self.failed_admin_logins = 0
        self.lines_received = 0
        # Lines handed to members: a broadcast line counts once per member who got it.
        self.lines_delivered = 0
        self.bytes_sent = 0
        self.flood_refusals = 0  # "! slow down"
        self.flood_kicks = 0
        self.sendq_disconnects = 0
        self.peak_users = 0
        self.refusals: Counter[str] = Counter()
        self.disconnects: Counter[str] = Counter()
        self._history: deque[Snapshot] = deque([Snapshot(started, 0, 0)],
                                               maxlen=int(WINDOW / SNAPSHOT_EVERY) + 1)

    def joined(self, members: int) -> None:
        """Someone logged in; members is how many are in the room now."""
        self.logins += 1
        if members > self.peak_users:
            self.peak_users = members

    def refused(self, cause: str) -> None:
        """The server closed a connection that had not joined (cause: a short word)."""
        self.refusals[cause] += 1

    def disconnected(self, cause: str, count: int = 1) -> None:
        """count members left the room (cause: quit, closed, kicked, flood...)."""
        self.disconnects[cause] += count

    # -- history, for "in the last minute" ----------------------------

    def snapshot(self, now: float) -> None:
        """Remember the counters as they are at now (every SNAPSHOT_EVERY seconds)."""
        self._history.append(Snapshot(now, self.lines_received, self.lines_delivered))

    def last_minute(self, now: float) -> tuple[int, int, float]:
        """(lines received, lines delivered, over how many seconds) lately.

        Measured against the newest snapshot at least WINDOW seconds old,
        so over 60 to 70 seconds; just after start, since the start.
        """
        base = self._history[0]
        for snap in self._history:
            if snap.at > now - WINDOW:
                break
            base = snap
        return (self.lines_received - base.lines_received,
                self.lines_delivered - base.lines_delivered, now - base.at)


class StatsService(service.Service):
    """Takes the snapshots behind /stats's last minute, on the injected clock."""

    def __init__(self, stats: Stats, clock: IReactorTime):
        self.stats = stats
        self._clock = clock
        self._loop: LoopingCall | None = None

    def startService(self) -> None:
        service.Service.startService(self)
        self._loop = LoopingCall(lambda: self.stats.snapshot(self._clock.seconds()))
        self._loop.clock = self._clock
        self._loop.start(SNAPSHOT_EVERY, now=False)

    def stopService(self):
        service.Service.stopService(self)
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None


def format_uptime(seconds: float) -> str:
    """3725 -> '1h 2m 5s': every unit from the largest that is not zero."""
    seconds = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size or parts:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    parts.append(f"{seconds}s")
    return " ".join(parts)
