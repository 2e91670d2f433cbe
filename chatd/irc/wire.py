"""IRC's wire format: core events as IRC lines (an IWireFormat per capability set).

A room's fan-out renders each turn's events once per wire format, so the
IRC front end has one IrcFormat per combination of the capabilities that
change the bytes (server-time, message-tags): every IRC client that
negotiated the same ones shares the same bytes.  Nicks are shown as
`nick!nick@HOST` with the server's name as host: addresses are not shown.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import chatd.core.events as ev
from chatd.core.text import format_duration, with_reason

# IRC's limit for one line, tags aside, ending included.
LINE_MAX = 512


def channel(room: str) -> str:
    return "#" + room


def server_time(at: float) -> str:
    """The IRCv3 server-time tag value: 2026-11-25T15:00:00.000Z, to the
    nearest millisecond (what a cluster's nodes agree on: chatd.cluster.codec)."""
    seconds, ms = divmod(round(at * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


def split_text(prefix: bytes, text: str, suffix: bytes = b"\r\n") -> list[bytes]:
    """prefix+text+suffix as lines of at most LINE_MAX bytes: text is cut
    on character boundaries, never inside a UTF-8 sequence."""
    room = LINE_MAX - len(prefix) - len(suffix)
    data = text.encode("utf-8")
    if len(data) <= room:
        return [prefix + data + suffix]
    lines, start = [], 0
    while start < len(data):
        end = min(start + room, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # a continuation byte
            end -= 1
        lines.append(prefix + data[start:end] + suffix)
        start = end
    return lines


class IrcFormat:
    """Renders events for IRC clients with a given set of capabilities."""

    name = "irc"

    def __init__(self, server_name: str, tags: bool = False, times: bool = False,
                 history: bool = False):
        self.server_name = server_name
        self.tags = tags  # message-tags negotiated
        self.times = times  # server-time negotiated
        self.history = history  # batch and server-time: history is replayed

    def source(self, nick: str) -> str:
        return f"{nick}!{nick}@{self.server_name}"

    def _tag(self, event: ev.Event) -> bytes:
        return f"@time={server_time(event.at)} ".encode() if self.times else b""

    def _line(self, event: ev.Event, source: str, text: str) -> bytes:
        """One line; text is whole, its last parameter made trailing by the caller."""
        return self._tag(event) + f":{source} {text}\r\n".encode()

    def _said(self, event: ev.Event, target: str, text: str, verb: str = "PRIVMSG") -> bytes:
        prefix = self._tag(event) + f":{self.source(event.name)} {verb} {target} :".encode()
        return b"".join(split_text(prefix, text))

    def _notice(self, event: ev.Event, text: str) -> bytes:
        prefix = self._tag(event) + f":{self.server_name} NOTICE {channel(event.room)} :".encode()
        return b"".join(split_text(prefix, text))

    # -- IWireFormat ----------------------------------------------------

    def render(self, event: ev.Event) -> bytes:
        kind = event.__class__
        if kind is ev.Message:  # with the sender's IRC formatting codes, if any
            return self._said(event, channel(event.room), event.rich or event.text)
        if kind is ev.Action:
            return self._said(event, channel(event.room),
                              f"\x01ACTION {event.rich or event.text}\x01")
        if kind is ev.Joined:
            line = self._line(event, self.source(event.name), f"JOIN {channel(event.room)}")
            if event.admin:  # admins are channel operators everywhere
                line += self._line(event, self.server_name,
                                   f"MODE {channel(event.room)} +o {event.name}")
            return line
        if kind is ev.Left:
            why = with_reason(event.cause, event.reason) if event.cause else event.reason
            if event.quit:
                return self._line(event, self.source(event.name), f"QUIT :{why or 'Quit'}")
            return self._line(event, self.source(event.name),
                              f"PART {channel(event.room)} :{why}")
        if kind is ev.Topic:
            return self._line(event, self.source(event.by),
                              f"TOPIC {channel(event.room)} :{event.text}")
        if kind is ev.Kicked or kind is ev.Banned:
            return self._line(event, self.source(event.by),
                              f"KICK {channel(event.room)} {event.name} :{_why(event)}")
        if kind is ev.Muted:
            text = f"{event.name} was muted by {event.by}"
            if event.duration is not None:
                text += f" for {format_duration(event.duration)}"
            return self._notice(event, text)
        if kind is ev.Unmuted:
            return self._notice(event, f"{event.name} was unmuted by {event.by}")
        if kind is ev.Unbanned:
            return self._notice(event, f"{event.name} was unbanned by {event.by}")
        if kind is ev.Notice:
            return self._notice(event, event.text)
        return b""

    def render_for(self, event: ev.Event, viewer: str) -> bytes:
        kind = event.__class__
        if kind is ev.Private:
            lines = []
            if event.target == viewer:
                lines.append(self._said_by(event, event.sender, viewer, event.text))
            if event.sender == viewer and event.target != viewer:
                pass  # the sender sees their own only with echo-message (the protocol)
            return b"".join(lines)
        if kind is ev.Welcome:  # the JOIN echo; NAMES follows from the protocol
            target = channel(event.room)
            out = [self._line(event, self.source(viewer), f"JOIN {target}")]
            if event.topic:
                out.extend(split_text(
                    f":{self.server_name} 332 {viewer} {target} :".encode(), event.topic))
            if self.history and event.history:
                out.append(history_lines(self, event.room, event.history, f"h{event.id}"))
            return b"".join(out)
        if kind is ev.Replaced:
            return b"ERROR :Closing Link: logged in from elsewhere\r\n"
        if (kind is ev.Kicked and not event.room_only or kind is ev.Banned) \
                and event.name == viewer:  # KICK out of one room: shared, as render()
            return f"ERROR :Closing Link: {_why(event)}\r\n".encode()
        return self.render(event)

    def echo(self, at: float, nick: str, verb: str, target: str, text: str) -> bytes:
        """What nick sent, back to them (echo-message), as the others see it."""
        prefix = f":{self.source(nick)} {verb} {target} :".encode()
        if self.times:
            prefix = f"@time={server_time(at)} ".encode() + prefix
        return b"".join(split_text(prefix, text))

    def _said_by(self, event: ev.Event, sender: str, target: str, text: str) -> bytes:
        prefix = self._tag(event) + f":{self.source(sender)} PRIVMSG {target} :".encode()
        return b"".join(split_text(prefix, text))


def _why(event) -> str:
    verb = "kicked" if event.__class__ is ev.Kicked else "banned"
    text = f"{verb} by {event.by}"
    duration = getattr(event, "duration", None)
    if duration is not None:
        text += f" for {format_duration(duration)}"
    return with_reason(text, event.reason)


def history_lines(fmt: IrcFormat, room: str, history: Iterable, batch: str) -> bytes:
    """A room's history as a chathistory batch, each line with its original time."""
    target = channel(room)
    out = [f"BATCH +{batch} chathistory {target}\r\n".encode()]
    for said in history:
        text = said.text if said.kind == "message" else f"\x01ACTION {said.text}\x01"
        prefix = (f"@batch={batch};time={server_time(said.at)} "
                  f":{fmt.source(said.name)} PRIVMSG {target} :").encode()
        out.extend(split_text(prefix, text))
    out.append(f"BATCH -{batch}\r\n".encode())
    return b"".join(out)
