"""The people on the other nodes of a cluster, as this node lists them.

In a cluster (chatd.cluster) every node keeps its own rooms, and each room
lists the people connected elsewhere beside its own members (Room.add with
a User whose `node` is set): /who, /rooms, NAMES and WHOIS see the whole
cluster, while the fan-out still writes only to this node's connections
(the other nodes deliver to theirs).  The networked bus keeps this list
up to date from the other nodes' presence messages; the core never asks
how they travel.  In one process it stays empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from chatd.core import events as ev
from chatd.core.room import User
from chatd.core.text import name_key

if TYPE_CHECKING:
    from chatd.core.server import Server


class _Elsewhere:
    """The IClient of someone on another node: never written to (their
    node delivers to them); `wire` is None so no fan-out renders for them."""

    wire = None

    def deliver(self, data: bytes) -> None:
        raise RuntimeError("a user on another node is reached through the bus")

    def disconnect(self) -> None:
        raise RuntimeError("a user on another node is reached through the bus")


ELSEWHERE = _Elsewhere()

# (name, admin, address, room names): how a node describes one of its users.
Presence = tuple[str, bool, str | None, Iterable[str]]


class Peers:
    """Users on other nodes, by name key; see the module docstring."""

    def __init__(self, server: Server):
        self._server = server
        self._users: dict[str, User] = {}

    def get(self, key: str) -> User | None:
        return self._users.get(key)

    def __len__(self) -> int:
        return len(self._users)

    def on(self, node: str) -> list[User]:
        """The users listed on node."""
        return [user for user in self._users.values() if user.node == node]

    @property
    def nodes(self) -> set[str]:
        return {user.node for user in self._users.values()}

    # -- what other nodes say ---------------------------------------

    def entered(self, node: str, room_name: str, name: str, admin: bool = False,
                address: str | None = None) -> None:
        """name, on node, is now in room_name (quietly: the room hears its
        `Joined` as an event of its own)."""
        key = name_key(name)
        user = self._users.get(key)
        if user is None or user.node != node:
            if user is not None:  # the name moved between nodes
                self._drop(user)
            user = User(name, ELSEWHERE, admin, address, server=None, node=node)
            self._users[key] = user
        self._server.room_for(room_name).add(user)

    def left(self, node: str, room_key: str, key: str) -> None:
        """The user key, on node, is no longer in that room."""
        user = self._users.get(key)
        room = self._server.room(room_key)
        if user is not None and user.node == node and room is not None:
            if room.discard(user):
                self._server.close_if_empty(room)

    def gone(self, node: str, key: str) -> None:
        """The user key logged out of node."""
        user = self._users.get(key)
        if user is not None and user.node == node:
            self._drop(user)

    def lost(self, node: str, cause: str = "node lost") -> list[User]:
        """node is gone without a word (it died, or its link did): each of
        its users leaves this node's rooms, which are told here (every node
        tells its own members); the users it listed."""
        users = self.on(node)
        for user in users:
            self._drop(user, cause)
        return users

    def replace(self, node: str, users: Iterable[Presence],
                cause: str = "connection lost") -> None:
        """node says who is on it now (after it started, or after a link
        came back): the list is brought up to date, and this node's rooms
        are told who came and went meanwhile."""
        server = self._server
        wanted = {name_key(name): (name, admin, address, {name_key(r): r for r in rooms})
                  for name, admin, address, rooms in users}
        for user in self.on(node):
            if user.key not in wanted:
                self._drop(user, cause)
        for key, (name, admin, address, rooms) in wanted.items():
            user = self._users.get(key)
            if user is not None and user.node == node:
                for room in user.rooms:
                    if room.key not in rooms:
                        room.discard(user)
                        room.hear(room.event(ev.Left, user.name, "", cause, quit=False))
                        server.close_if_empty(room)
                here = {room.key for room in user.rooms}
            else:
                here = set()
            for room_key, room_name in rooms.items():
                if room_key not in here:
                    self.entered(node, room_name, name, admin, address)
                    room = server.room(room_key)
                    if room is not None:
                        room.hear(room.event(ev.Joined, name, admin))

    def _drop(self, user: User, cause: str | None = None) -> None:
        """user leaves every room here (told `Left` with cause, if given)
        and the list."""
        if self._users.get(user.key) is user:
            del self._users[user.key]
        for room in user.rooms:
            room.discard(user)
            if cause is not None:
                room.hear(room.event(ev.Left, user.name, "", cause))
            self._server.close_if_empty(room)
