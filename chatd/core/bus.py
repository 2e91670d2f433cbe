"""The bus: how a room's events reach the rooms that deliver them.

A room publishes each event on the bus and hears it back through its
subscription, so a room never assumes that it is the only copy of itself.
LocalBus, the embedded default, hands each event straight back in the
same process: nothing else runs, nothing else is installed.  A networked
bus (several chatd processes sharing rooms through Redis) implements the
same interface and also carries other processes' events to the
subscribed rooms; rooms do not change.

The sender of an event (who does not hear it back) is given as the User
object; a bus that carries events to other processes sends its name key
instead, and the receiving room looks that key up among its members.

A networked bus also carries presence (who is in which room, on which
node), claims each name for the whole cluster, and reaches people on
other nodes (tell, expel).  LocalBus does none of that: in one process
the Server's own registry is the whole truth, and every call here is
answered at once.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet import defer
from zope.interface import Attribute, Interface, implementer

from chatd.core.events import Event

Receiver = Callable[[Event, object], None]
# Several events for one room at once, in order: [(sender, event), ...].
BatchReceiver = Callable[[list], None]


class IBus(Interface):
    keeps_history = Attribute(
        "True if the bus keeps rooms' history itself, in the order it delivers "
        "events (a cluster's order is Redis's, not the order lines were said here)")

    def publish(room: str, event: Event, sender: object) -> None:
        """Send event to every subscriber of room (a room key); sender is
        the User who caused it (they do not hear it back), or None."""

    def subscribe(room: str, receive: Receiver, receive_all: BatchReceiver) -> None:
        """Call receive(event, sender) for each event published to room, or
        receive_all([(sender, event), ...]) for several at once (a bus that
        carries batches between processes), in order either way."""

    def unsubscribe(room: str) -> None:
        """Stop delivering room's events here."""

    def ready() -> bool:
        """True while names can be claimed and admins' actions made durable."""

    def claim(user_key: str, takeover: bool) -> defer.Deferred:
        """Fires once the name is this process's everywhere; fails with a
        RoomError (NameTaken, Unavailable) if it cannot be.  With takeover
        (a registered user's right password) it is taken from wherever it is."""

    def release(user_key: str) -> None:
        """The name is free again (its user logged out here)."""

    def entered(room: str, user) -> None:
        """A user of this process is now in room (presence for other nodes)."""

    def left(room: str, user) -> None:
        """A user of this process is no longer in room."""

    def tell(user, event: Event) -> None:
        """event to a user on another node (User.node), alone."""

    def expel(user, event: Event, count_as: str) -> None:
        """A user on another node is told event, logged out without a word
        to their rooms (the caller announces), and disconnected."""

    def unroom(user, room: str) -> None:
        """A user on another node is taken out of room (Server.remove_from_room
        there), staying logged in."""

    def moderated(kind: str, **details) -> defer.Deferred:
        """Make an admin's change (ban, unban, mute, unmute) durable where
        every node sees it and tell the other nodes; fires once it is."""


@implementer(IBus)
class LocalBus:
    """In-process: publish calls the room's receiver at once."""

    keeps_history = False  # the Server keeps each line as it is said

    def __init__(self):
        self._rooms: dict[str, Receiver] = {}

    def publish(self, room: str, event: Event, sender: object) -> None:
        receive = self._rooms.get(room)
        if receive is not None:
            receive(event, sender)

    def subscribe(self, room: str, receive: Receiver, receive_all: BatchReceiver) -> None:
        self._rooms[room] = receive

    def unsubscribe(self, room: str) -> None:
        self._rooms.pop(room, None)

    # One process is the whole server: nothing to claim, tell or copy.

    def ready(self) -> bool:
        return True

    def claim(self, user_key: str, takeover: bool) -> defer.Deferred:
        return defer.succeed(None)

    def release(self, user_key: str) -> None:
        pass

    def entered(self, room: str, user) -> None:
        pass

    def left(self, room: str, user) -> None:
        pass

    def tell(self, user, event: Event) -> None:
        raise ValueError(f"{user.name} is not on this server")

    def expel(self, user, event: Event, count_as: str) -> None:
        raise ValueError(f"{user.name} is not on this server")

    def unroom(self, user, room: str) -> None:
        raise ValueError(f"{user.name} is not on this server")

    def moderated(self, kind: str, **details) -> defer.Deferred:
        return defer.succeed(None)
