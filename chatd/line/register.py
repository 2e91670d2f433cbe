"""/register: a logged-in user protects their name with a password.

The server asks `? password` twice; the two lines go to this object, not
to the room (ChatProtocol.ask), are never echoed back and never logged.
The hash is made off the reactor thread and written by the factory's
registrar (chatd.core.auth.register); from then on, logging in as this name
asks for the password.  Who may register is the server's rule
(`[server] registration`: open, admins, off).
"""

from __future__ import annotations

from twisted.logger import Logger

from chatd.core.auth import MIN_PASSWORD
from chatd.core.errors import RoomError
from chatd.line.codec import error, notice, prompt

log = Logger()


class Registration:
    """The two password lines of one /register."""

    def __init__(self, conn):
        self._conn = conn
        self._first: str | None = None

    def start(self) -> None:
        conn = self._conn
        user, server = conn.member, conn.server
        if user.admin:
            raise RoomError("admins log in with their password already")
        if server.is_registered_name(user.name):  # the users file, as chatd-admin left it
            raise RoomError(f"{user.name} is registered already")
        if server.registration == "off" or conn.registrar is None:
            raise RoomError("registration is off on this server")
        if server.registration == "admins":
            raise RoomError("only an admin can register a name on this server")
        conn.reply(notice(f"choose a password for {user.name} (at least {MIN_PASSWORD} "
                          "characters), then type it again"), prompt("password"))
        conn.ask(self._password)

    def _password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            self._conn.reply(error(f"password too short (at least {MIN_PASSWORD} "
                                   "characters): not registered"))
            return
        self._first = password
        self._conn.reply(prompt("password"))
        self._conn.ask(self._again)

    def _again(self, password: str) -> None:
        conn = self._conn
        if password != self._first:
            conn.reply(error("the passwords differ: not registered"))
            return
        user = conn.member
        if user is None:
            return
        d = conn.registrar(user.name, password)
        self._first = None

        def done(_):
            user.registered = True
            log.info("{name} registered their name", name=user.name)
            conn.reply(notice(f"{user.name} is registered: logging in as {user.name} "
                              "asks for this password"))

        def failed(failure):
            log.failure("registering {name} failed", failure, name=user.name)
            conn.reply(error("registration failed, sorry"))

        d.addCallbacks(done, failed)
        conn.hold_until(d)
