"""What the client knows of the room it is in, read from the server's notices.

The terminal's status line shows the room and how many are in it, and Tab
completes the names in it and the rooms for /join.  The server sends no
structured state, only the notices of docs/protocol.md, so RoomView follows
them: `* logged in as NAME in ROOM`, `* you are in ROOM`, `* online (N): ...`
(at login, on entering a room, and /who's answer), `* NAME joined`,
`* NAME left`, kicks and bans, and `* rooms (N): ...`.
"""

from __future__ import annotations

import re

from chatd.line.codec import kind_of

_ONLINE = re.compile(r"online \((\d+)\): (.*?)(?:, and \d+ more \(/who lists everyone\))?\Z")
_ROOMS = re.compile(r"rooms \(\d+\): (.*)\Z")
_LOGGED_IN = re.compile(r"logged in as (\S+)(?: \(admin\))? in (\S+)\Z")
_LEFT = re.compile(r"(\S+) (?:left\b|was kicked by |was banned by |was kicked from (\S+) by )")
_JOINED_ELSEWHERE = re.compile(r"\S+ left \(joined (\S+)\)\Z")


class RoomView:
    """The room, the people in it, the rooms seen, the names heard of."""

    def __init__(self):
        self.room = ""
        self.count = 0
        self.names: dict[str, str] = {}  # lower-case name -> name, in this room
        self.rooms: set[str] = set()
        self.others: dict[str, str] = {}  # names heard of elsewhere (private messages)
        self.admin = False

    def feed(self, line: str) -> bool:
        """Learn from one server line; True if the room or its people changed."""
        kind, name, text = kind_of(line)
        if kind == "private":
            self.others[name.lower()] = name
            return False
        if kind != "notice":
            return False
        if m := _LOGGED_IN.match(text):
            self.admin = " (admin) " in text
            self._enter(m.group(2))
        elif text.startswith("you are in ") and " " not in text[11:]:
            self._enter(text[11:])
        elif m := _ONLINE.match(text):
            self.count = int(m.group(1))
            self.names = {n.lstrip("@").lower(): n.lstrip("@") for n in m.group(2).split(", ")}
        elif m := _ROOMS.match(text):
            self.rooms = {item.rsplit(" (", 1)[0] for item in m.group(1).split(", ")}
            return False
        elif text.endswith(" joined") and " " not in text[:-7]:
            who = text[:-7]
            if who.lower() not in self.names:
                self.count += 1
            self.names[who.lower()] = who
        elif m := _LEFT.match(text):
            if m.group(2) and m.group(2) != self.room:
                return False
            if (joined := _JOINED_ELSEWHERE.match(text)) is not None:
                self.rooms.add(joined.group(1))
            known = self.names.pop(m.group(1).lower(), None) is not None
            if known or self.count > len(self.names) + 1:  # /who listed only the first 50
                self.count = max(0, self.count - 1)
        else:
            return False
        return True

    def _enter(self, room: str) -> None:
        self.room = room
        self.rooms.add(room)
        self.names, self.count = {}, 0

    def people(self) -> list[str]:
        """Names to complete: this room's first, then others heard of."""
        here = sorted(self.names.values(), key=str.lower)
        return here + sorted((n for k, n in self.others.items() if k not in self.names),
                             key=str.lower)
