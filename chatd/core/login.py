"""Logging in, the same way for every front end: twisted.cred.

A front end asks the portal for an IChatUser avatar with one of three kinds
of credentials, and gets a chatd.core.room.User logged in to the server
and a logout callable (logout = leave every room):

- an admin's name and password (IUsernamePassword: AdminChecker, DATA_DIR/admins);
- a registered user's name and password (IRegisteredPassword: UserChecker,
  DATA_DIR/users);
- a guest's name alone (IGuest: GuestChecker, which refuses the names of
  admins and registered users).

The mind is a Mind: the connection (IClient), where it comes from, and
which of the three kinds the front end asked with.  Since each kind of
credentials is checked by its own checker, the realm may trust the kind:
only the admins' checker ever lets an admin in.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.cred import checkers, credentials, error, portal
from twisted.internet import defer
from zope.interface import Attribute, Interface, implementer

from chatd.core.room import IClient
from chatd.core.server import Server

GUEST, ADMIN, REGISTERED = "guest", "admin", "registered"


class IChatUser(Interface):
    """The avatar: a logged-in chatd.core.room.User."""


class IGuest(credentials.ICredentials):
    username = Attribute("The name a guest asks for.")


@implementer(IGuest)
@dataclass(frozen=True)
class Guest:
    username: str


@dataclass(frozen=True)
class Mind:
    """Who is logging in, as the realm needs to know."""

    client: IClient
    address: str | None
    kind: str = GUEST  # GUEST, ADMIN or REGISTERED: the credentials used


@implementer(checkers.ICredentialsChecker)
class GuestChecker:
    """A name alone logs in unless it belongs to an admin or a registered user."""

    credentialInterfaces = (IGuest,)

    def __init__(self, server: Server):
        self._server = server

    def requestAvatarId(self, creds) -> defer.Deferred:
        name = creds.username
        if self._server.is_admin_name(name) or self._server.is_registered_name(name):
            return defer.fail(error.UnauthorizedLogin())
        return defer.succeed(name)


@implementer(portal.IRealm)
class ChatRealm:
    """The avatar is the logged-in user; a registered user's right password
    takes their name over from a stale connection (Server.login)."""

    def __init__(self, server: Server):
        self._server = server

    def requestAvatar(self, avatarId, mind: Mind, *interfaces):
        if IChatUser not in interfaces:
            raise NotImplementedError("chatd's realm only gives IChatUser")
        name = avatarId.decode("utf-8") if isinstance(avatarId, bytes) else avatarId
        server = self._server
        d = server.claim(name, mind.client, admin=mind.kind == ADMIN,
                         address=mind.address, registered=mind.kind == REGISTERED)
        return d.addCallback(lambda user: (IChatUser, user, user.logout))


def check(portal_: portal.Portal, creds) -> defer.Deferred:
    """Check creds with the portal's checker for them, logging no one in:
    fires with the avatar id, or fails with UnauthorizedLogin (IRC's SASL
    answers at AUTHENTICATE, before the nick is registered)."""
    for iface, checker in portal_.checkers.items():
        if iface.providedBy(creds):
            return defer.maybeDeferred(checker.requestAvatarId, creds)
    return defer.fail(error.UnhandledCredentials())


def make_portal(server: Server, *password_checkers) -> portal.Portal:
    """The portal every front end logs in through: guests, and the given
    password checkers (chatd.core.auth.account_checkers: registered users'
    before admins', since a registered password is an IUsernamePassword too)."""
    return portal.Portal(ChatRealm(server), [GuestChecker(server), *password_checkers])
