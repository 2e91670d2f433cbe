"""Moderation: what admins (and the server) may do to the people on a server.

The server owns one Moderation (`server.moderation`), which checks that an
admin may act, writes the action to the journal (and a ban to the ban
store) and only then changes the server and announces it, so that what the
rooms have heard of survives a crash.  Kicks, bans and mutes are
server-wide: the target's rooms (and the admin's) hear of them, as events
(chatd.core.events).  It also keeps who is muted.  It acts on the server
only through the server's public methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet import defer
from twisted.logger import Logger

from chatd.core import events as ev
from chatd.core.errors import InvalidName, Muted, NoSuchUser, NotAllowed, PermissionDenied
from chatd.core.journal import SERVER, Entry, Journal
from chatd.core.store import Ban
from chatd.core.text import NAME_RULE, name_key, valid_name

if TYPE_CHECKING:
    from chatd.core.room import Room, User
    from chatd.core.server import Server

# These events were logged from chatd.room before moderation had a module
# of its own; log filters written for that namespace keep matching.
log = Logger(namespace="chatd.room")


class Moderation:
    """Kicks, bans, mutes and the journal of them, for one server."""

    def __init__(self, server: Server, journal: Journal, now: Callable[[], float]):
        self._server = server
        self._journal = journal
        self._now = now
        self._banning: set[str] = set()  # name keys with a ban being written
        self._mutes: dict[str, float | None] = {}  # name key -> until (None: no end)

    def mutes(self) -> dict[str, float | None]:
        """Who is muted: name key -> until (None: no end)."""
        return dict(self._mutes)

    def replace_mutes(self, mutes: dict[str, float | None]) -> None:
        """Who is muted, as the cluster says (chatd.cluster.sync)."""
        self._mutes = dict(mutes)

    def check_muted(self, member: User) -> None:
        """Raise Muted if member may not speak now (cheap while nobody is muted:
        every line said goes through here)."""
        if not self._mutes or member.key not in self._mutes:
            return
        until = self._mutes[member.key]
        if until is not None and self._now() >= until:
            del self._mutes[member.key]
            return
        raise Muted()

    def _target(self, admin: User, name: str, verb: str) -> User | None:
        """Check that admin may {verb} name; return them if online."""
        if not admin.admin:
            raise PermissionDenied()
        if not name:
            raise NotAllowed(f"usage: /{verb} NAME [REASON]")
        self._server.check_cluster()
        if name_key(name) == admin.key:
            raise NotAllowed(f"you cannot {verb} yourself")
        target = self._server.get(name)
        if (target is not None and target.admin) or self._server.is_admin_name(name):
            raise NotAllowed(f"you cannot {verb} an admin")
        return target

    def _journaled(self, entry: Entry, then: Callable[[], object]) -> defer.Deferred:
        """Write entry to the journal, then call then() (even if the write failed)."""
        return self._journal.record(entry).addCallback(lambda _: then())

    @staticmethod
    def _announce(rooms, kind: type[ev.Event], *args) -> None:
        """kind(*args) in each of rooms (each once)."""
        seen: list[Room] = []
        for room in rooms:
            if room not in seen:
                seen.append(room)
                room.broadcast(room.event(kind, *args))

    def _expel(self, target: User, rooms, kind: type[ev.Event], *args,
               count_as: str) -> None:
        """Tell target what happened to them, disconnect them, tell the rooms
        (someone on another node is told and disconnected by their node)."""
        server = self._server
        event = kind(ev.next_id(), self._now(), "", *args)
        if target.node:
            gone = target.rooms
            server.bus.expel(target, event, count_as)
        else:
            server.tell(target, event)
            gone = server.remove(target, count_as) or ()
            target.client.disconnect()
        self._announce((*gone, *rooms), kind, *args)

    def apply(self, kind: str, details: dict) -> None:
        """What an admin on another node of a cluster did (Moderation.ban...
        there, through IBus.moderated), done here too: a ban keeps the name
        (and its address) out of this node, a mute silences its user here."""
        now = self._now()
        if kind == "ban":
            ban = Ban(**details)
            server = self._server
            server.bans.add(ban).addErrback(
                lambda f: log.failure("storing {name}'s ban from another node failed", f,
                                      name=ban.name))
            args = (ban.by_admin, ban.reason,
                    None if ban.expires is None else ban.expires - now)
            target = server.local(ban.key)
            if target is not None:  # told and gone now; the admin's node tells the rooms
                server.tell(target, ev.Banned(ev.next_id(), now, "", target.name, *args))
                server.remove(target, "banned")
                target.client.disconnect()
            if ban.address is not None:
                for user in server.users:
                    if user.address == ban.address and not user.admin:
                        self._expel(user, (), ev.Banned, user.name, *args,
                                    count_as="banned")
        elif kind == "unban":
            self._server.bans.remove(details["name"])
        elif kind == "mute":
            self._mutes[name_key(details["name"])] = details["until"]
        elif kind == "unmute":
            self._mutes.pop(name_key(details["name"]), None)

    def kick(self, admin: User, name: str, reason: str = "") -> defer.Deferred:
        """Kick name once the journal has it; fires when done."""
        target = self._target(admin, name, "kick")
        if target is None:
            raise NoSuchUser(f"no such user: {name}")

        def kicked():
            if self._server.get(target.name) is not target:
                raise NoSuchUser(f"no such user: {name}")  # left meanwhile
            self._expel(target, admin.rooms, ev.Kicked, target.name, admin.name, reason,
                        count_as="kicked")
            log.info(
                "{admin} kicked {target} ({reason})",
                admin=admin.name, target=target.name, reason=reason,
            )

        entry = Entry(self._now(), "kick", admin.name, target.name, reason)
        return self._journaled(entry, kicked)

    def kick_from_room(self, admin: User, room: Room, name: str,
                       reason: str = "") -> defer.Deferred:
        """Take name out of room alone (IRC's KICK) once the journal has it.

        Everyone in room, name included, hears `Kicked` with room_only set
        (name alone, as what happened to them); name then leaves room
        without a `Left`, stays logged in and in their other rooms, and
        their front end is told (IClient.removed), which decides what
        follows (the line protocol shows the landing room again, or
        disconnects someone kicked out of the landing room itself).
        Raises PermissionDenied, NotAllowed or NoSuchUser (not in room);
        the Deferred fails with NoSuchUser if name left room meanwhile.
        """
        target = self._target(admin, name, "kick")
        if target is None or room not in target.rooms:
            raise NoSuchUser(f"{name} is not in {room.name}")

        def kicked():
            if room not in target.rooms:
                raise NoSuchUser(f"{name} is not in {room.name}")  # left meanwhile
            event = room.event(ev.Kicked, target.name, admin.name, reason, room_only=True)
            room.broadcast(event, sender=target)
            self._server.tell(target, event)
            self._server.remove_from_room(target, room)
            log.info(
                "{admin} kicked {target} from {room} ({reason})",
                admin=admin.name, target=target.name, room=room.name, reason=reason,
            )

        why = f"from {room.name}: {reason}" if reason else f"from {room.name}"
        return self._journaled(Entry(self._now(), "kick", admin.name, target.name, why),
                               kicked)

    def server_kick(self, target: User, reason: str) -> defer.Deferred:
        """The server kicks target (flooding): told and disconnected now,
        their rooms told once the journal has it.

        Unlike an admin's kick, the person is cut off before the journal
        write, so that not one more of their lines is handled while the
        disk works; the rooms' `Kicked` still waits for the commit, like
        every moderation announcement.
        """
        server = self._server
        server.tell(target, ev.Kicked(ev.next_id(), self._now(), "", target.name, SERVER,
                                      reason))
        rooms = server.remove(target, "flood") or ()
        target.client.disconnect()
        return self._journaled(
            Entry(self._now(), "kick", SERVER, target.name, reason),
            lambda: self._announce(rooms, ev.Kicked, target.name, SERVER, reason))

    def server_leave(self, member: User, cause: str, count_as: str) -> defer.Deferred:
        """The server dropped member for cause ("send queue exceeded",
        "idle timeout"); their rooms get `Left` with that cause once journaled.

        The front end cuts the connection first and calls this at once
        (a client that does not read is aborted at once to protect memory;
        a timed-out one is told and closed): member leaves now, and only
        the announcement waits for the journal's commit.  Calling it for
        someone who is no longer logged in does nothing.
        """
        rooms = self._server.remove(member, count_as)
        if rooms is None:
            return defer.succeed(None)
        log.info("{name} left ({cause})", name=member.name, cause=cause)
        return self._journaled(
            Entry(self._now(), "disconnect", SERVER, member.name, cause),
            lambda: self._announce(rooms, ev.Left, member.name, "", cause))

    def ban(
        self, admin: User, name: str, reason: str = "",
        duration: float | None = None, address: bool = False,
    ) -> defer.Deferred:
        """Ban name (and with address, where they connect from) for duration
        seconds or for good; the rooms hear of it once the ban is on disk."""
        server = self._server
        target = self._target(admin, name, "ban")
        if not valid_name(name):
            raise InvalidName(f"invalid username: use {NAME_RULE}")
        now = self._now()
        key = name_key(name)
        if server.bans.get(name, now) is not None or key in self._banning:
            raise NotAllowed(f"{name} is already banned")
        host = None
        if address:
            if target is None or not target.address:
                raise NoSuchUser(f"no such user: {name}")
            if target.address == admin.address:
                raise NotAllowed(f"{name} connects from your own address: ban the name only")
            host = target.address
        expires = None if duration is None else now + duration
        ban = Ban(name, admin.name, reason, now, expires, host)
        self._banning.add(key)
        bus = server.bus

        def banned():
            log.info(
                "{admin} banned {target} ({reason}) until {expires} address {address}",
                admin=admin.name, target=name, reason=reason, expires=expires,
                address=host,
            )
            args = (admin.name, reason, duration)
            target = server.get(name)
            if target is not None:
                self._expel(target, admin.rooms, ev.Banned, target.name, *args,
                            count_as="banned")
            else:
                self._announce(admin.rooms, ev.Banned, name, *args)
            if host is not None:
                for user in server.users:
                    if user.address == host and not user.admin:
                        self._expel(user, (), ev.Banned, user.name, *args,
                                    count_as="banned")

        entry = Entry(now, "ban", admin.name, name, reason, expires, host)
        d = bus.moderated("ban", name=name, by_admin=admin.name, reason=reason,
                          created=now, expires=expires, address=host)
        d.addCallback(lambda _: server.bans.add(ban))
        d.addBoth(lambda result: (self._banning.discard(key), result)[1])
        return d.addCallback(lambda _: self._journaled(entry, banned))

    def unban(self, admin: User, name: str) -> defer.Deferred:
        if not admin.admin:
            raise PermissionDenied()
        self._server.check_cluster()
        if self._server.bans.get(name, self._now()) is None:
            raise NoSuchUser(f"{name} is not banned")

        def lifted(ban):
            shown = ban.name if ban else name
            log.info("{admin} unbanned {target}", admin=admin.name, target=name)
            return self._journaled(
                Entry(self._now(), "unban", admin.name, shown,
                      address=ban.address if ban else None),
                lambda: self._announce(admin.rooms, ev.Unbanned, shown, admin.name))

        d = self._server.bus.moderated("unban", name=name)
        d.addCallback(lambda _: self._server.bans.remove(name))
        return d.addCallback(lifted)

    def bans(self, admin: User) -> list[Ban]:
        """The bans in force, oldest first (admins only)."""
        if not admin.admin:
            raise PermissionDenied()
        return self._server.bans.all(self._now())

    def mute(self, admin: User, name: str, duration: float | None = None) -> defer.Deferred:
        """Mute name once the journal has it; fires when done."""
        target = self._target(admin, name, "mute")
        if target is None:
            raise NoSuchUser(f"no such user: {name}")
        now = self._now()
        until = None if duration is None else now + duration

        def muted(_=None):
            self._mutes[target.key] = until
            self._announce((*target.rooms, *admin.rooms), ev.Muted, target.name,
                           admin.name, duration)
            log.info("{admin} muted {target}", admin=admin.name, target=target.name)

        d = self._server.bus.moderated("mute", name=target.name, until=until)
        return d.addCallback(lambda _: self._journaled(
            Entry(now, "mute", admin.name, target.name, expires=until), muted))

    def unmute(self, admin: User, name: str) -> defer.Deferred:
        """Lift name's mute once the journal has it; fires when done."""
        if not admin.admin:
            raise PermissionDenied()
        self._server.check_cluster()
        if name_key(name) not in self._mutes:
            raise NotAllowed(f"{name} is not muted")
        target = self._server.get(name)
        shown = target.name if target else name

        def unmuted():
            self._mutes.pop(name_key(name), None)
            rooms = (*(target.rooms if target else ()), *admin.rooms)
            self._announce(rooms, ev.Unmuted, shown, admin.name)

        d = self._server.bus.moderated("unmute", name=name)
        return d.addCallback(lambda _: self._journaled(
            Entry(self._now(), "unmute", admin.name, shown), unmuted))

    def modlog(self, admin: User, count: int) -> defer.Deferred:
        """Fires with the newest count journal entries, oldest first."""
        if not admin.admin:
            raise PermissionDenied()
        return self._journal.last(count)
