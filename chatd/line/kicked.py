"""What a line user is shown when an admin's KICK (from IRC) takes them out of a room.

The line protocol shows one room at a time.  Kicked out of the room they
are shown, a line user is shown the landing room again, as after /part;
kicked out of the landing room itself, where everyone lands and there is
nowhere else to go, they are disconnected, as by /kick (and may log in
again).  The core has told them first (`! you were kicked from ROOM by
ADMIN[: REASON]`) and the room (`* NAME was kicked from ROOM by
ADMIN[: REASON]`): see Moderation.kick_from_room and docs/protocol.md.
"""

from __future__ import annotations

from twisted.logger import Logger

from chatd.core.room import Room

log = Logger()


def removed(conn, room: Room) -> None:
    """The core took conn's user out of room (ChatProtocol.removed)."""
    user = conn.user
    if room is not conn.here or user is None or conn.closing:
        return  # not the room they are shown (or they are leaving anyway)
    conn.here = None  # what they type waits until they are shown a room again
    server = conn.server
    if room is server.landing:
        log.info("{name} was kicked out of {room}: disconnected", name=user.name,
                 room=room.name)
        server.remove(user, "kicked")  # in no room now: nobody else to tell
        conn.disconnect()
        return
    d = server.enter(user, login=False)
    conn.hold_until(d.addCallback(lambda landing: landing and conn.entered(landing)))
