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
"""

from __future__ import annotations

from collections.abc import Callable

from zope.interface import Interface, implementer

from chatd.core.events import Event

Receiver = Callable[[Event, object], None]


class IBus(Interface):
    def publish(room: str, event: Event, sender: object) -> None:
        """Send event to every subscriber of room (a room key); sender is
        the User who caused it (they do not hear it back), or None."""

    def subscribe(room: str, receive: Receiver) -> None:
        """Call receive(event, sender) for each event published to room."""

    def unsubscribe(room: str) -> None:
        """Stop delivering room's events here."""


@implementer(IBus)
class LocalBus:
    """In-process: publish calls the room's receiver at once."""

    def __init__(self):
        self._rooms: dict[str, Receiver] = {}

    def publish(self, room: str, event: Event, sender: object) -> None:
        receive = self._rooms.get(room)
        if receive is not None:
            receive(event, sender)

    def subscribe(self, room: str, receive: Receiver) -> None:
        self._rooms[room] = receive

    def unsubscribe(self, room: str) -> None:
        self._rooms.pop(room, None)
