"""The web front end's wire format: core events as JSON objects, each one a
complete server-to-client WebSocket text frame (docs/web.md).

A room's fan-out renders each turn's events once per wire format and writes
the same bytes to every member of that format (chatd.core.room).  To keep
that for WebSocket clients, WebFormat renders the whole frame (RFC 6455
5.2: FIN + text opcode, unmasked, the length, the UTF-8 JSON), which the
connection writes straight to the TCP transport under the WebSocket.
"""

from __future__ import annotations

import json

import chatd.core.events as ev

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def frame(payload: bytes) -> bytes:
    """payload (UTF-8 text) as one unfragmented, unmasked WebSocket text frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


# The close frame the server sends before it closes: 1000, normal closure.
CLOSE = b"\x88\x02\x03\xe8"


def encode(obj: dict) -> bytes:
    """obj as the frame a client receives."""
    return frame(_dumps(obj).encode("utf-8"))


def reply(kind: str, **fields) -> bytes:
    """A reply to one client (not a core event): `{"kind": kind, ...}`."""
    return encode({"kind": kind, **fields})


def _base(e: ev.Event, kind: str) -> dict:
    return {"kind": kind, "id": e.id, "at": e.at, "room": e.room}


def _said(kind: str):
    return lambda e: {**_base(e, kind), "name": e.name, "text": e.text}


def _left(e: ev.Left) -> dict:
    return {**_base(e, "left"), "name": e.name, "reason": e.reason, "cause": e.cause,
            "quit": e.quit}


def _punished(kind: str):
    def render(e, you: bool = False) -> dict:
        return {**_base(e, kind), "name": e.name, "by": e.by, "reason": e.reason,
                "duration": getattr(e, "duration", None), "you": you,
                **({"room_only": e.room_only} if kind == "kicked" else {})}
    return render


def _by(kind: str, duration: bool = False):
    def render(e) -> dict:
        obj = {**_base(e, kind), "name": e.name, "by": e.by}
        if duration:
            obj["duration"] = e.duration
        return obj
    return render


def _welcome(e: ev.Welcome) -> dict:
    members = [{"name": label.removeprefix("@"), "admin": label.startswith("@")}
               for label in e.who]
    history = [{"kind": said.kind, "name": said.name, "text": said.text, "at": said.at}
               for said in e.history]
    return {**_base(e, "welcome"), "name": e.name, "admin": e.admin, "members": members,
            "count": e.count, "topic": e.topic, "history": history, "login": e.login,
            "motd": e.motd}


def _private(e: ev.Private) -> dict:
    return {**_base(e, "private"), "from": e.sender, "to": e.target, "text": e.text}


_RENDER = {
    ev.Message: _said("message"),
    ev.Action: _said("action"),
    ev.Joined: lambda e: {**_base(e, "joined"), "name": e.name, "admin": e.admin},
    ev.Left: _left,
    ev.Topic: lambda e: {**_base(e, "topic"), "by": e.by, "text": e.text},
    ev.Notice: lambda e: {**_base(e, "notice"), "text": e.text},
    ev.Kicked: _punished("kicked"),
    ev.Banned: _punished("banned"),
    ev.Unbanned: _by("unbanned"),
    ev.Muted: _by("muted", duration=True),
    ev.Unmuted: _by("unmuted"),
    ev.Welcome: _welcome,
    ev.Private: _private,
    ev.Replaced: lambda e: _base(e, "replaced"),
}


_MESSAGE = '{"kind":"message","id":%d,"at":%s,"room":%s,"name":%s,"text":%s}'


class WebFormat:
    """Renders core events as WebSocket frames of JSON (chatd.core.room.IWireFormat)."""

    name = "web"

    def render(self, event: ev.Event) -> bytes:
        """event as everyone in its room sees it (the shared fan-out bytes)."""
        if event.__class__ is ev.Message:  # most of what a busy room says: twice as fast
            return frame((_MESSAGE % (event.id, repr(event.at), _dumps(event.room),
                                      _dumps(event.name), _dumps(event.text))).encode())
        return encode(_RENDER[type(event)](event))

    def render_for(self, event: ev.Event, viewer: str) -> bytes:
        """event as the one person named viewer sees it (`you` on their own kick or ban)."""
        kind = type(event)
        if kind in (ev.Kicked, ev.Banned):
            return encode(_RENDER[kind](event, you=event.name == viewer))
        return encode(_RENDER[kind](event))


WEB = WebFormat()


def from_line(line: str) -> bytes:
    """A reply the shared login and command code wrote as a line-protocol
    line (chatd.line.codec: `* notice`, `! error`, `? prompt`) as the JSON
    object the page gets, so that the page never parses line text."""
    head, text = line[:2], line[2:]
    if head == "! ":
        return reply("error", text=text)
    if head == "? " and text in ("username", "password"):
        return reply(text)
    return reply("notice", room="", text=text if head in ("* ", "? ") else line)
