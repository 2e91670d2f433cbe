"""The login steps of one line-protocol connection (docs/protocol.md, "Login").

LoginState names the steps.  A Login runs them for one connection until
it is in the room, then the connection drops it: it checks the name, asks
an admin's password through the portal, and counts bad names.  It reaches
the connection only through LoginContext, which ChatProtocol provides.
"""

from __future__ import annotations

import enum
from typing import Protocol

from twisted.cred import credentials
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet import defer
from twisted.logger import Logger

from chatd.core.auth import IChatAdmin
from chatd.core.errors import Banned, RoomError
from chatd.core.limits import LoginFailures
from chatd.core.room import Room
from chatd.core.stats import Stats
from chatd.core.text import clean, error, prompt

log = Logger()

MAX_NAME_ATTEMPTS = 3


class LoginState(enum.Enum):
    """Where a connection is in the login steps; Login._STEP names the
    method that takes a line in each step before the room."""

    USERNAME = "username"
    PASSWORD = "password"  # an admin's name was given
    IN_ROOM = "in room"


class LoginContext(Protocol):
    """All the login steps use of their connection."""

    host: str

    @property
    def room(self) -> Room: ...

    @property
    def stats(self) -> Stats: ...

    @property
    def closing(self) -> bool: ...

    def reply(self, *lines: str) -> None: ...

    def close(self, *lines: str) -> None: ...

    def refuse(self, cause: str, *lines: str) -> None:
        """Close a connection that never joined, counted under cause in /stats."""

    def hold_until(self, done: defer.Deferred) -> None: ...

    def enter(self, name: str, admin: bool) -> None:
        """Join the room as name (raises RoomError); the login is over."""


class Login:
    """The login steps of one connection."""

    __slots__ = ("_conn", "_failures", "_portal", "state", "_name_failures", "_pending_name")

    def __init__(self, conn: LoginContext, failures: LoginFailures, portal: Portal):
        self._conn = conn
        self._failures = failures
        self._portal = portal
        self.state = LoginState.USERNAME
        self._name_failures = 0
        self._pending_name: str | None = None

    def line(self, text: str) -> None:
        """One line typed before the room: a name, or an admin's password."""
        self._STEP[self.state](self, text)

    def _username(self, text: str) -> None:
        conn, name = self._conn, clean(text).strip()
        if not name:
            return
        try:
            conn.room.check_name(name)
        except Banned as e:
            log.info("banned name {name} refused from {host}", name=name, host=conn.host)
            conn.refuse("banned", error(str(e)))
            return
        except RoomError as e:
            self._name_failures += 1
            if self._name_failures >= MAX_NAME_ATTEMPTS:
                conn.refuse("bad name", error(str(e)), error("too many attempts, goodbye"))
            else:
                conn.reply(error(str(e)), prompt("username"))
            return
        if conn.room.is_admin_name(name):
            if self._failures.blocked(conn.host):
                self._too_many_failures(name)
                return
            self._pending_name = name
            self.state = LoginState.PASSWORD
            conn.reply(prompt("password"))
            return
        try:  # an address ban keeps out every name but the admins'
            conn.room.check_address(conn.host)
        except Banned as e:
            log.info("banned address {host} refused as {name}", name=name, host=conn.host)
            conn.refuse("banned", error(str(e)))
            return
        self._enter(name, admin=False)

    def _too_many_failures(self, name: str) -> None:
        log.warn("admin login for {name} refused from {host}: too many failures",
                 name=name, host=self._conn.host)
        self._conn.refuse("login failures", error("too many failed logins, try later"))

    def _password(self, password: str) -> None:
        conn, name, failures = self._conn, self._pending_name, self._failures
        if not failures.begin(conn.host):
            self._too_many_failures(name)
            return
        # Held before asking: the check may answer (and close) at once.
        checked = defer.Deferred()
        conn.hold_until(checked)
        d = self._portal.login(credentials.UsernamePassword(name, password), None,
                               IChatAdmin)

        def accepted(result):
            failures.end(conn.host, failed=False)
            if not conn.closing:
                self._enter(name, admin=True)

        def refused(failure):
            failure.trap(UnauthorizedLogin)
            # One line per failure, for fail2ban: "failed admin login for NAME from HOST".
            log.warn("failed admin login for {name} from {host}", name=name, host=conn.host)
            failures.end(conn.host, failed=True)
            conn.stats.failed_admin_logins += 1
            conn.refuse("wrong password", error("wrong password"))

        d.addCallbacks(accepted, refused)
        d.addErrback(self._internal_error)
        d.addBoth(checked.callback)

    def _enter(self, name: str, admin: bool) -> None:
        try:
            self._conn.enter(name, admin)
        except Banned as e:  # banned while the password was being checked
            self._conn.refuse("banned", error(str(e)))
            return
        except RoomError as e:
            self.state = LoginState.USERNAME
            self._conn.reply(error(str(e)), prompt("username"))
            return
        self.state = LoginState.IN_ROOM

    def _internal_error(self, failure) -> None:
        log.failure("internal error for {host}", failure, host=self._conn.host)
        self._conn.close(error("internal error, sorry"))

    _STEP = {LoginState.USERNAME: _username, LoginState.PASSWORD: _password}
