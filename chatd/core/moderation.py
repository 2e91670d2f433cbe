"""Moderation: what admins (and the server) may do to the people in a room.

Each room owns one Moderation (`room.moderation`), which checks that an
admin may act, writes the action to the journal (and a ban to the ban
store) and only then changes the room and announces it, so that what the
room has heard of survives a crash.  It also keeps who is muted.  It acts
on the room only through the room's public methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet import defer
from twisted.logger import Logger

from chatd.core.errors import InvalidName, Muted, NoSuchUser, NotAllowed, PermissionDenied
from chatd.core.journal import SERVER, Entry, Journal
from chatd.core.journal import timestamp as _timestamp
from chatd.core.store import Ban
from chatd.core.text import NAME_RULE, name_key, notice, valid_name

if TYPE_CHECKING:
    from chatd.core.room import Member, Room

# These events were logged from chatd.core.room before moderation had a module
# of its own; log filters written for that namespace keep matching.
log = Logger(namespace="chatd.core.room")


def with_reason(text: str, reason: str) -> str:
    """`text: reason`, or text alone when there is no reason."""
    return f"{text}: {reason}" if reason else text


def format_duration(seconds: float) -> str:
    """30 -> 30s, 7200 -> 2h: the largest unit that divides it exactly."""
    seconds = int(seconds)
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class Moderation:
    """Kicks, bans, mutes and the journal of them, for one room."""

    def __init__(self, room: Room, journal: Journal, now: Callable[[], float]):
        self._room = room
        self._journal = journal
        self._now = now
        self._banning: set[str] = set()  # name keys with a ban being written
        self._mutes: dict[str, float | None] = {}  # name key -> until (None: no end)

    def check_muted(self, member: Member) -> None:
        """Raise Muted if member may not speak now (cheap while nobody is muted:
        every line said goes through here)."""
        if not self._mutes or member.key not in self._mutes:
            return
        until = self._mutes[member.key]
        if until is not None and self._now() >= until:
            del self._mutes[member.key]
            return
        raise Muted()

    def _target(self, admin: Member, name: str, verb: str) -> Member | None:
        """Check that admin may {verb} name; return them if online."""
        if not admin.admin:
            raise PermissionDenied()
        if not name:
            raise NotAllowed(f"usage: /{verb} NAME [REASON]")
        if name_key(name) == admin.key:
            raise NotAllowed(f"you cannot {verb} yourself")
        target = self._room.get(name)
        if (target is not None and target.admin) or self._room.is_admin_name(name):
            raise NotAllowed(f"you cannot {verb} an admin")
        return target

    def _journaled(self, entry: Entry, then: Callable[[], object]) -> defer.Deferred:
        """Write entry to the journal, then call then() (even if the write failed)."""
        return self._journal.record(entry).addCallback(lambda _: then())

    def kick(self, admin: Member, name: str, reason: str = "") -> defer.Deferred:
        """Kick name once the journal has it; fires when done."""
        target = self._target(admin, name, "kick")
        if target is None:
            raise NoSuchUser(f"no such user: {name}")

        def kicked():
            if self._room.get(target.name) is not target:
                raise NoSuchUser(f"no such user: {name}")  # left meanwhile
            self._room.expel(target, f"kicked by {admin.name}", reason)
            log.info(
                "{admin} kicked {target} ({reason})",
                admin=admin.name, target=target.name, reason=reason,
            )

        entry = Entry(self._now(), "kick", admin.name, target.name, reason)
        return self._journaled(entry, kicked)

    def server_kick(self, target: Member, reason: str) -> defer.Deferred:
        """The server kicks target (flooding): told and disconnected now,
        the room told once the journal has it.

        Unlike an admin's kick, the person is cut off before the journal
        write, so that not one more of their lines is handled while the
        disk works; the room's `* NAME was kicked by server: REASON` still
        waits for the commit, like every moderation announcement.
        """
        what = f"kicked by {SERVER}"
        self._room.cut(target, what, reason, count_as="flood")
        return self._journaled(
            Entry(self._now(), "kick", SERVER, target.name, reason),
            lambda: self._room.broadcast(
                notice(with_reason(f"{target.name} was {what}", reason))))

    def server_leave(self, member: Member, cause: str, count_as: str) -> defer.Deferred:
        """The server dropped member for cause ("send queue exceeded",
        "idle timeout"); the room gets `* NAME left (CAUSE)` once journaled.

        The front end cuts the connection first and calls this at once
        (a client that does not read is aborted at once to protect memory;
        a timed-out one is told and closed): member leaves the room now, and
        only the announcement waits for the journal's commit.  Calling it for
        someone who is no longer in the room does nothing.
        """
        if not self._room.remove(member, count_as):
            return defer.succeed(None)
        log.info("{name} left ({cause})", name=member.name, cause=cause)
        return self._journaled(
            Entry(self._now(), "disconnect", SERVER, member.name, cause),
            lambda: self._room.broadcast(notice(f"{member.name} left ({cause})")))

    def ban(
        self, admin: Member, name: str, reason: str = "",
        duration: float | None = None, address: bool = False,
    ) -> defer.Deferred:
        """Ban name (and with address, where they connect from) for duration
        seconds or for good; the room hears of it once the ban is on disk."""
        room = self._room
        target = self._target(admin, name, "ban")
        if not valid_name(name):
            raise InvalidName(f"invalid username: use {NAME_RULE}")
        now = self._now()
        key = name_key(name)
        if room.bans.get(name, now) is not None or key in self._banning:
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
        what = f"banned by {admin.name}"
        if duration is not None:
            what += f" for {format_duration(duration)}"
        self._banning.add(key)

        def banned(_):
            log.info(
                "{admin} banned {target} ({reason}) until {expires} address {address}",
                admin=admin.name, target=name, reason=reason, expires=expires,
                address=host,
            )
            target = room.get(name)
            if target is not None:
                room.expel(target, what, reason, count_as="banned")
            else:
                room.broadcast(notice(with_reason(f"{name} was {what}", reason)))
            if host is not None:
                for member in room.members:
                    if member.address == host and not member.admin:
                        room.expel(member, what, reason, count_as="banned")

        entry = Entry(now, "ban", admin.name, name, reason, expires, host)
        d = room.bans.add(ban)
        d.addBoth(lambda result: (self._banning.discard(key), result)[1])
        return d.addCallback(lambda _: self._journaled(entry, lambda: banned(None)))

    def unban(self, admin: Member, name: str) -> defer.Deferred:
        if not admin.admin:
            raise PermissionDenied()
        if self._room.bans.get(name, self._now()) is None:
            raise NoSuchUser(f"{name} is not banned")

        def lifted(ban):
            shown = ban.name if ban else name
            log.info("{admin} unbanned {target}", admin=admin.name, target=name)
            return self._journaled(
                Entry(self._now(), "unban", admin.name, shown,
                      address=ban.address if ban else None),
                lambda: self._room.broadcast(notice(f"{shown} was unbanned by {admin.name}")))

        return self._room.bans.remove(name).addCallback(lifted)

    def ban_lines(self, admin: Member) -> list[str]:
        if not admin.admin:
            raise PermissionDenied()
        bans = self._room.bans.all(self._now())
        if not bans:
            return [notice("no bans")]
        lines = [notice(f"bans ({len(bans)}):")]
        for ban in bans:
            text = f"{ban.name} by {ban.by_admin} at {_timestamp(ban.created)}"
            if ban.expires is not None:
                text += f" until {_timestamp(ban.expires)}"
            if ban.address:
                text += f" (address {ban.address})"
            lines.append(notice(with_reason(text, ban.reason)))
        return lines

    def mute(self, admin: Member, name: str, duration: float | None = None) -> defer.Deferred:
        """Mute name once the journal has it; fires when done."""
        target = self._target(admin, name, "mute")
        if target is None:
            raise NoSuchUser(f"no such user: {name}")
        now = self._now()
        until = None if duration is None else now + duration
        what = f"{target.name} was muted by {admin.name}"
        if duration is not None:
            what += f" for {format_duration(duration)}"

        def muted():
            self._mutes[target.key] = until
            self._room.broadcast(notice(what))
            log.info("{admin} muted {target}", admin=admin.name, target=target.name)

        return self._journaled(Entry(now, "mute", admin.name, target.name, expires=until),
                               muted)

    def unmute(self, admin: Member, name: str) -> defer.Deferred:
        """Lift name's mute once the journal has it; fires when done."""
        if not admin.admin:
            raise PermissionDenied()
        if name_key(name) not in self._mutes:
            raise NotAllowed(f"{name} is not muted")
        target = self._room.get(name)
        shown = target.name if target else name

        def unmuted():
            self._mutes.pop(name_key(name), None)
            self._room.broadcast(notice(f"{shown} was unmuted by {admin.name}"))

        return self._journaled(Entry(self._now(), "unmute", admin.name, shown), unmuted)

    def modlog_lines(self, admin: Member, count: int) -> defer.Deferred:
        """Fires with `* ` lines for the newest count journal entries, oldest first."""
        if not admin.admin:
            raise PermissionDenied()

        def lines(entries: list[Entry]) -> list[str]:
            return [notice(e.line()) for e in entries] or [notice("no moderation entries")]

        return self._journal.last(count).addCallback(lines)
