"""Events as they travel between nodes: JSON lists, never a client's wire format.

An event is sent as [kind, field, field...] (its fields after id, in
order); the receiving node makes it again with an id of its own (ids
increase within a process, chatd.core.events).  Only what rooms broadcast
or a node tells one person travels.
"""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter

from chatd.core import events as ev

KINDS = {cls.__name__: cls for cls in (
    ev.Message, ev.Action, ev.Private, ev.Joined, ev.Left, ev.Topic, ev.Notice,
    ev.Replaced, ev.Kicked, ev.Banned, ev.Unbanned, ev.Muted, ev.Unmuted)}
# Each kind's fields after id, read in one call (encode is on the chat path).
_FIELDS = {cls: attrgetter(*[f.name for f in fields(cls)][1:]) for cls in KINDS.values()}


def encode(event: ev.Event) -> list:
    cls = event.__class__
    return [cls.__name__, *_FIELDS[cls](event)]


def decode(data: list) -> ev.Event:
    """The event data describes; ValueError if it describes none."""
    try:
        cls = KINDS[data[0]]
        return cls(ev.next_id(), *data[1:])
    except (KeyError, IndexError, TypeError) as e:
        raise ValueError(f"not an event: {data!r:.100}") from e
