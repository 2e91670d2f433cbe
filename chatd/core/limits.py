"""Small clock-driven counters behind the abuse limits (docs/protocol.md).

Each takes an IReactorTime, so tests advance a task.Clock instead of
sleeping, and each keeps a bounded amount of state whatever a client does.
They read their limits from the one shared Limits object at each use, never
a copy, so a reload (chatd.reload) applies to every connection at once.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from chatd.config import Limits


class TokenBucket:
    """Up to `limits.flood_burst` events at once, then `limits.flood_rate` per second."""

    __slots__ = ("_clock", "_limits", "_tokens", "_stamp")

    def __init__(self, clock: IReactorTime, limits: Limits):
        self._clock = clock
        self._limits = limits
        self._tokens = float(limits.flood_burst)
        self._stamp = clock.seconds()

    def take(self) -> bool:
        """Spend one token if there is one; False means over the limit."""
        now = self._clock.seconds()
        limits = self._limits
        self._tokens = min(limits.flood_burst,
                           self._tokens + (now - self._stamp) * limits.flood_rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class Recent:
    """How many events happened in the last `window` seconds.

    The limit and window are given at each call (they may change on reload);
    at most limit+1 times are kept, which is all a limit check needs.
    """

    __slots__ = ("_clock", "_times")

    def __init__(self, clock: IReactorTime):
        self._clock = clock
        self._times: deque[float] = deque()

    def add(self, limit: int, window: float) -> int:
        """Record an event now; return how many fall within the window."""
        self._times.append(self._clock.seconds())
        while len(self._times) > limit + 1:
            self._times.popleft()
        return self.count(window)

    def count(self, window: float) -> int:
        """How many events fall within the window now."""
        now = self._clock.seconds()
        while self._times and self._times[0] <= now - window:
            self._times.popleft()
        return len(self._times)


class LoginFailures:
    """Wrong admin passwords per address, and which addresses are shut out.

    After `limits.login_failures` failures within `limits.login_failure_window`
    seconds an address is refused for that window from its last failure.  At
    most `max_addresses` are remembered (the oldest are forgotten first), so a
    spray of addresses cannot grow memory without bound.
    """

    def __init__(self, clock: IReactorTime, limits: Limits, max_addresses: int = 10000):
        self._clock = clock
        self._limits = limits
        self._max = max_addresses
        self._recent: OrderedDict[str, Recent] = OrderedDict()
        self._blocked_until: OrderedDict[str, float] = OrderedDict()
        self._checking: dict[str, int] = {}  # password checks under way

    def begin(self, address: str) -> bool:
        """A password check starts; False if the address may not try now.

        Checks under way count as failures to come, so guessing on many
        connections at once gets no more tries than guessing one by one.
        """
        limits = self._limits
        recent = self._recent.get(address)
        tried = ((recent.count(limits.login_failure_window) if recent else 0)
                 + self._checking.get(address, 0))
        if self.blocked(address) or tried >= limits.login_failures:
            return False
        self._checking[address] = self._checking.get(address, 0) + 1
        return True

    def end(self, address: str, failed: bool) -> None:
        left = self._checking.pop(address, 1) - 1
        if left > 0:
            self._checking[address] = left
        if failed:
            self.failed(address)

    def blocked(self, address: str) -> bool:
        until = self._blocked_until.get(address)
        if until is None:
            return False
        if self._clock.seconds() < until:
            return True
        del self._blocked_until[address]
        return False

    def tracked(self) -> int:
        """How many addresses the larger of the failure and shut-out tables holds.

        max_addresses caps each table, so this never exceeds it.
        """
        return max(len(self._recent), len(self._blocked_until))

    def failed(self, address: str) -> bool:
        """Record a failure; True if the address is now shut out."""
        limit, window = self._limits.login_failures, self._limits.login_failure_window
        recent = self._recent.pop(address, None) or Recent(self._clock)
        self._recent[address] = recent
        if len(self._recent) > self._max:
            self._recent.popitem(last=False)
        if recent.add(limit, window) < limit:
            return False
        self._blocked_until.pop(address, None)
        self._blocked_until[address] = self._clock.seconds() + window
        if len(self._blocked_until) > self._max:
            self._blocked_until.popitem(last=False)
        return True


class IdleTimer:
    """Calls `on_idle` once nothing has been heard for limits.idle_timeout seconds.

    heard() only stores the time, so it costs next to nothing per line; the
    one DelayedCall wakes when the timeout could first have passed and, if
    something was heard since, sleeps again for what is left.  The limit is
    read each time, so a changed one applies from the next wake (restart()
    applies it at once); once it is 0 (off) the timer stops.
    """

    __slots__ = ("_clock", "_limits", "_on_idle", "_heard", "_call")

    def __init__(self, clock: IReactorTime, limits: Limits, on_idle: Callable[[], None]):
        self._clock = clock
        self._limits = limits
        self._on_idle = on_idle
        self._heard = clock.seconds()
        self._call: IDelayedCall | None = None

    def heard(self) -> None:
        self._heard = self._clock.seconds()

    def start(self) -> None:
        """Start watching, if the timeout is on and not watching already.

        The first wake is when the timeout would pass counting from the
        last thing heard, so restarting after a changed limit is exact.
        """
        timeout = self._limits.idle_timeout
        if self._call is None and timeout > 0:
            left = max(0.0, self._heard + timeout - self._clock.seconds())
            self._call = self._clock.callLater(left, self._wake)

    def restart(self) -> None:
        """The timeout changed: wake for the new value, or stop if it is 0."""
        self.stop()
        self.start()

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _wake(self) -> None:
        self._call = None
        timeout = self._limits.idle_timeout
        if timeout <= 0:
            return
        left = self._heard + timeout - self._clock.seconds()
        if left > 0:
            self._call = self._clock.callLater(left, self._wake)
        else:
            self._on_idle()
