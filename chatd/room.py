"""The chat room: who is in it, what they may do, and who hears what.

The room is a plain domain object.  It knows no sockets and no reactor
beyond an injected clock; each person in it is reached through an IClient
that a front end (chatd.protocol) provides.  Refusals are raised as
RoomError subclasses whose text the front end shows after "! ".

Broadcasts are coalesced: broadcasts said in one reactor turn are joined
into one bytes object written once to each member (a sender gets the same
bytes without its own lines, a newcomer only what was said after they
came), so the work per recipient is one write however busy the room is.
A line to a single member first flushes what is pending for them, which
keeps private lines and broadcasts in the order they happened.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import Interface

from chatd.journal import SERVER, Entry
from chatd.journal import timestamp as _timestamp
from chatd.stats import Stats
from chatd.store import Ban, BanStore
from chatd.text import NAME_RULE, encode, error, name_key, notice, valid_name

log = Logger()

# How many names the greeting's `* online` line lists; /who lists all.
GREETING_NAMES = 50


class IClient(Interface):
    """A connected person, as the room sees them."""

    def deliver(data: bytes) -> None:
        """Queue bytes (whole server lines) to be written to this person."""

    def disconnect() -> None:
        """Close the connection once what was delivered has been written."""


class RoomError(Exception):
    """A refusal; str(error) is the text shown to the person after '! '."""


class InvalidName(RoomError):
    pass


class NameTaken(RoomError):
    pass


class Banned(RoomError):
    pass


class NoSuchUser(RoomError):
    pass


class PermissionDenied(RoomError):
    def __init__(self, text: str = "permission denied"):
        super().__init__(text)


class NotAllowed(RoomError):
    pass


class Muted(RoomError):
    def __init__(self, text: str = "you are muted"):
        super().__init__(text)


@dataclass(eq=False, slots=True)
class Member:
    name: str
    client: IClient = field(repr=False)
    admin: bool = False
    address: str | None = None
    # Joined in the middle of a turn: hears the turn's broadcasts from this
    # index on, not what was said before they were there.
    since: int = 0

    @property
    def key(self) -> str:
        return name_key(self.name)

    @property
    def label(self) -> str:
        """The name as listed in /who: admins are marked with '@'."""
        return "@" + self.name if self.admin else self.name


def _with_reason(text: str, reason: str) -> str:
    return f"{text}: {reason}" if reason else text


def format_duration(seconds: float) -> str:
    """30 -> 30s, 7200 -> 2h: the largest unit that divides it exactly."""
    seconds = int(seconds)
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class Room:
    def __init__(
        self,
        clock: IReactorTime,
        bans: BanStore,
        is_admin_name: Callable[[str], bool] = lambda name: False,
        name: str = "chatd",
        motd: str = "",
        wall_clock: Callable[[], float] | None = None,
        stats: Stats | None = None,
    ):
        self.name = name
        self.stats = stats if stats is not None else Stats(clock.seconds())
        self.motd = motd
        self._clock = clock
        self._now = wall_clock or clock.seconds
        self._bans = bans
        self._journal = bans.journal
        self._is_admin_name = is_admin_name
        self._members: dict[str, Member] = {}
        self._order: list[str] = []  # member keys, sorted, for /who
        self._late: list[Member] = []  # joined during this turn
        self._banning: set[str] = set()  # name keys with a ban being written
        self._mutes: dict[str, float | None] = {}  # name key -> until (None: no end)
        self._pending: list[tuple[Member | None, bytes]] = []
        self._flush_call = None

    # -- who is here --------------------------------------------------

    @property
    def members(self) -> list[Member]:
        return list(self._members.values())

    def get(self, name: str) -> Member | None:
        return self._members.get(name_key(name))

    def is_admin_name(self, name: str) -> bool:
        return self._is_admin_name(name)

    def check_name(self, name: str) -> None:
        """Raise unless name may log in now (before any password is asked)."""
        if not valid_name(name):
            raise InvalidName(f"invalid username: use {NAME_RULE}")
        ban = self._bans.get(name, self._now())
        if ban is not None:
            raise Banned(_with_reason("you are banned", ban.reason))
        if name_key(name) in self._members:
            raise NameTaken(f"username {name} is taken")

    def check_address(self, address: str) -> None:
        """Raise Banned if connections from address are banned."""
        ban = self._bans.for_address(address, self._now())
        if ban is not None:
            raise Banned(_with_reason("you are banned", ban.reason))

    def join(
        self, name: str, client: IClient, admin: bool = False,
        address: str | None = None,
    ) -> Member:
        self.check_name(name)
        member = Member(name, client, admin, address, since=len(self._pending))
        if member.since:
            self._late.append(member)
        self._members[member.key] = member
        bisect.insort(self._order, member.key)
        self.stats.joined(len(self._members))
        role = " (admin)" if admin else ""
        self.send_many(member, [
            notice(f"logged in as {name}{role} in {self.name}"),
            self.who_line(limit=GREETING_NAMES),
            *(notice(line) for line in self.motd.splitlines()),
        ])
        self._broadcast(notice(f"{name} joined"), sender=member)
        log.info("{name} joined from {address}", name=name, address=address)
        return member

    def leave(self, member: Member, reason: str = "", cause: str = "",
              count_as: str = "closed") -> None:
        """member left: reason is their own words, cause the server's;
        count_as is the cause /stats and the metrics count it under."""
        if len(self._pending) > member.since and member.key in self._members:
            self.flush()  # what was said before they left still reaches them
        if self._remove(member):
            self.stats.disconnected(count_as)
            text = f"{member.name} left" + (f" ({cause})" if cause else "")
            self._broadcast(notice(_with_reason(text, reason)))
            log.info("{name} left ({how})", name=member.name, how=cause or count_as)

    def _remove(self, member: Member) -> bool:
        if self._members.get(member.key) is not member:
            return False
        del self._members[member.key]
        del self._order[bisect.bisect_left(self._order, member.key)]
        return True

    def who_line(self, limit: int | None = None) -> str:
        """`* online (N): ...`, admins marked; with limit, the first names only."""
        count = len(self._order)
        keys = self._order if limit is None else self._order[:limit]
        text = ", ".join(self._members[key].label for key in keys)
        if count > len(keys):
            text += f", and {count - len(keys)} more (/who lists everyone)"
        return notice(f"online ({count}): {text}")

    # -- talking ------------------------------------------------------

    def say(self, member: Member, text: str) -> None:
        if self._mutes:
            self._check_muted(member)
        self._broadcast(f"<{member.name}> {text}", sender=member)

    def action(self, member: Member, text: str) -> None:
        self._check_muted(member)
        self._broadcast(f"+ {member.name} {text}", sender=member)

    def private(self, member: Member, target_name: str, text: str) -> None:
        self._check_muted(member)
        target = self._require(target_name)
        self.send(target, f"[{member.name}] {text}")
        self.send(member, f"[->{target.name}] {text}")

    def _require(self, name: str) -> Member:
        target = self.get(name)
        if target is None:
            raise NoSuchUser(f"no such user: {name}")
        return target

    def _check_muted(self, member: Member) -> None:
        if member.key not in self._mutes:
            return
        until = self._mutes[member.key]
        if until is not None and self._now() >= until:
            del self._mutes[member.key]
            return
        raise Muted()

    # -- moderation ---------------------------------------------------

    def _target(self, admin: Member, name: str, verb: str) -> Member | None:
        """Check that admin may {verb} name; return them if online."""
        if not admin.admin:
            raise PermissionDenied()
        if not name:
            raise NotAllowed(f"usage: /{verb} NAME [REASON]")
        if name_key(name) == admin.key:
            raise NotAllowed(f"you cannot {verb} yourself")
        target = self.get(name)
        if (target is not None and target.admin) or self._is_admin_name(name):
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
            if self._members.get(target.key) is not target:
                raise NoSuchUser(f"no such user: {name}")  # left meanwhile
            self.expel(target, f"kicked by {admin.name}", reason)
            log.info(
                "{admin} kicked {target} ({reason})",
                admin=admin.name, target=target.name, reason=reason,
            )

        entry = Entry(self._now(), "kick", admin.name, target.name, reason)
        return self._journaled(entry, kicked)

    def expel(self, target: Member, what: str, reason: str, count_as: str = "kicked") -> None:
        """Tell target they were {what}, disconnect them, and tell the room."""
        self._cut(target, what, reason, count_as)
        self._broadcast(notice(_with_reason(f"{target.name} was {what}", reason)))

    def _cut(self, target: Member, what: str, reason: str, count_as: str) -> None:
        self.send(target, error(_with_reason(f"you were {what}", reason)))
        if self._remove(target):
            self.stats.disconnected(count_as)
        target.client.disconnect()

    def server_kick(self, target: Member, reason: str) -> defer.Deferred:
        """The server kicks target (flooding): told and disconnected now,
        the room told once the journal has it.

        Unlike an admin's kick, the person is cut off before the journal
        write, so that not one more of their lines is handled while the
        disk works; the room's `* NAME was kicked by server: REASON` still
        waits for the commit, like every moderation announcement.
        """
        what = f"kicked by {SERVER}"
        self._cut(target, what, reason, count_as="flood")
        return self._journaled(
            Entry(self._now(), "kick", SERVER, target.name, reason),
            lambda: self._broadcast(
                notice(_with_reason(f"{target.name} was {what}", reason))))

    def server_leave(self, member: Member, cause: str, count_as: str) -> defer.Deferred:
        """The server dropped member for cause ("send queue exceeded",
        "idle timeout"); the room gets `* NAME left (CAUSE)` once journaled.

        The front end cuts the connection first and calls this at once
        (a client that does not read is aborted at once to protect memory;
        a timed-out one is told and closed): member leaves the room now, and
        only the announcement waits for the journal's commit.  Calling it for
        someone who is no longer in the room does nothing.
        """
        if not self._remove(member):
            return defer.succeed(None)
        self.stats.disconnected(count_as)
        log.info("{name} left ({cause})", name=member.name, cause=cause)
        return self._journaled(
            Entry(self._now(), "disconnect", SERVER, member.name, cause),
            lambda: self._broadcast(notice(f"{member.name} left ({cause})")))

    def ban(
        self, admin: Member, name: str, reason: str = "",
        duration: float | None = None, address: bool = False,
    ) -> defer.Deferred:
        """Ban name (and with address, where they connect from) for duration
        seconds or for good; the room hears of it once the ban is on disk."""
        target = self._target(admin, name, "ban")
        if not valid_name(name):
            raise InvalidName(f"invalid username: use {NAME_RULE}")
        now = self._now()
        key = name_key(name)
        if self._bans.get(name, now) is not None or key in self._banning:
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
            target = self.get(name)
            if target is not None:
                self.expel(target, what, reason, count_as="banned")
            else:
                self._broadcast(notice(_with_reason(f"{name} was {what}", reason)))
            if host is not None:
                for member in self.members:
                    if member.address == host and not member.admin:
                        self.expel(member, what, reason, count_as="banned")

        entry = Entry(now, "ban", admin.name, name, reason, expires, host)
        d = self._bans.add(ban)
        d.addBoth(lambda result: (self._banning.discard(key), result)[1])
        return d.addCallback(lambda _: self._journaled(entry, lambda: banned(None)))

    def unban(self, admin: Member, name: str) -> defer.Deferred:
        if not admin.admin:
            raise PermissionDenied()
        if self._bans.get(name, self._now()) is None:
            raise NoSuchUser(f"{name} is not banned")

        def lifted(ban):
            shown = ban.name if ban else name
            log.info("{admin} unbanned {target}", admin=admin.name, target=name)
            return self._journaled(
                Entry(self._now(), "unban", admin.name, shown,
                      address=ban.address if ban else None),
                lambda: self._broadcast(notice(f"{shown} was unbanned by {admin.name}")))

        return self._bans.remove(name).addCallback(lifted)

    def ban_lines(self, admin: Member) -> list[str]:
        if not admin.admin:
            raise PermissionDenied()
        bans = self._bans.all(self._now())
        if not bans:
            return [notice("no bans")]
        lines = [notice(f"bans ({len(bans)}):")]
        for ban in bans:
            text = f"{ban.name} by {ban.by_admin} at {_timestamp(ban.created)}"
            if ban.expires is not None:
                text += f" until {_timestamp(ban.expires)}"
            if ban.address:
                text += f" (address {ban.address})"
            lines.append(notice(_with_reason(text, ban.reason)))
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
            self._broadcast(notice(what))
            log.info("{admin} muted {target}", admin=admin.name, target=target.name)

        return self._journaled(Entry(now, "mute", admin.name, target.name, expires=until),
                               muted)

    def unmute(self, admin: Member, name: str) -> defer.Deferred:
        """Lift name's mute once the journal has it; fires when done."""
        if not admin.admin:
            raise PermissionDenied()
        if name_key(name) not in self._mutes:
            raise NotAllowed(f"{name} is not muted")
        target = self.get(name)
        shown = target.name if target else name

        def unmuted():
            self._mutes.pop(name_key(name), None)
            self._broadcast(notice(f"{shown} was unmuted by {admin.name}"))

        return self._journaled(Entry(self._now(), "unmute", admin.name, shown), unmuted)

    def modlog_lines(self, admin: Member, count: int) -> defer.Deferred:
        """Fires with `* ` lines for the newest count journal entries, oldest first."""
        if not admin.admin:
            raise PermissionDenied()

        def lines(entries: list[Entry]) -> list[str]:
            return [notice(e.line()) for e in entries] or [notice("no moderation entries")]

        return self._journal.last(count).addCallback(lines)

    def shutdown(self, text: str = "server shutting down") -> None:
        """Tell everyone the server is going, and let them go."""
        self._broadcast(notice(text))
        self.flush()
        self.stats.disconnected("shutdown", len(self._members))
        for member in list(self._members.values()):
            self._remove(member)
            member.client.disconnect()

    # -- delivery -----------------------------------------------------

    def send(self, member: Member, line: str) -> None:
        """One line to one member, after everything already said."""
        self.send_many(member, [line])

    def send_many(self, member: Member, lines: Iterable[str]) -> None:
        if len(self._pending) > member.since:
            self.flush()
        data = b"".join(encode(line) for line in lines)
        self.stats.lines_delivered += data.count(b"\n")
        self.stats.bytes_sent += len(data)
        self._deliver(member, data)

    def _broadcast(self, line: str, sender: Member | None = None) -> None:
        self._pending.append((sender, encode(line)))
        if self._flush_call is None:
            self._flush_call = self._clock.callLater(0, self.flush)

    def flush(self) -> None:
        """Write this turn's broadcasts: one bytes object for all but senders."""
        if self._flush_call is not None:
            if self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
        pending, self._pending = self._pending, []
        late, self._late = self._late, []
        if pending:
            shared = b"".join(data for _, data in pending)
            special = {sender for sender, _ in pending if sender is not None}
            special.update(late)
            members = list(self._members.values())
            # Counted as if everyone got everything, then corrected for
            # the few special members: nothing per ordinary recipient.
            lines, sent = len(pending) * len(members), len(shared) * len(members)
            for member in members:
                if member in special:
                    parts = [d for who, d in pending[member.since:] if who is not member]
                    data = b"".join(parts)
                    lines -= len(pending) - len(parts)
                    sent -= len(shared) - len(data)
                    if not data:
                        continue
                else:
                    data = shared
                self._deliver(member, data)
            self.stats.lines_delivered += lines
            self.stats.bytes_sent += sent
        for member in late:
            member.since = 0

    def _deliver(self, member: Member, data: bytes) -> None:
        """Write to one member; a member who fails is dropped, not the room."""
        try:
            member.client.deliver(data)
        except Exception:
            log.failure("delivery to {name} failed", name=member.name)
            if self._remove(member):
                self.stats.disconnected("failed")
                self._broadcast(notice(f"{member.name} left (connection failed)"))
                try:
                    member.client.disconnect()
                except Exception:
                    log.failure("disconnecting {name} failed", name=member.name)
