"""Wiring for `twistd chatd`: Options and makeService.

Everything the daemon is made of is assembled here: settings, the data
directory, accounts, the store (bans, journal, history), the core's server,
gate and login portal, and then each front end's factory with one
listening service per (front end, endpoint), as twisted.words' tap does.
"""

from __future__ import annotations

import gc
import sqlite3
import sys
import time
from pathlib import Path

from twisted.application import service
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IAddress
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

import twisted
from chatd import __version__, config, datadir, metrics
from chatd.core.auth import AdminFile, UserFile, account_checkers, ensure_first_admin
from chatd.core.auth import register as register_user
from chatd.core.gate import Gate
from chatd.core.history import History
from chatd.core.login import make_portal
from chatd.core.server import Server
from chatd.core.stats import Stats, StatsService
from chatd.core.store import BanStore, SchemaTooNew
from chatd.datadir import StartError
from chatd.irc.factory import IrcFactory
from chatd.line.factory import ChatFactory
from chatd.reload import ReloadService
from chatd.sockets import with_backlog
from chatd.tls import RenewableTLS, renewable_endpoint
from chatd.web.site import WebFactory

log = Logger()


# Seconds a room's new history lines wait to be written together: one
# database call per half second however busy the rooms are.
HISTORY_DELAY = 0.5

# The sample config with every key, installed with the package.
SAMPLE_CONFIG = Path(__file__).parent / "etc" / "chatd.toml"


class Options(usage.Options):
    synopsis = ("[--listen ENDPOINT ...] [--irc ENDPOINT ...] [--web ENDPOINT ...]"
                " [--config FILE]"
                " [--data-dir DIR] [--metrics ENDPOINT ...]"
                " [--cluster redis://HOST:PORT/DB [--node NAME]]")
    longdesc = (
        "Serve moderated chat rooms over a line protocol (telnet, netcat "
        "or chatd-client), with --irc to IRC clients (room ROOM is "
        "#ROOM) and with --web to browsers (a page and its WebSocket, "
        "docs/web.md).  With --cluster, several chatd processes share the "
        "same rooms, names and bans through Redis (docs/scaling.md).  "
        "Options override the config file; see "
        f"{SAMPLE_CONFIG} for every key.  Admin accounts: chatd-admin."
    )
    optParameters = [
        ["config", "c", None, "TOML config file (see the sample named below)."],
        ["data-dir", "d", None,
         "Directory for the database (bans, journal, history) and the admin"
         " and user accounts [default: var]."],
        ["cluster", None, None,
         "Share rooms, names, bans and history with the other chatd nodes using"
         " the Redis at this URL: redis://[:PASSWORD@]HOST[:PORT][/DB], or"
         " rediss:// for TLS [default: off, one process]."],
        ["node", None, None,
         "This node's name in the cluster [default: host name and process id]."],
    ]

    def __init__(self):
        super().__init__()
        self["listen"] = []
        self["metrics"] = []
        self["irc"] = []
        self["web"] = []

    def opt_listen(self, endpoint: str) -> None:
        """Listen on ENDPOINT, a Twisted endpoint string such as tcp:4000, tcp:4000:interface=127.0.0.1 or ssl:4443:privateKey=key.pem:certKey=cert.pem (repeatable) [default: tcp:4000]."""  # noqa: E501
        self["listen"].append(endpoint)

    opt_l = opt_listen

    def opt_irc(self, endpoint: str) -> None:
        """Serve IRC on ENDPOINT, such as tcp:6667 or ssl:6697:privateKey=key.pem:certKey=cert.pem (repeatable) [default: off]."""  # noqa: E501
        self["irc"].append(endpoint)

    def opt_web(self, endpoint: str) -> None:
        """Serve the web page and its WebSocket on ENDPOINT, such as tcp:8080 or ssl:8443:privateKey=key.pem:certKey=cert.pem (repeatable) [default: off]."""  # noqa: E501
        self["web"].append(endpoint)

    def opt_version(self) -> None:
        """Display chatd's version and exit."""
        print(f"chatd {__version__} (Twisted {twisted.__version__})")
        sys.exit(0)

    def opt_metrics(self, endpoint: str) -> None:
        """Serve Prometheus metrics over HTTP at /metrics on ENDPOINT, such as tcp:9100:interface=127.0.0.1 (repeatable) [default: off]."""  # noqa: E501
        self["metrics"].append(endpoint)

    def read_settings(self) -> config.Settings:
        """The config file with the options' overrides: at start and on reload."""
        settings = config.load(self["config"])
        if self["listen"]:
            settings.listen = list(self["listen"])
        if self["data-dir"]:
            settings.data_dir = self["data-dir"]
        if self["metrics"]:
            settings.metrics = list(self["metrics"])
        if self["irc"]:
            settings.irc = list(self["irc"])
        if self["web"]:
            settings.web = list(self["web"])
        if self["cluster"]:
            settings.cluster = self["cluster"]
        if self["node"]:
            settings.cluster_node = self["node"]
        config.check_cluster(settings)
        return settings

    def postOptions(self) -> None:
        try:
            settings = self.read_settings()
        except config.ConfigError as e:
            raise usage.UsageError(str(e)) from e
        if not settings.listen:
            raise usage.UsageError("nothing to listen on: give --listen")
        self.settings = settings


