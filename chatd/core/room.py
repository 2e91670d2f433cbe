"""The chat room: who is in it, what they may do, and who hears what.

The room is a plain domain object.  It knows no sockets and no reactor
beyond an injected clock; each person in it is reached through an IClient
that a front end (chatd.line.protocol) provides.  Refusals are raised as
chatd.core.errors.RoomError subclasses whose text the front end shows after
"! ".  What admins do to members (kicks, bans, mutes) is the room's
Moderation (chatd.core.moderation), reached as `room.moderation`; it changes
the room through the public methods here.

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

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import Interface

from chatd.core.errors import Banned, InvalidName, NameTaken, NoSuchUser
from chatd.core.moderation import Moderation, with_reason
from chatd.core.stats import Stats
from chatd.core.store import BanStore
from chatd.core.text import NAME_RULE, encode, error, name_key, notice, valid_name

log = Logger()

# How many names the greeting's `* online` line lists; /who lists all.
GREETING_NAMES = 50


class IClient(Interface):
    """A connected person, as the room sees them."""

    def deliver(data: bytes) -> None:
        """Queue bytes (whole server lines) to be written to this person."""

    def disconnect() -> None:
        """Close the connection once what was delivered has been written."""


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
        self._is_admin_name = is_admin_name
        self._members: dict[str, Member] = {}
        self._order: list[str] = []  # member keys, sorted, for /who
        self._late: list[Member] = []  # joined during this turn
        self._pending: list[tuple[Member | None, bytes]] = []
        self._flush_call = None
        self.moderation = Moderation(self, bans.journal, self._now)

    # -- who is here --------------------------------------------------

    @property
    def bans(self) -> BanStore:
        """The ban list logins are checked against (and moderation writes to)."""
        return self._bans

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
            raise Banned(with_reason("you are banned", ban.reason))
        if name_key(name) in self._members:
            raise NameTaken(f"username {name} is taken")

    def check_address(self, address: str) -> None:
        """Raise Banned if connections from address are banned."""
        ban = self._bans.for_address(address, self._now())
        if ban is not None:
            raise Banned(with_reason("you are banned", ban.reason))

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
        self.broadcast(notice(f"{name} joined"), sender=member)
        log.info("{name} joined from {address}", name=name, address=address)
        return member

    def leave(self, member: Member, reason: str = "", cause: str = "",
              count_as: str = "closed") -> None:
        """member left: reason is their own words, cause the server's;
        count_as is the cause /stats and the metrics count it under."""
        if len(self._pending) > member.since and member.key in self._members:
            self.flush()  # what was said before they left still reaches them
        if self.remove(member, count_as):
            text = f"{member.name} left" + (f" ({cause})" if cause else "")
            self.broadcast(notice(with_reason(text, reason)))
            log.info("{name} left ({how})", name=member.name, how=cause or count_as)

    def remove(self, member: Member, count_as: str) -> bool:
        """Take member out without a word to anyone, counting the disconnect
        under count_as; False if they were not in the room."""
        if not self._remove(member):
            return False
        self.stats.disconnected(count_as)
        return True

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
        self.moderation.check_muted(member)
        self.broadcast(f"<{member.name}> {text}", sender=member)

    def action(self, member: Member, text: str) -> None:
        self.moderation.check_muted(member)
        self.broadcast(f"+ {member.name} {text}", sender=member)

    def private(self, member: Member, target_name: str, text: str) -> None:
        self.moderation.check_muted(member)
        target = self._require(target_name)
        self.send(target, f"[{member.name}] {text}")
        self.send(member, f"[->{target.name}] {text}")

    def _require(self, name: str) -> Member:
        target = self.get(name)
        if target is None:
            raise NoSuchUser(f"no such user: {name}")
        return target

    # -- sending people away ------------------------------------------

    def expel(self, target: Member, what: str, reason: str, count_as: str = "kicked") -> None:
        """Tell target they were {what}, disconnect them, and tell the room."""
        self.cut(target, what, reason, count_as)
        self.broadcast(notice(with_reason(f"{target.name} was {what}", reason)))

    def cut(self, target: Member, what: str, reason: str, count_as: str) -> None:
        """Tell target they were {what} and disconnect them; the room is not told."""
        self.send(target, error(with_reason(f"you were {what}", reason)))
        self.remove(target, count_as)
        target.client.disconnect()

    def shutdown(self, text: str = "server shutting down") -> None:
        """Tell everyone the server is going, and let them go."""
        self.broadcast(notice(text))
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

    def broadcast(self, line: str, sender: Member | None = None) -> None:
        """line to every member (but sender) with the rest of this turn's."""
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
            if self.remove(member, "failed"):
                self.broadcast(notice(f"{member.name} left (connection failed)"))
                try:
                    member.client.disconnect()
                except Exception:
                    log.failure("disconnecting {name} failed", name=member.name)
