"""The admission gate: who may connect and try to log in, for every front end.

One Gate is shared by all front ends and listeners, so the limits hold
for the server as a whole: at most `limits.max_clients` connections, at
most `limits.max_per_ip` from one address, the failed-login window
(LoginFailures) and a flood bucket per connection (TokenBucket).  The
limits are read at each use from the one shared Limits object, so a reload
applies at once.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime

from chatd.config import Limits
from chatd.core.limits import LoginFailures, TokenBucket
from chatd.core.stats import Stats


class Gate:
    def __init__(self, limits: Limits, clock: IReactorTime, stats: Stats):
        self.limits = limits
        self.stats = stats
        self._clock = clock
        self.failures = LoginFailures(clock, limits)
        self.count = 0  # connections admitted and not released
        self._per_host: dict[str, int] = {}

    def admit(self, host: str) -> str | None:
        """Count a new connection from host in, or say why it is refused."""
        if self.count >= self.limits.max_clients:
            self.stats.refused("server full")
            return "server full"
        if self._per_host.get(host, 0) >= self.limits.max_per_ip:
            self.stats.refused("per-ip limit")
            return "too many connections from your address"
        self.count += 1
        self._per_host[host] = self._per_host.get(host, 0) + 1
        return None

    def release(self, host: str) -> None:
        """A connection admitted from host has closed."""
        self.count -= 1
        left = self._per_host.get(host, 1) - 1
        if left > 0:
            self._per_host[host] = left
        else:
            self._per_host.pop(host, None)

    @property
    def per_host(self) -> dict[str, int]:
        """Connections admitted and not released, by address (a copy)."""
        return dict(self._per_host)

    def flood_bucket(self) -> TokenBucket:
        """A fresh flood bucket for one connection (or one login)."""
        return TokenBucket(self._clock, self.limits)
