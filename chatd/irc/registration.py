"""IRC registration: CAP negotiation, PASS, SASL PLAIN, NICK and USER, then
login through the core's portal (chatd.core.login), as every front end does.

A Registration belongs to one IrcConnection and reaches it only through
its public side (reply, send, error, hold_until, nick, caps...).  Admins'
and registered names need a password (PASS or SASL PLAIN); a wrong one
gets 464 and the connection is closed, counted in the same failed-login
window as the line protocol's.  CAP also works after registration.
"""

from __future__ import annotations

import base64
import binascii

from twisted.cred import credentials
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.logger import Logger
from twisted.words.protocols import irc

from chatd.core.auth import RegisteredPassword
from chatd.core.errors import Banned, NameTaken, RoomError
from chatd.core.login import ADMIN, GUEST, REGISTERED, Guest, IChatUser, Mind, check
from chatd.core.text import clean, valid_name

log = Logger()

# IRCv3 capabilities offered (CAP LS).
# multi-prefix: admins' @ is the only prefix there is, so it changes nothing.
CAPS = ("server-time", "message-tags", "echo-message", "multi-prefix", "away-notify",
        "batch", "sasl")


class Registration:
    """The registration steps (and CAP) of one IRC connection."""

    def __init__(self, conn):
        self._conn = conn
        self.username: str | None = None
        self.password: str | None = None
        self._negotiating = False  # CAP LS seen, CAP END not yet
        self._sasl: tuple[str, str] | None = None  # account, password
        self._sasl_step = False
        self._logging_in = False

    def _cap(self, sub: str, text: str) -> None:
        conn = self._conn
        conn.send(f":{conn.server_name} CAP {conn.nick} {sub} :{text}")

    def irc_CAP(self, params: list[str]) -> None:
        sub = params[0].upper() if params else ""
        if sub == "LS":
            if self._conn.user is None:
                self._negotiating = True
            self._cap("LS", " ".join(CAPS))
        elif sub == "LIST":
            self._cap("LIST", " ".join(sorted(self._conn.caps)))
        elif sub == "REQ":
            wanted = params[1].split() if len(params) > 1 else []
            names = [w.lstrip("-") for w in wanted]
            if self._conn.user is None:
                self._negotiating = True
            if wanted and all(name in CAPS for name in names):
                for want, name in zip(wanted, names, strict=True):
                    if want.startswith("-"):
                        self._conn.caps.discard(name)
                    else:
                        self._conn.caps.add(name)
                if self._conn.user is not None:
                    self._conn.wire_changed()
                self._cap("ACK", " ".join(wanted))
            else:
                self._cap("NAK", " ".join(wanted))
        elif sub == "END":
            if self._negotiating:
                self._negotiating = False
                self._maybe_register()
        else:
            self._conn.reply("410", sub or "*", "Invalid CAP command")

    def irc_PASS(self, params: list[str]) -> None:
        if not params:
            self._conn.reply(irc.ERR_NEEDMOREPARAMS, "PASS", "Not enough parameters")
            return
        self.password = params[-1]

    def irc_NICK(self, params: list[str]) -> None:
        if self._conn.user is not None:
            self._conn.reply("447", "Nick changes are not supported: reconnect with the new nick")
            return
        if not params or not params[0]:
            self._conn.reply(irc.ERR_NONICKNAMEGIVEN, "No nickname given")
            return
        nick = clean(params[0]).strip()
        if not valid_name(nick):
            self._conn.reply(irc.ERR_ERRONEUSNICKNAME, nick or "*",
                       "Erroneous nickname: use 1-24 letters, digits, '_', '-' or '.'")
            return
        self._conn.nick = nick
        self._maybe_register()

    def irc_USER(self, params: list[str]) -> None:
        if len(params) < 4:
            self._conn.reply(irc.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
            return
        self.username = params[0]
        self._maybe_register()

    def irc_AUTHENTICATE(self, params: list[str]) -> None:
        if "sasl" not in self._conn.caps:
            self._conn.reply("904", "SASL authentication failed")
            return
        arg = params[0] if params else ""
        if not self._sasl_step:
            if arg.upper() != "PLAIN":
                self._conn.reply("908", "PLAIN", "are available SASL mechanisms")
                self._conn.reply("904", "SASL authentication failed")
                return
            self._sasl_step = True
            self._conn.send("AUTHENTICATE +")
            return
        self._sasl_step = False
        if arg == "*":
            self._conn.reply("906", "SASL authentication aborted")
            return
        try:
            parts = base64.b64decode(arg, validate=True).decode("utf-8").split("\0")
            _, account, password = parts
        except (binascii.Error, UnicodeDecodeError, ValueError):
            self._conn.reply("904", "SASL authentication failed")
            return
        conn, server = self._conn, self._conn.server
        admin = valid_name(account) and server.is_admin_name(account)
        if not admin and not (valid_name(account) and server.is_registered_name(account)):
            conn.reply("904", "SASL authentication failed")  # no such account
            return
        failures = conn.factory.gate.failures
        if not failures.begin(conn.host):
            conn.stats.refused("login failures")
            conn.error("too many failed logins, try later")
            return
        make = credentials.UsernamePassword if admin else RegisteredPassword
        done = defer.Deferred()
        conn.hold_until(done)

        def accepted(_):
            failures.end(conn.host, failed=False)
            self._sasl = (account, password)
            conn.reply("900", f"{account}!{account}@{conn.server_name}", account,
                       f"You are now logged in as {account}")
            conn.reply("903", "SASL authentication successful")

        def refused(failure):
            failure.trap(UnauthorizedLogin)
            failures.end(conn.host, failed=True)
            kind = ADMIN if admin else REGISTERED
            log.warn("failed {kind} login for {name} from {host}", kind=kind,
                     name=account, host=conn.host)
            if admin:
                conn.stats.failed_admin_logins += 1
            conn.reply("904", "SASL authentication failed")

        d = check(conn.factory.portal, make(account, password))
        d.addCallbacks(accepted, refused)
        d.addErrback(lambda f: log.failure("SASL check failed", f))
        d.addBoth(done.callback)

    def _maybe_register(self) -> None:
        if (self._conn.user is not None or self._logging_in or self._negotiating
                or self._conn.nick == "*" or self.username is None):
            return
        server, nick = self._conn.server, self._conn.nick
        if self._sasl is not None:  # the account is the nick
            nick, password = self._sasl
            self._conn.nick = nick
        else:
            password = self.password
        admin = server.is_admin_name(nick)
        registered = not admin and server.is_registered_name(nick)
        try:
            server.check_name(nick, taking_over=registered)
            if not admin:
                server.check_address(self._conn.host)
        except Banned as e:
            self._conn.stats.refused("banned")
            self._conn.reply("465", str(e))
            self._conn.error(str(e))
            return
        except NameTaken:
            self._conn.reply(irc.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
            return
        except RoomError as e:
            self._conn.reply(irc.ERR_ERRONEUSNICKNAME, nick, str(e))
            return
        if admin or registered:
            if password is None:
                self._conn.reply("464", "Password required: PASS or SASL PLAIN")
                self._conn.stats.refused("wrong password")
                self._conn.error("password required")
                return
            if self._conn.factory.gate.failures.blocked(self._conn.host):
                self._conn.stats.refused("login failures")
                self._conn.error("too many failed logins, try later")
                return
            kind = ADMIN if admin else REGISTERED
            make = credentials.UsernamePassword if admin else RegisteredPassword
            self._log_in(make(nick, password), kind, checked=True)
        else:
            self._log_in(Guest(nick), GUEST, checked=False)

    def _log_in(self, creds, kind: str, checked: bool) -> None:
        failures = self._conn.factory.gate.failures
        if checked and not failures.begin(self._conn.host):
            self._conn.stats.refused("login failures")
            self._conn.error("too many failed logins, try later")
            return
        self._logging_in = True
        done = defer.Deferred()
        self._conn.hold_until(done)
        conn = self._conn
        d = conn.factory.portal.login(creds, Mind(conn, conn.host, kind), IChatUser)

        def accepted(result):
            if checked:
                failures.end(self._conn.host, failed=False)
            return result

        def refused(failure):
            if not failure.check(UnauthorizedLogin):
                if checked:
                    failures.end(self._conn.host, failed=False)
                return failure
            if checked:
                failures.end(self._conn.host, failed=True)
                log.warn("failed {kind} login for {name} from {host}", kind=kind,
                         name=self._conn.nick, host=self._conn.host)
                if kind == ADMIN:
                    self._conn.stats.failed_admin_logins += 1
            self._conn.stats.refused("wrong password")
            self._conn.reply("464", "Password incorrect")
            self._conn.error("wrong password")
            return None

        d.addCallbacks(accepted, refused)
        d.addCallback(self._logged_in)
        d.addErrback(self._refused_name)
        d.addBoth(lambda _: setattr(self, "_logging_in", False))
        d.addBoth(done.callback)

    def _refused_name(self, failure) -> None:
        if failure.check(Banned):
            self._conn.reply("465", str(failure.value))
            self._conn.error(str(failure.value))
        elif failure.check(NameTaken):
            self._conn.reply(irc.ERR_NICKNAMEINUSE, self._conn.nick, "Nickname is already in use")
        elif failure.check(RoomError):
            self._conn.reply(irc.ERR_ERRONEUSNICKNAME, self._conn.nick, str(failure.value))
        else:
            log.failure("IRC login for {host} failed", failure, host=self._conn.host)
            self._conn.error("internal error, sorry")

    def _logged_in(self, result) -> None:
        if result is not None:
            _, user, logout = result
            self._conn.logged_in(user, logout)
