"""The login steps of one line-protocol connection (docs/protocol.md, "Login").

LoginState names the steps.  A Login runs them for one connection until
it is in the landing room, then the connection drops it: it checks the
name, asks an admin's or a registered user's password, logs in through
the core's portal (chatd.core.login) and counts bad names.  It reaches
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

from chatd.core.auth import RegisteredPassword
from chatd.core.errors import Banned, RoomError, Unavailable
from chatd.core.limits import LoginFailures
from chatd.core.login import ADMIN, GUEST, REGISTERED, Guest, IChatUser, Mind
from chatd.core.room import Room, User
from chatd.core.server import Server
from chatd.core.stats import Stats
from chatd.core.text import clean
from chatd.line.codec import error, prompt

log = Logger()

MAX_NAME_ATTEMPTS = 3


class LoginState(enum.Enum):
    """Where a connection is in the login steps; Login._STEP names the
    method that takes a line in each step before the room."""

    USERNAME = "username"
    PASSWORD = "password"  # an admin's or a registered user's name was given
    ENTERING = "entering"  # logged in; the landing room's history is on its way
    IN_ROOM = "in room"


class LoginContext(Protocol):
    """All the login steps use of their connection."""

    host: str

    @property
    def server(self) -> Server: ...

    @property
    def stats(self) -> Stats: ...

    @property
    def closing(self) -> bool: ...

    def reply(self, *lines: str) -> None: ...

    def close(self, *lines: str) -> None: ...

    def refuse(self, cause: str, *lines: str) -> None:
        """Close a connection that never joined, counted under cause in /stats."""

    def hold_until(self, done: defer.Deferred) -> None: ...

    def logged_in(self, user: User, logout) -> None:
        """The portal gave this connection its user."""

    def entered(self, room: Room) -> None:
        """The user is in room; the login is over."""


class Login:
    """The login steps of one connection."""

    __slots__ = ("_conn", "_failures", "_portal", "state", "_name_failures", "_pending_name",
                 "_kind")

    def __init__(self, conn: LoginContext, failures: LoginFailures, portal: Portal):
        self._conn = conn
        self._failures = failures
        self._portal = portal
        self.state = LoginState.USERNAME
        self._name_failures = 0
        self._pending_name: str | None = None
        self._kind = GUEST  # whose password is asked: ADMIN or REGISTERED

    def line(self, text: str) -> None:
        """One line typed before the room: a name, or a password."""
        self._STEP[self.state](self, text)

    def _username(self, text: str) -> None:
        conn, name = self._conn, clean(text).strip()
        if not name:
            return
        server = conn.server
        admin = server.is_admin_name(name)
        registered = not admin and server.is_registered_name(name)
        try:
            server.check_name(name, taking_over=registered)
        except Banned as e:
            log.info("banned name {name} refused from {host}", name=name, host=conn.host)
            conn.refuse("banned", error(str(e)))
            return
        except Unavailable as e:  # a cluster node cut off from the others
            conn.refuse("cluster unavailable", error(str(e)))
            return
        except RoomError as e:
            self._name_failures += 1
            if self._name_failures >= MAX_NAME_ATTEMPTS:
                conn.refuse("bad name", error(str(e)), error("too many attempts, goodbye"))
            else:
                conn.reply(error(str(e)), prompt("username"))
            return
        if not admin:
            try:  # an address ban keeps out every name but the admins'
                server.check_address(conn.host)
            except Banned as e:
                log.info("banned address {host} refused as {name}", name=name,
                         host=conn.host)
                conn.refuse("banned", error(str(e)))
                return
        if admin or registered:
            if self._failures.blocked(conn.host):
                self._too_many_failures(name)
                return
            self._pending_name = name
            self._kind = ADMIN if admin else REGISTERED
            self.state = LoginState.PASSWORD
            conn.reply(prompt("password"))
            return
        self._log_in(Guest(name), GUEST)

    def _too_many_failures(self, name: str) -> None:
        log.warn("{kind} login for {name} refused from {host}: too many failures",
                 kind=self._kind, name=name, host=self._conn.host)
        self._conn.refuse("login failures", error("too many failed logins, try later"))

    def _password(self, password: str) -> None:
        conn, name, failures = self._conn, self._pending_name, self._failures
        if not failures.begin(conn.host):
            self._too_many_failures(name)
            return
        kind = self._kind
        make = credentials.UsernamePassword if kind == ADMIN else RegisteredPassword

        def refused(failure):
            if not failure.check(UnauthorizedLogin):
                failures.end(conn.host, failed=False)
                return failure
            # One line per failure, for fail2ban: "failed admin login for NAME from HOST".
            log.warn("failed {kind} login for {name} from {host}", kind=kind,
                     name=name, host=conn.host)
            failures.end(conn.host, failed=True)
            if kind == ADMIN:
                conn.stats.failed_admin_logins += 1
            conn.refuse("wrong password", error("wrong password"))

        def accepted(result):
            failures.end(conn.host, failed=False)
            return result

        self._log_in(make(name, password), kind, accepted, refused)

    def _log_in(self, creds, kind: str, accepted=lambda result: result,
                refused=None) -> None:
        """Log in through the portal, then enter the landing room; the
        connection's further lines wait until that is done (a password check
        runs in a thread, a room's history may be read from disk)."""
        conn = self._conn
        done = defer.Deferred()
        conn.hold_until(done)  # held before asking: the portal may answer at once
        d = self._portal.login(creds, Mind(conn, conn.host, kind), IChatUser)
        d.addCallbacks(accepted, refused or self._refused_guest)
        d.addCallback(self._logged_in)
        d.addErrback(self._internal_error)
        d.addBoth(done.callback)

    def _refused_guest(self, failure) -> None:
        failure.trap(UnauthorizedLogin)  # became an admin's or registered name meanwhile
        self.state = LoginState.USERNAME
        self._conn.reply(error("that username needs a password now"), prompt("username"))

    def _logged_in(self, result) -> defer.Deferred | None:
        """The portal's answer, (interface, user, logout): now the landing room."""
        if result is None:
            return None  # refused, and answered
        _, user, logout = result
        conn = self._conn
        if conn.closing:  # gone while the password was checked
            logout()
            return None
        conn.logged_in(user, logout)
        self.state = LoginState.ENTERING
        return conn.server.enter(user, login=True).addCallback(self._entered)

    def _entered(self, room: Room | None) -> None:
        if room is not None:
            self.state = LoginState.IN_ROOM
            self._conn.entered(room)

    def _internal_error(self, failure) -> None:
        if failure.check(Banned):  # banned while the password was being checked
            self._conn.refuse("banned", error(str(failure.value)))
            return
        if failure.check(RoomError):  # the name was taken meanwhile
            self.state = LoginState.USERNAME
            self._conn.reply(error(str(failure.value)), prompt("username"))
            return
        log.failure("internal error for {host}", failure, host=self._conn.host)
        self._conn.close(error("internal error, sorry"))

    _STEP = {LoginState.USERNAME: _username, LoginState.PASSWORD: _password}
