"""Wiring a cluster node into `twistd chatd` (chatd.tap calls this only with --cluster)."""

from __future__ import annotations

from twisted.application import service
from twisted.internet import defer

from chatd.cluster.bus import ClusterBus
from chatd.cluster.sync import ClusterJournal, register
from chatd.cluster.url import parse

__all__ = ["ClusterService", "make_bus", "register"]


def make_bus(settings, store, reactor) -> ClusterBus:
    """The bus for the Server; the store's journal becomes the cluster's
    (before the Server's Moderation takes it)."""
    bus = ClusterBus(parse(settings.cluster), reactor, settings.cluster_node or None,
                     ttl=settings.cluster_ttl)
    bus.quit = reactor.stop  # another process runs as this node, and this one is newer
    store.journal = ClusterJournal(store.journal, bus)
    return bus


class ClusterService(service.Service):
    """Connects to Redis once the data files are open (it comes after
    ChatService), and says goodbye to the other nodes at shutdown."""

    def __init__(self, bus: ClusterBus, server, users):
        self._bus = bus
        bus.attach(server, users)

    def startService(self) -> None:
        service.Service.startService(self)
        self._bus.link.startService()

    def stopService(self) -> defer.Deferred:
        service.Service.stopService(self)
        d = self._bus.stop()
        d.addBoth(lambda _: self._bus.link.stopService())
        return d
