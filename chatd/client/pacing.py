"""Lines to the server no faster than its flood limit (docs/protocol.md, "Limits").

The server charges every non-blank line to a token bucket of `flood_burst`
tokens refilled at `flood_rate` per second; a line over it gets `! slow down`
and is dropped, and ten of those in 30 s are a kick.  A paste, or a file
piped into a bot, is many lines at once, so chatd-client queues what is
said and lets it out under a bucket of its own that is a little stricter:
one token is kept in reserve and it refills at RATE_SHARE of the server's
rate, because the network can bunch lines sent apart so that they reach
the server closer together than they left.

The client learns the server's numbers with `/limits` after login; until
the answer comes, lines wait (at most LIMITS_WAIT seconds); an older server
answers `! unknown command` and the defaults below, the server's own
defaults, are assumed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

DEFAULT_BURST = 5
DEFAULT_RATE = 2.0
RATE_SHARE = 0.9
LIMITS_WAIT = 5.0


class Pacer:
    """A queue of lines let out under the server's flood limit, in order.

    `write` puts one line on the wire.  Each queued line may carry `sent`,
    called once it is written (the terminal shows it as said then, not
    before).  Blank lines cost nothing, as on the server, but keep their
    place in the queue.
    """

    def __init__(self, clock: IReactorTime, write: Callable[[bytes], None],
                 burst: int = DEFAULT_BURST, rate: float = DEFAULT_RATE):
        self._clock = clock
        self._write = write
        self.burst, self.rate = burst, rate
        self._tokens = float(burst)  # the server's bucket is full on entering the room
        self._stamp = clock.seconds()
        self._queue: deque[tuple[bytes, Callable[[], None] | None]] = deque()
        self._wake: IDelayedCall | None = None
        self._held: IDelayedCall | None = None
        self._pumping = False  # a sent() callback may queue more: the loop takes it

    @property
    def pending(self) -> int:
        """Lines queued and not yet written."""
        return len(self._queue)

    def send(self, line: bytes, sent: Callable[[], None] | None = None) -> None:
        self._queue.append((line, sent))
        self._pump()

    def hold(self) -> None:
        """Write nothing until set_limits() (or LIMITS_WAIT seconds)."""
        if self._held is None:
            self._held = self._clock.callLater(LIMITS_WAIT, self.release)

    def release(self) -> None:
        if self._held is not None:
            if self._held.active():
                self._held.cancel()
            self._held = None
            self._pump()

    def set_limits(self, burst: int, rate: float) -> None:
        """The server's numbers: the bucket keeps what was spent of it so far."""
        self._refill()
        self._tokens = max(0.0, min(float(burst), self._tokens + burst - self.burst))
        self.burst, self.rate = burst, rate
        self.release()

    def drop(self) -> int:
        """Forget what is queued (leaving at once); how many lines that was."""
        dropped = len(self._queue)
        self._queue.clear()
        return dropped

    def stop(self) -> None:
        self._queue.clear()
        for call in (self._wake, self._held):
            if call is not None and call.active():
                call.cancel()
        self._wake = self._held = None

    def _refill(self) -> None:
        now = self._clock.seconds()
        self._tokens = min(float(self.burst),
                           self._tokens + (now - self._stamp) * self.rate * RATE_SHARE)
        self._stamp = now

    def _floor(self) -> float:
        """Tokens needed to send: one, plus the reserve where the burst allows it."""
        return 2.0 if self.burst >= 2 else 1.0

    def _pump(self) -> None:
        if self._pumping or self._held is not None or (
                self._wake is not None and self._wake.active()):
            return
        self._wake = None
        self._pumping = True
        try:
            self._let_out()
        finally:
            self._pumping = False
        if self._queue:
            wait = (self._floor() - self._tokens) / (self.rate * RATE_SHARE)
            self._wake = self._clock.callLater(max(wait, 0.001), self._pump)

    def _let_out(self) -> None:
        """Write what the bucket allows now, in order."""
        self._refill()
        while self._queue:
            line, sent = self._queue[0]
            free = not line.strip()
            if not free and self._tokens < self._floor():
                break
            self._queue.popleft()
            if not free:
                self._tokens -= 1
            self._write(line)
            if sent is not None:
                sent()