class ListenError(Exception):
    """An endpoint could not be listened on; startup stops."""


class Listener(service.Service):
    """Listen on one endpoint string; failing to bind stops startup, clearly.

    A TCP, TLS or UNIX listener gets a listen backlog of 1024 unless its
    string gives backlog=N: with Twisted's 50, a burst of connections
    overflows the queue and some clients wait forever for the greeting.
    """

    def __init__(self, description: str, factory, reactor):
        self.description = description
        self._factory = factory
        self._reactor = reactor
        self._port = None
        self._tls: RenewableTLS | None = None

    def privilegedStartService(self) -> None:
        service.Service.privilegedStartService(self)
        self._listen()

    def startService(self) -> None:
        service.Service.startService(self)
        if self._port is None:
            self._listen()

    def _listen(self) -> None:
        try:
            description = with_backlog(self.description)
            endpoint = serverFromString(self._reactor, description)
            endpoint, self._tls = renewable_endpoint(self._reactor, description, endpoint)
        except Exception as e:
            # A typo, a missing certificate file, a bad key: one clear line.
            raise ListenError(f"bad endpoint {self.description!r}: {e}") from e
        outcome = []
        endpoint.listen(self._factory).addBoth(outcome.append)
        if not outcome:
            raise ListenError(f"listening on {self.description} did not finish")
        if isinstance(outcome[0], Failure):
            why = outcome[0].value
            if isinstance(why, CannotListenError) and why.socketError:
                why = getattr(why.socketError, "strerror", None) or why.socketError
            raise ListenError(f"cannot listen on {self.description}: {why}")
        self._port = outcome[0]
        host = self.address()
        log.info("chatd listening on {endpoint} ({address})",
                 endpoint=self.description,
                 address=f"{getattr(host, 'host', host)}:{getattr(host, 'port', '')}")

    def address(self) -> IAddress | None:
        """Where this listener listens (its port's getHost()); None when it is not.

        With port 0 in the endpoint string, this says which port was chosen.
        """
        return self._port.getHost() if self._port is not None else None

    def reload_tls(self) -> str | None:
        """Renew an ssl: endpoint's certificate and key for new connections.

        Returns a description of the new certificate if it changed, else
        None (also for endpoints without TLS).  Raises CertificateError,
        keeping the certificate in use, if the files are bad.
        """
        return self._tls.renew() if self._tls is not None else None

    def stopService(self):
        service.Service.stopService(self)
        port, self._port = self._port, None
        if port is not None:
            return defer.maybeDeferred(port.stopListening)


class ChatService(service.Service):
    """The server's lifetime: its data files, the first-run admin, a polite shutdown."""

    def __init__(self, server: Server, factories: list, store: BanStore,
                 admins: AdminFile, history: History | None = None):
        self.server = server
        self.factories = factories
        self._store = store
        self._admins = admins
        self._history = history

    def startService(self) -> None:
        """Open the data files, as the user twistd has dropped to.

        Listeners have bound (in privilegedStartService) but the reactor does
        not run yet, so no one can log in before the admin exists.
        """
        service.Service.startService(self)
        data_dir = self._admins.path.parent
        datadir.prepare(data_dir)
        try:
            password = ensure_first_admin(self._admins)
        except (OSError, ValueError) as e:  # a link or second hard link: safefile
            raise StartError(f"cannot use {self._admins.path}: {e}") from e
        if password is not None:
            datadir.hand_over_first_password(self._admins, password)
        path = data_dir / "chatd.sqlite3"
        try:
            self._store.open_file(path)
        except (SchemaTooNew, sqlite3.Error) as e:
            raise StartError(f"cannot open {path}: {e}") from e
        tune_gc()
        log.info("chatd room {room} started", room=self.server.landing.name)

    def stopService(self):
        service.Service.stopService(self)
        log.info("chatd shutting down: {count} connections",
                 count=sum(len(factory.connections) for factory in self.factories))
        self.server.shutdown()  # every user is told and let go, in every front end
        d = defer.DeferredList([factory.shutdown() for factory in self.factories])
        if self._history is not None:
            d.addBoth(lambda _: self._history.flush())
        d.addBoth(lambda _: self._store.close())
        return d


