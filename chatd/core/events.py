"""What happens in chatd, as data: the seam between the core and its front ends.

The core never builds a line of any protocol.  It makes one of these
events, and each front end renders it in its own wire format (chatd.line
renders `<alice> hi`; an IRC front end would render `:alice PRIVMSG #chatd
:hi`).  A room's fan-out renders each turn's events once per wire format
and writes the same bytes to every member who speaks that format
(chatd.core.room).

Every event has an id (increasing within a process), the wall-clock time
it happened (`at`, seconds since the epoch) and its room's name ("" for
what is said to one person, not in a room).  Names are as their owner
typed them; text is already cleaned (chatd.core.text.clean).  Events are
shared by every front end and recipient, so nobody changes one once made
(they are not frozen only because a frozen dataclass is several times
slower to make, and one is made per line said).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import ClassVar

_ids = itertools.count(1)


def next_id() -> int:
    """A new event id; ids increase in the order events are made."""
    return next(_ids)


@dataclass(slots=True)
class Event:
    id: int
    at: float
    room: str


# -- said by people --------------------------------------------------------

@dataclass(slots=True)
class Message(Event):
    """name says text; rich is the same text with the IRC formatting codes
    its sender typed (bold, colours...: chatd.core.text.clean_keeping_formatting),
    "" if there were none: only front ends whose clients render them use it,
    and history keeps text."""

    kind: ClassVar[str] = "message"  # as history keeps it (Said.kind)
    name: str
    text: str
    rich: str = ""


@dataclass(slots=True)
class Action(Event):
    """`/me waves`: name does text (rich as for Message)."""

    kind: ClassVar[str] = "action"
    name: str
    text: str
    rich: str = ""


@dataclass(slots=True)
class Private(Event):
    """A private message: delivered to its target and, as a receipt, to its sender."""

    sender: str
    target: str
    text: str


# -- who is where ----------------------------------------------------------

@dataclass(slots=True)
class Joined(Event):
    name: str
    admin: bool = False


@dataclass(slots=True)
class Left(Event):
    """name left: reason is their own words, cause the server's ("idle
    timeout", "joined games"); quit if they left the server, not only
    this room (IRC shows QUIT rather than PART)."""

    name: str
    reason: str = ""
    cause: str = ""
    quit: bool = True


@dataclass(slots=True)
class Said:
    """One line of a room's history, replayed to whoever joins it."""

    at: float
    kind: str  # "message" or "action"
    name: str
    text: str


@dataclass(slots=True)
class Welcome(Event):
    """To one person who just entered room: who is there, the topic, the
    room's recent history; `login` is true for the room they land in at login
    (the message of the day goes with it)."""

    name: str
    admin: bool
    who: tuple[str, ...]  # labels ("@boss" for admins), sorted, at most `shown`
    count: int  # how many are in the room
    login: bool = True
    motd: str = ""
    topic: str = ""
    history: tuple[Said, ...] = field(default=())


@dataclass(slots=True)
class Topic(Event):
    by: str
    text: str


@dataclass(slots=True)
class Notice(Event):
    """Something the server says in a room (that it is shutting down)."""

    text: str


@dataclass(slots=True)
class Replaced(Event):
    """To one person: the same name logged in from elsewhere, so this
    connection is closed."""

    name: str


# -- moderation ------------------------------------------------------------
# Broadcast in a room they concern; the same event is sent to its target
# alone (name is the viewer) before they are disconnected.

@dataclass(slots=True)
class Kicked(Event):
    """name was kicked by by; room_only: out of this room alone (IRC's
    KICK), staying logged in, rather than off the server (/kick)."""

    name: str
    by: str
    reason: str = ""
    room_only: bool = False


@dataclass(slots=True)
class Banned(Event):
    name: str
    by: str
    reason: str = ""
    duration: float | None = None  # seconds; None: for good


@dataclass(slots=True)
class Unbanned(Event):
    name: str
    by: str


@dataclass(slots=True)
class Muted(Event):
    name: str
    by: str
    duration: float | None = None


@dataclass(slots=True)
class Unmuted(Event):
    name: str
    by: str
