"""The link to Redis: a connection for commands and one for the subscription.

Both are txredisapi protocols, kept up by Twisted's ClientService (which
reconnects with a backoff).  The link is up when both are connected and
the subscription is active; if either drops, the other is closed too, so
that both come back together and the node resynchronises once.
"""

from __future__ import annotations

# getaddrinfo imports this codec the first time it resolves a name, which
# is after twistd has dropped privileges (--uid): a Python installed where
# that user cannot read would then fail every connection, "unknown encoding".
import encodings.idna  # noqa: F401
from collections.abc import Callable

import txredisapi
from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import MultiService
from twisted.internet import protocol
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.ssl import optionsForClientTLS
from twisted.logger import Logger

from chatd.cluster.url import RedisAddress

log = Logger()

# No reply timeout: a node busy with a burst reads Redis's replies late,
# and a timeout then dropped a link that was fine (losing the batches on
# their way).  A Redis that stops answering is found by the heartbeat
# (chatd.cluster.heartbeat), which allows for a busy reactor.
CONNECT_TIMEOUT = 5


class _Commands(txredisapi.RedisProtocol):
    def connectionLost(self, why):
        super().connectionLost(why)
        self.factory.link._lost(self)


class _Subscriber(txredisapi.SubscriberProtocol):
    def messageReceived(self, pattern, channel, message):
        self.factory.link._message(message)

    def connectionLost(self, why):
        super().connectionLost(why)
        self.factory.link._lost(self)


class _Factory(protocol.Factory):
    """Builds one kind of txredisapi protocol with the address's password
    and database, and tells the link when it is ready."""

    isLazy = False  # read by txredisapi's protocol when AUTH fails
    noisy = False

    def __init__(self, link: Link, kind, address: RedisAddress):
        self.link, self.kind, self.address = link, kind, address

    def buildProtocol(self, addr):
        p = self.kind(charset="utf-8", replyTimeout=None, password=self.address.password,
                      dbid=self.address.db, username=self.address.username)
        p.factory = self
        p.whenConnected().addCallback(self.link._ready)
        return p

    def stopTrying(self) -> None:
        """txredisapi calls this when AUTH or SELECT fails: keep trying (an
        operator may fix Redis's side), slowly, as ClientService does."""

    def connectionError(self, message: str) -> None:
        log.error("cluster: {message}", message=message)


class _QuietService(ClientService):
    """ClientService logs every retry; during an outage that is a line every
    two seconds.  _Reporting says once why connecting fails instead."""

    _log = Logger(observer=lambda event: None)


class _Reporting:
    """An endpoint that logs why connecting failed, once until it works again."""

    def __init__(self, endpoint, address: RedisAddress):
        self._endpoint, self._address = endpoint, address
        self._said = False

    def connect(self, factory):
        d = self._endpoint.connect(factory)
        d.addCallbacks(self._worked, self._failed)
        return d

    def _worked(self, p):
        self._said = False
        return p

    def _failed(self, failure):
        if not self._said:
            self._said = True
            log.warn("cluster: cannot reach {address}: {why}; retrying",
                     address=str(self._address), why=failure.getErrorMessage())
        return failure


class Link(MultiService):
    """Keeps both connections up; calls on_up(commands) when both are
    ready and subscribed, on_down() once when either is lost, and
    on_message(text) for each message on the channel."""

    def __init__(self, address: RedisAddress, channel: str, reactor,
                 on_message: Callable[[str], None], on_up: Callable[[object], None],
                 on_down: Callable[[], None]):
        super().__init__()
        self.address = address
        self._channel = channel
        self._on_message, self._on_up, self._on_down = on_message, on_up, on_down
        self.commands = None
        self._subscriber = None
        self._subscribed = False
        self._up = False
        retry = backoffPolicy(initialDelay=0.2, factor=1.5, maxDelay=2.0)
        for kind in (_Commands, _Subscriber):
            endpoint = HostnameEndpoint(reactor, address.host, address.port,
                                        timeout=CONNECT_TIMEOUT)
            if address.tls:
                endpoint = wrapClientTLS(optionsForClientTLS(address.host), endpoint)
            _QuietService(_Reporting(endpoint, address) if kind is _Commands else endpoint,
                          _Factory(self, kind, address), retryPolicy=retry,
                          clock=reactor).setServiceParent(self)

    @property
    def up(self) -> bool:
        return self._up

    def drop(self) -> None:
        """Redis stopped answering: close both connections now (they come
        back through ClientService)."""
        for p in (self.commands, self._subscriber):
            if p is not None and p.transport is not None:
                p.transport.abortConnection()

    def _ready(self, p) -> None:
        if isinstance(p, _Subscriber):
            self._subscriber = p
            p.subscribe(self._channel).addCallbacks(
                lambda _: self._subscribed_to(p), lambda f: p.transport.loseConnection())
        else:
            self.commands = p
            self._check()

    def _subscribed_to(self, p) -> None:
        if p is self._subscriber:
            self._subscribed = True
            self._check()

    def _check(self) -> None:
        if not self._up and self.commands is not None and self._subscribed:
            self._up = True
            self._on_up(self.commands)

    def _message(self, message: str) -> None:
        try:
            self._on_message(message)
        except Exception:
            log.failure("cluster: a message from Redis could not be handled")

    def _lost(self, p) -> None:
        if p is self.commands:
            self.commands = None
            other = self._subscriber
        elif p is self._subscriber:
            self._subscriber, self._subscribed = None, False
            other = self.commands
        else:
            return
        if other is not None and other.transport is not None:
            other.transport.loseConnection()
        if self._up:
            self._up = False
            self._on_down()
