"""What each JSON message from a page does (docs/web.md, "Client to server").

Messages runs them for one WebConnection, through its public side (user,
server, login, asked, send, reply, hold_until), as chatd.line.commands
does for a line connection: `say` text starting with "/" goes to the line
protocol's own Commands, whose line replies the connection turns into
JSON; `/join`, `/part` and `/rooms` are the page's own messages, since a
page may be in several rooms at once.  A refusal is a RoomError, which
the connection sends as one `error`.
"""

from __future__ import annotations

import chatd.core.events as ev
from chatd.core.errors import RoomError
from chatd.core.room import Room
from chatd.core.text import clean
from chatd.line.commands import Commands
from chatd.line.login import LoginState
from chatd.web import wire


class Messages:
    """The messages of one page."""

    __slots__ = ("_conn",)

    def __init__(self, conn):
        self._conn = conn

    def _text(self, message: dict, field: str) -> str:
        value = message.get(field)
        if not isinstance(value, str):
            raise RoomError(f'"{field}" must be a string')
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise RoomError(f'"{field}" is not valid text') from None
        return value

    def _in(self, message: dict) -> Room:
        """The room a message names, which its user must be in."""
        name = self._text(message, "room")
        room = self._conn.server.room(name)
        if room is None or room not in self._conn.user.rooms:
            raise RoomError(f"you are not in {name}")
        return room

    def _logged_in_only(self) -> None:
        if self._conn.member is None:
            raise RoomError("log in first")

    def on_ping(self, message: dict) -> None:
        self._conn.send(wire.reply("pong"))

    def on_login(self, message: dict) -> None:
        name = self._text(message, "name")
        if self._conn.login is None or self._conn.login.state is not LoginState.USERNAME:
            raise RoomError("no login was asked for")
        self._conn.login.line(name)

    def on_password(self, message: dict) -> None:
        password = self._text(message, "password")
        if self._conn.asked is not None and self._conn.member is not None:
            then, self._conn.asked = self._conn.asked, None
            then(password)
        elif self._conn.login is not None and self._conn.login.state is LoginState.PASSWORD:
            self._conn.login.line(password)
        else:
            raise RoomError("no password was asked for")

    def on_say(self, message: dict) -> None:
        self._logged_in_only()
        room, text = self._in(message), clean(self._text(message, "text"))
        if not text.strip():
            return
        if text.startswith("/") and not text.startswith("//"):
            verb, _, arg = text[1:].partition(" ")
            verb, arg = verb.lower(), arg.strip()
            if verb == "join":
                self.on_join({"room": arg})
            elif verb == "part":
                self.on_part({"room": arg or room.name})
            elif verb == "rooms":
                self.on_rooms(message)
            elif verb == "me" and arg:  # a page hears its own lines (docs/web.md)
                self._conn.server.action(self._conn.user, room, arg, echo=True)
            else:
                self._conn.here = room
                Commands(self._conn).run(text[1:])
            return
        self._conn.server.say(self._conn.user, room,
                              text[1:] if text.startswith("//") else text, echo=True)

    def on_join(self, message: dict) -> None:
        self._logged_in_only()
        name = self._text(message, "room").strip()
        room = self._conn.server.room(name)
        if room is not None and room in self._conn.user.rooms:
            raise RoomError(f"you are in {room.name} already")
        self._conn.hold_until(self._conn.server.enter(self._conn.user, name))

    def on_part(self, message: dict) -> None:
        self._logged_in_only()
        room = self._in(message)
        if len(self._conn.user.rooms) == 1:
            raise RoomError(f"{room.name} is the only room you are in")
        user = self._conn.user
        self._conn.server.part(user, room)
        # The room tells those still in it; the page hears it too.
        self._conn.send(wire.WEB.render(room.event(ev.Left, user.name, quit=False)))

    def on_rooms(self, message: dict) -> None:
        self._logged_in_only()
        rooms = [{"name": room.name, "count": len(room), "topic": room.topic}
                 for room in self._conn.server.rooms]
        self._conn.send(wire.reply("rooms", rooms=rooms))



HANDLERS = {"ping": Messages.on_ping, "login": Messages.on_login,
            "password": Messages.on_password, "say": Messages.on_say,
            "join": Messages.on_join, "part": Messages.on_part, "rooms": Messages.on_rooms}
