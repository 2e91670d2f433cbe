"""Events as they travel between nodes: JSON lists, never a client's wire format.

An event is sent as [kind, field, field...] (its fields after id, in
order); the receiving node makes it again with an id of its own (ids
increase within a process, chatd.core.events).  Only what rooms broadcast
or a node tells one person travels.

A batch, what a node publishes in one turn, is text: its header
`NODE SEQ TOKEN` (the token of the process, chatd.cluster.heartbeat),
then one record a line.  A line said in a room, most of what
travels, is a record of its own (line()): its fields joined by NUL, with
no JSON to make or parse, and nothing per line for Python's cyclic GC to
walk.  Any other item is a JSON list, [kind, ...] (chatd.cluster.inbound).
Times, in lines as in the history lists in Redis, are whole milliseconds
since the epoch: an int, because the shortest repr of a float costs more
than the rest of a line, and Redis's Lua (cjson) keeps 14 digits of a
number.
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


# The records of lines said, by their first field.
LINE_KINDS = {"m": ev.Message, "a": ev.Action}


def line(code: str, room: str, sender: str | None, event) -> str:
    """The record of a line said in room (event a Message, code "m", or an
    Action, "a") by sender (a name key, or None).  No field holds a NUL or
    a newline: rooms and names are checked, and texts cleaned, where the
    line was said (and, coming from Redis, everything is checked again)."""
    return (f"{code}\x00{room}\x00{sender or ''}\x00{int(event.at * 1000)}"
            f"\x00{event.name}\x00{event.text}\x00{event.rich}")


def batch(node: str, seq: int, items: list, token: str = "-") -> str:
    """A batch's text: items are line() records or other items (lists);
    token tells two processes that both call themselves node apart."""
    return "\n".join([f"{node} {seq} {token}",
                      *[item if item.__class__ is str else dumps(item) for item in items]])


MAX_TIME = 1e11  # seconds since the epoch (the year 5138): no later time is one


def seconds(at) -> float:
    """A history line's time as Redis holds it (milliseconds, or the
    seconds an older node wrote) in seconds; ValueError if it is no time
    (a time has to survive formatting for a client: strftime, server-time)."""
    if at.__class__ is int:
        at = at / 1000
    elif at.__class__ is not float:
        raise ValueError(f"not a time: {at!r:.30}")
    if not 0 <= at <= MAX_TIME:  # NaN fails too
        raise ValueError(f"not a time: {at!r:.30}")
    return at


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
        if data[1].__class__ is not float or not 0 <= data[1] <= MAX_TIME:
            raise ValueError(f"not a time: {data[1]!r:.30}")
        return cls(ev.next_id(), *(cleaner(v) if v.__class__ is str else v
                                   for cleaner, v in zip(_CLEANERS[cls], data[1:],
                                                         strict=True)))
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise ValueError(f"not an event: {data!r:.100}") from e
