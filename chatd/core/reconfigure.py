"""A (re)loaded config's room settings, applied to a running Server.

Kept apart from chatd.core.server so that the server holds what runs on
every line and login, and this what runs on a reload (chatd.reload).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from chatd.core.text import name_key

if TYPE_CHECKING:
    from chatd.core.server import Server


def configure(server: Server, rooms: Iterable[str], open_rooms: bool,
              registration: str) -> list[str]:
    """Configured rooms, open_rooms and registration as the config says; what changed."""
    changes = []
    wanted = {name_key(name): name for name in rooms}
    for room in server.rooms:
        keep = room is server.landing or room.key in wanted
        if room.configured and not keep:
            room.configured = False
            changes.append(f"room {room.name} no longer configured")
            server.close_if_empty(room)
    for key, name in wanted.items():
        room = server.room(key)
        if room is None:
            server.room_for(name).configured = True
            changes.append(f"room {name} added")
        elif not room.configured:
            room.configured = True
            changes.append(f"room {room.name} configured")
    if open_rooms != server.open_rooms:
        server.open_rooms = open_rooms
        changes.append(f"open_rooms {'on' if open_rooms else 'off'}")
    if registration != server.registration:
        changes.append(f"registration {server.registration} -> {registration}")
        server.registration = registration
    return changes
