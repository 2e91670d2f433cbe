"""The write side of one connection: everything sent to it, in order,
within the send-queue limit.

Fan-out writes the same bytes object to every member, so this is the hot
path.  On a plain TCP transport the outbox is registered as a pull
producer: Twisted calls resumeProducing() whenever the write buffer has
drained, so the outbox knows when nothing is queued and can send() on the
socket at once, queueing only what the kernel did not take.  That saves
Twisted a copy of the buffer and two epoll changes per write.  Other
transports (TLS) get ordinary writes, and the outbox is their push
producer, told when their buffer is full.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from twisted.internet import tcp
from twisted.internet.interfaces import IPullProducer, ITransport
from zope.interface import implementer

from chatd.config import Limits


@implementer(IPullProducer)
class Outbox:
    """Writes for one connection; the producer registered with its transport.

    What waits for the client is counted against limits.sendq (read at each
    use, so a reload applies at once); past it, overflowed() is called once
    and nothing more is policed.
    """

    # One per connection: slots keep an idle client small (make bench, memory).
    __slots__ = ("_transport", "_limits", "_overflowed", "_socket", "streaming",
                 "_queued", "_unsent", "_congested", "_closed")

    def __init__(self, transport: ITransport, limits: Limits,
                 overflowed: Callable[[], None]):
        self._transport = transport
        self._limits = limits
        self._overflowed = overflowed
        handle = transport.getHandle() if hasattr(transport, "getHandle") else None
        if isinstance(transport, tcp.Connection) and isinstance(handle, socket.socket):
            self._socket: socket.socket | None = handle
        else:
            self._socket = None
        # How to register it: a pull producer where it can send() itself.
        self.streaming = self._socket is None
        self._queued = True  # until the transport says its buffer is empty
        self._unsent = 0  # bytes written since the buffer was last empty
        self._congested = False  # push-producer transports: paused by the transport
        self._closed = False

    def write(self, data: bytes) -> None:
        if self._queued or self._socket is None or self._closed:
            self._queue(data)
            return
        try:
            sent = self._socket.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = 0  # the transport finds out and closes on its next write
        if sent < len(data):
            self._queued = True
            self._queue(data[sent:] if sent else data)

    def _queue(self, data: bytes) -> None:
        """Hand data to the transport's buffer, within the sendq limit.

        What waits for this client is counted from the last time the
        transport said its buffer was empty (resumeProducing), so a client
        that reads keeps resetting it and one that does not is cut off.
        """
        if self._socket is not None or self._congested:
            self._unsent += len(data)
            if self._unsent > self._limits.sendq and not self._closed:
                self._closed = True
                self._overflowed()
                return
        self._transport.write(data)

    def close(self) -> None:
        """The connection is closing: what follows goes to the transport's
        buffer as it comes, no longer counted against sendq."""
        self._closed = True

    def resumeProducing(self) -> None:
        """The transport's write buffer is empty (IPullProducer), or, on
        transports where we are a push producer, it has drained."""
        self._queued = False
        self._congested = False
        self._unsent = 0

    def pauseProducing(self) -> None:
        """Push-producer transports (TLS): the buffer is full; count from here."""
        self._congested = True
        self._unsent = 0

    def stopProducing(self) -> None:
        self._queued = True
