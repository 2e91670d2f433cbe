"""Events as they travel between nodes: JSON lists, never a client's wire format.

An event is sent as [kind, field, field...] (its fields after id, in
order); the receiving node makes it again with an id of its own (ids
increase within a process, chatd.core.events).  Only what rooms broadcast
or a node tells one person travels.

The lines said in a room, most of what travels, are flat items of their
own (chatd.cluster.bus), and their times, like those of the history lists
in Redis, are whole milliseconds since the epoch: an int, because the
shortest repr of a float costs more than the rest of the line's JSON, and
Redis's Lua (cjson) keeps 14 digits of a number.
"""

from __future__ import annotations

import json
from dataclasses import fields
from operator import attrgetter

from chatd.core import events as ev
from chatd.core.text import clean, clean_keeping_formatting

KINDS = {cls.__name__: cls for cls in (
    ev.Message, ev.Action, ev.Private, ev.Joined, ev.Left, ev.Topic, ev.Notice,
    ev.Replaced, ev.Kicked, ev.Banned, ev.Unbanned, ev.Muted, ev.Unmuted)}
# Each kind's fields after id, read in one call (encode is on the chat path).
_FIELDS = {cls: attrgetter(*[f.name for f in fields(cls)][1:]) for cls in KINDS.values()}


# Batches: compact, and texts as they are (Redis strings are UTF-8 here).
dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def seconds(at) -> float:
    """A history line's time as Redis holds it (milliseconds, or the
    seconds an older node wrote) in seconds."""
    return at / 1000 if at.__class__ is int else at


# How each field's text is cleaned again: `rich` keeps IRC's formatting codes.
_CLEANERS = {cls: [clean_keeping_formatting if f.name == "rich" else clean
                   for f in fields(cls)][1:] for cls in KINDS.values()}


def encode(event: ev.Event) -> list:
    cls = event.__class__
    return [cls.__name__, *_FIELDS[cls](event)]


def decode(data: list) -> ev.Event:
    """The event data describes, every text in it cleaned again (it was on
    the node it was typed on; what Redis holds never reaches a terminal as
    it is); ValueError if it describes no event."""
    try:
        cls = KINDS[data[0]]
        return cls(ev.next_id(), *(cleaner(v) if v.__class__ is str else v
                                   for cleaner, v in zip(_CLEANERS[cls], data[1:],
                                                         strict=True)))
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise ValueError(f"not an event: {data!r:.100}") from e