# Python's cyclic GC by default collects its youngest generation every 700
# container allocations, and every line chatd relays makes a few (the
# event, its history entry, the room's pending pair) that reference
# counting frees anyway.  Collecting less often cost nothing measurable in
# memory (2.3 KiB per idle client) and cut the CPU per delivery
# (docs/performance.md, docs/scaling.md).  The oldest generation is still
# collected every 100 million net allocations, as before.
GC_THRESHOLDS = (200_000, 10, 50)


def tune_gc() -> None:
    """Fewer cyclic collections, and none of them walking what start-up made."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _clean_exit_on_start_error() -> None:
    """Under `twistd -n` a ListenError or StartError would print a traceback: say it plainly.

    In daemon mode twistd's parent also prints the start of the message
    (from its status pipe) and exits with status 1.
    """
    previous = sys.excepthook
    if getattr(previous, "chatd", False):
        return  # installed already (makeService called again, as in tests)

    def hook(kind, value, tb):
        if issubclass(kind, (ListenError, StartError)):
            print(f"chatd: {value}", file=sys.stderr)
        else:
            previous(kind, value, tb)

    hook.chatd = True
    sys.excepthook = hook


def _metrics(endpoints: list[str], gate: Gate, server: Server, store: BanStore,
             reactor) -> service.MultiService:
    """The /metrics page on each endpoint, and the reactor lag it reports."""
    lag = metrics.LagMeter(reactor)
    collector = metrics.ChatCollector(
        server.stats,
        connections=lambda: gate.count,
        members=lambda: len(server.users),
        bans=lambda: len(store.all(time.time())),
        lag=lag,
    )
    site = metrics.make_site(collector)
    group = service.MultiService()
    metrics.MetricsService(lag, endpoints).setServiceParent(group)
    for description in endpoints:
        Listener(description, site, reactor).setServiceParent(group)
    return group


def makeService(options: Options, reactor=None) -> service.MultiService:
    if reactor is None:
        from twisted.internet import reactor
    settings = options.settings
    # Nothing in the data directory is touched here: makeService runs as
    # root, before twistd drops privileges.  ChatService.startService opens it.
    data_dir = Path(settings.data_dir)
    admins, users = AdminFile(data_dir / "admins"), UserFile(data_dir / "users")
    store = BanStore.unopened()
    stats = Stats(reactor.seconds())
    history = History(store, reactor, settings.history, delay=HISTORY_DELAY)
    bus = None
    if settings.cluster:
        from chatd.cluster import tap as cluster  # needs txredisapi, only then
        bus = cluster.make_bus(settings, store, reactor)
    server = Server(reactor, store, admins.is_admin, landing=settings.room,
                    rooms=settings.rooms, open_rooms=settings.open_rooms,
                    motd=settings.motd, wall_clock=time.time, stats=stats,
                    history=history, is_registered_name=users.is_registered,
                    registration=settings.registration, bus=bus)
    # The core's parts every front end shares: admission and login.
    gate = Gate(settings.limits, reactor, stats)
    portal = make_portal(server, *account_checkers(admins, users))

    def registrar(name, password):
        if bus is not None:
            return cluster.register(bus, users, name, password)
        return register_user(users, name, password)

    line = ChatFactory(server, portal, gate, reactor, registrar=registrar)
    front_ends = [(line, settings.listen)]
    if settings.irc:
        irc = IrcFactory(server, portal, gate, reactor,
                         server_name=settings.irc_server_name or None)
        front_ends.append((irc, settings.irc))
    if settings.web:
        web = WebFactory(server, portal, gate, reactor, origins=settings.web_origins,
                         registrar=registrar)
        front_ends.append((web, settings.web))

    top = service.MultiService()
    top.setName("chatd")
    ChatService(server, [factory for factory, _ in front_ends], store, admins,
                history).setServiceParent(top)
    if bus is not None:
        cluster.ClusterService(bus, server, users).setServiceParent(top)
    listeners = [Listener(description, getattr(factory, "site", factory), reactor)
                 for factory, endpoints in front_ends for description in endpoints]
    for listener in listeners:
        listener.setServiceParent(top)
    ReloadService(options.read_settings, settings, line, admins, listeners,
                  reactor, users=users).setServiceParent(top)
    StatsService(stats, reactor).setServiceParent(top)
    if settings.metrics:
        _metrics(settings.metrics, gate, server, store, reactor).setServiceParent(top)
    _clean_exit_on_start_error()
    return top
