"""The line protocol's wire format: the one place that knows what a line looks like.

Every line the server sends starts with its kind (docs/protocol.md), so
that nothing one user types can pass for another's message, a server
notice or a replayed line:

    ? prompt      <name> message     [name] private     [->name] private sent
    + name action     * notice       ! error      = TIME replayed history

The server renders core events with LINE (a LineFormat); chatd-client
parses lines with kind_of.  This module imports nothing but the core's
events and text helpers, so the client can use it without the server.
"""

from __future__ import annotations

import re
import time

import chatd.core.events as ev
from chatd.core.text import NAME_MAX, format_duration, with_reason


def encode(line: str) -> bytes:
    """One server line on the wire: UTF-8, ended by CRLF."""
    return (line + "\r\n").encode("utf-8")


def notice(text: str) -> str:
    return "* " + text


def error(text: str) -> str:
    return "! " + text


def prompt(text: str) -> str:
    return "? " + text


def utc(seconds: float) -> str:
    """UTC, to the second: 2026-11-25 15:00:00Z."""
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))


def who_line(labels: tuple[str, ...] | list[str], count: int) -> str:
    """`* online (N): ...`; names beyond those given are counted."""
    text = ", ".join(labels)
    if count > len(labels):
        text += f", and {count - len(labels)} more (/who lists everyone)"
    return notice(f"online ({count}): {text}")


def history_line(said: ev.Said) -> str:
    """A replayed line: `= 2026-11-25 15:00:00Z <alice> hi`, never live."""
    if said.kind == "action":
        return f"= {utc(said.at)} + {said.name} {said.text}"
    return f"= {utc(said.at)} <{said.name}> {said.text}"


def _what(verb: str, by: str, duration: float | None = None) -> str:
    text = f"{verb} by {by}"
    return text if duration is None else f"{text} for {format_duration(duration)}"


def _kicked(e: ev.Kicked) -> str:
    """`kicked by ADMIN`, or for a kick out of one room, `kicked from ROOM by ADMIN`."""
    return f"kicked from {e.room} by {e.by}" if e.room_only else _what("kicked", e.by)


def _left(e: ev.Left) -> str:
    text = f"{e.name} left" + (f" ({e.cause})" if e.cause else "")
    return notice(with_reason(text, e.reason))


def _welcome(e: ev.Welcome) -> list[str]:
    if e.login:
        role = " (admin)" if e.admin else ""
        lines = [notice(f"logged in as {e.name}{role} in {e.room}")]
    else:
        lines = [notice(f"you are in {e.room}")]
    lines.append(who_line(e.who, e.count))
    if e.login:
        lines.extend(notice(line) for line in e.motd.splitlines())
    if e.topic:
        lines.append(notice(f"topic: {e.topic}"))
    lines.extend(history_line(said) for said in e.history)
    return lines


# What everyone in a room sees; None: a kind this format does not broadcast.
_BROADCAST = {
    ev.Message: lambda e: f"<{e.name}> {e.text}",
    ev.Action: lambda e: f"+ {e.name} {e.text}",
    ev.Joined: lambda e: notice(f"{e.name} joined"),
    ev.Left: _left,
    ev.Topic: lambda e: notice(f"{e.by} set the topic: {e.text}" if e.text
                               else f"{e.by} cleared the topic"),
    ev.Notice: lambda e: notice(e.text),
    ev.Kicked: lambda e: notice(with_reason(f"{e.name} was {_kicked(e)}", e.reason)),
    ev.Banned: lambda e: notice(with_reason(
        f"{e.name} was {_what('banned', e.by, e.duration)}", e.reason)),
    ev.Unbanned: lambda e: notice(f"{e.name} was unbanned by {e.by}"),
    ev.Muted: lambda e: notice(f"{e.name} was {_what('muted', e.by, e.duration)}"),
    ev.Unmuted: lambda e: notice(f"{e.name} was unmuted by {e.by}"),
}


class LineFormat:
    """Renders core events as line-protocol bytes (chatd.core.room.IWireFormat)."""

    name = "line"

    def render(self, event: ev.Event) -> bytes:
        """event as everyone in its room sees it (the shared fan-out bytes)."""
        if event.__class__ is ev.Message:  # most of what a busy room says
            return f"<{event.name}> {event.text}\r\n".encode()
        return encode(_BROADCAST[type(event)](event))

    def render_for(self, event: ev.Event, viewer: str) -> bytes:
        """event as the one person named viewer sees it."""
        return b"".join(encode(line) for line in self.lines_for(event, viewer))

    def lines_for(self, event: ev.Event, viewer: str) -> list[str]:
        kind = type(event)
        if kind is ev.Private:  # to yourself: both lines
            lines = []
            if event.target == viewer:
                lines.append(f"[{event.sender}] {event.text}")
            if event.sender == viewer:
                lines.append(f"[->{event.target}] {event.text}")
            return lines
        if kind is ev.Welcome:
            return _welcome(event)
        if kind is ev.Replaced:
            return [error("logged in from elsewhere")]
        if kind is ev.Kicked and event.name == viewer:
            return [error(with_reason(f"you were {_kicked(event)}", event.reason))]
        if kind is ev.Banned and event.name == viewer:
            return [error(with_reason(f"you were {_what('banned', event.by, event.duration)}",
                                      event.reason))]
        return [_BROADCAST[kind](event)]


LINE = LineFormat()


# -- parsing, for clients ---------------------------------------------------

_NAME = rf"[A-Za-z0-9_.\-]{{1,{NAME_MAX}}}"
_KINDS = [
    ("message", re.compile(rf"<({_NAME})> (.*)\Z", re.DOTALL)),
    ("action", re.compile(rf"\+ ({_NAME}) (.*)\Z", re.DOTALL)),
    ("sent", re.compile(rf"\[->({_NAME})\] (.*)\Z", re.DOTALL)),
    ("private", re.compile(rf"\[({_NAME})\] (.*)\Z", re.DOTALL)),
    ("history", re.compile(r"= ([0-9-]{10} [0-9:]{8}Z) (.*)\Z", re.DOTALL)),
]
_SIMPLE = {"* ": "notice", "! ": "error", "? ": "prompt"}


def kind_of(line: str) -> tuple[str, str, str]:
    """(kind, name, text) of a server line; name is "" for unnamed kinds.

    Kinds: message, action, private, sent, history, notice, error, prompt,
    other.  For history, name is the UTC time and text the replayed line.
    """
    for kind, pattern in _KINDS:
        m = pattern.match(line)
        if m:
            return kind, m.group(1), m.group(2)
    simple = _SIMPLE.get(line[:2])
    if simple:
        return simple, "", line[2:]
    return "other", "", line
