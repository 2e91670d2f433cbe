"""A chat room: who is in it, and who hears what.

The room is a plain domain object.  It knows no sockets, no reactor beyond
an injected clock, and no wire format: it deals in events
(chatd.core.events).  Each person in it is a User, reached through the
IClient their front end provides; the client's `wire` (an IWireFormat)
turns events into that front end's bytes.  The Server (chatd.core.server)
owns the rooms and the users, and says who may do what.

Fan-out is coalesced.  Events in one reactor turn are queued and, at the
end of the turn, rendered once per wire format present in the room; the
same bytes object is written to every member of that format (a sender gets
the same without its own events, a newcomer only what came after they
did).  So the work per recipient is one write, however busy the room.
Events go out through the room's bus (chatd.core.bus), which brings them
back to this process's rooms; a networked bus could bring other
processes' events the same way.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import Attribute, Interface

from chatd.core import events as ev
from chatd.core.bus import IBus, LocalBus
from chatd.core.stats import Stats
from chatd.core.text import name_key

log = Logger()

# How many names a Welcome lists; /who lists all.
GREETING_NAMES = 50


class IWireFormat(Interface):
    """How one front end's connections see events."""

    def render(event: ev.Event) -> bytes:
        """event as every member of its room sees it: the shared bytes."""

    def render_for(event: ev.Event, viewer: str) -> bytes:
        """event as the one person named viewer sees it."""


class IClient(Interface):
    """A connected person, as the core sees them (their front end's connection)."""

    wire = Attribute("The IWireFormat that renders what this client is sent.")

    def deliver(data: bytes) -> None:
        """Queue bytes (already rendered by wire) to be written to this person."""

    def disconnect() -> None:
        """Close the connection once what was delivered has been written."""

    def removed(room: Room) -> None:
        """The core took this user out of room without their asking (an
        admin's KICK), after telling them why; they are still logged in.
        The front end shows what follows (a front end with nothing to do
        may leave it out: the core calls it only if it is there)."""


@dataclass(eq=False, slots=True)
class User:
    """One logged-in person: the cred avatar every front end gets (chatd.core.login)."""

    name: str
    client: IClient = field(repr=False)
    admin: bool = False
    address: str | None = None
    registered: bool = False
    rooms: tuple[Room, ...] = field(default=(), repr=False)  # the rooms they are in
    # The name's key, made once: every dict and list of users shares this
    # one string (an idle user should stay small).
    key: str = field(init=False, repr=False)
    # Where logout() goes: the server that logged them in.
    server: object = field(default=None, repr=False, compare=False)
    # "" for a user connected here; else the cluster node they are on
    # (chatd.core.peers): listed in rooms, reached through the bus.
    node: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        self.key = name_key(self.name)

    def logout(self) -> bool:
        """Leave every room and free the name (the cred logout); False if
        already logged out."""
        return self.server.logout(self) if self.server is not None else False

    @property
    def label(self) -> str:
        """The name as listed in /who: admins are marked with '@'."""
        return "@" + self.name if self.admin else self.name


class Room:
    def __init__(self, name: str, clock: IReactorTime, stats: Stats,
                 now: Callable[[], float], bus: IBus | None = None,
                 on_failed: Callable[[User], None] = lambda user: None,
                 configured: bool = False):
        self.name = name
        self.key = name_key(name)
        self.topic = ""
        self.configured = configured  # kept while empty
        self.stats = stats
        self._clock = clock
        self._now = now
        self._on_failed = on_failed
        self._members: dict[str, User] = {}  # connected here: the fan-out
        self._remote: dict[str, User] = {}  # on other nodes of a cluster: listed only
        self._order: list[str] = []  # every member's key, sorted, for /who
        self._formats: dict[IWireFormat, int] = {}  # format -> members using it
        self._late: dict[User, int] = {}  # joined this turn: hears from this index on
        self._pending: list[tuple[User | None, ev.Event]] = []
        self._flush_call = None
        self._bus = bus if bus is not None else LocalBus()
        self._bus.subscribe(self.key, self._receive, self._receive_all)

    # -- who is here --------------------------------------------------

    @property
    def members(self) -> list[User]:
        """Everyone in the room, on this node and (in a cluster) on others."""
        return [*self._members.values(), *self._remote.values()]

    @property
    def local(self) -> int:
        """How many members are connected to this node."""
        return len(self._members)

    def __len__(self) -> int:
        return len(self._order)

    def get(self, name: str) -> User | None:
        key = name_key(name)
        return self._members.get(key) or self._remote.get(key)

    def who(self, limit: int | None = None) -> tuple[tuple[str, ...], int]:
        """(labels, count): the members' labels sorted, the first limit of them."""
        keys = self._order if limit is None else self._order[:limit]
        members, remote = self._members, self._remote
        return (tuple((members.get(key) or remote[key]).label for key in keys),
                len(self._order))

    def add(self, user: User) -> None:
        """user is in the room from now on (they hear what follows)."""
        if user.node:
            self._add_remote(user)
            return
        stale = self._remote.get(user.key)
        if stale is not None:  # the name moved here from another node
            self.discard(stale)
        if self._pending:
            self._late[user] = len(self._pending)
        self._members[user.key] = user
        bisect.insort(self._order, user.key)
        wire = user.client.wire
        self._formats[wire] = self._formats.get(wire, 0) + 1
        user.rooms = (*user.rooms, self)
        self._bus.entered(self.name, user)

    def _add_remote(self, user: User) -> None:
        if user.key in self._members or user.key in self._remote:
            return  # listed already (a stale entry goes when the name moves)
        self._remote[user.key] = user
        bisect.insort(self._order, user.key)
        user.rooms = (*user.rooms, self)

    def discard(self, user: User) -> bool:
        """Take user out without a word; False if they were not here.

        What was said while they were here still reaches them first.
        """
        if user.node:
            if self._remote.get(user.key) is not user:
                return False
            del self._remote[user.key]
            del self._order[bisect.bisect_left(self._order, user.key)]
            user.rooms = tuple(room for room in user.rooms if room is not self)
            return True
        if self._members.get(user.key) is not user:
            return False
        if len(self._pending) > self._late.get(user, 0):
            self.flush()
        del self._members[user.key]
        del self._order[bisect.bisect_left(self._order, user.key)]
        wire = user.client.wire
        left = self._formats[wire] - 1
        if left:
            self._formats[wire] = left
        else:
            del self._formats[wire]
        self._late.pop(user, None)
        user.rooms = tuple(room for room in user.rooms if room is not self)
        self._bus.left(self.name, user)
        return True

    def rename(self, name: str) -> None:
        """The room is called name from now on (Server.rename_room)."""
        self.flush()
        self._bus.unsubscribe(self.key)
        self.name, self.key = name, name_key(name)
        self._bus.subscribe(self.key, self._receive, self._receive_all)

    def close(self) -> None:
        """The room is going away (empty and not configured)."""
        self.flush()
        self._bus.unsubscribe(self.key)

    # -- events -------------------------------------------------------

    def event(self, kind: type[ev.Event], *args, **kw) -> ev.Event:
        """A new event of kind in this room, now."""
        return kind(ev.next_id(), self._now(), self.name, *args, **kw)

    def broadcast(self, event: ev.Event, sender: User | None = None) -> None:
        """event to every member (but sender) with the rest of this turn's."""
        self._bus.publish(self.key, event, sender)

    def hear(self, event: ev.Event) -> None:
        """event to this node's members alone, not through the bus (what
        each node says for itself, such as a lost node's users leaving)."""
        self._receive(event, None)

    def _receive(self, event: ev.Event, sender) -> None:
        """An event for this room from the bus: sender is the User who
        caused it here, a name key if it came from elsewhere, or None."""
        if sender.__class__ is str:
            sender = self._members.get(sender)
        self._pending.append((sender, event))
        if self._flush_call is None:
            self._flush_call = self._clock.callLater(0, self.flush)

    def _receive_all(self, pairs: list) -> None:
        """_receive() for several events at once: [(sender, event), ...]."""
        members = self._members
        self._pending += [(members.get(sender) if sender.__class__ is str else sender, event)
                          for sender, event in pairs]
        if self._flush_call is None:
            self._flush_call = self._clock.callLater(0, self.flush)

    def settle(self, user: User) -> None:
        """Write what is pending for user now, before something said to them alone."""
        if len(self._pending) > self._late.get(user, 0):
            self.flush()

    def flush(self) -> None:
        """Write this turn's events: rendered once per format, shared by all
        members of that format but senders and newcomers."""
        if self._flush_call is not None:
            if self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
        pending, self._pending = self._pending, []
        late, self._late = self._late, {}
        if not pending:
            return
        # Senders (without their own events) and newcomers (only what came
        # after them) get bytes of their own; everyone else the shared bytes.
        own: dict[User, list[int]] = {}
        for i, (sender, _) in enumerate(pending):
            if sender is not None:
                own.setdefault(sender, []).append(i)
        special = own.keys() | late.keys()
        rendered: dict[IWireFormat, tuple[list[bytes], bytes]] = {}
        for wire in self._formats:
            parts = [wire.render(event) for _, event in pending]
            rendered[wire] = parts, b"".join(parts)
        # Counted once per format, as if every member got the shared bytes,
        # then corrected for the special few: nothing per ordinary member.
        lines = sent = 0
        for wire, (_, shared) in rendered.items():
            count = self._formats[wire]
            lines += shared.count(b"\n") * count
            sent += len(shared) * count
        members = list(self._members.values())
        if len(rendered) == 1:  # the usual case: one front end in the room
            parts, shared = next(iter(rendered.values()))
            for user in members:
                if user in special:
                    self._deliver_special(user, parts, shared, late.get(user, 0),
                                          own.get(user, ()))
                else:
                    self._deliver(user, shared)
        else:
            for user in members:
                parts, shared = rendered[user.client.wire]
                if user in special:
                    self._deliver_special(user, parts, shared, late.get(user, 0),
                                          own.get(user, ()))
                else:
                    self._deliver(user, shared)
        self.stats.lines_delivered += lines
        self.stats.bytes_sent += sent

    def _deliver_special(self, user: User, parts: list[bytes], shared: bytes,
                         start: int, own) -> None:
        """What a sender or newcomer gets of this turn: parts from start on,
        without their own (indexes in own); the counts corrected for it."""
        pieces, begin = [], start
        missed = parts[:start]  # said before they came (few, if any)
        for i in own:
            if i >= begin:
                pieces += parts[begin:i]
                missed.append(parts[i])
                begin = i + 1
        pieces += parts[begin:]
        data = b"".join(pieces)
        # Only what they miss is counted again: they are special every turn
        # they speak, and the shared bytes of a busy turn are long.
        self.stats.lines_delivered -= sum(part.count(b"\n") for part in missed)
        self.stats.bytes_sent -= len(shared) - len(data)
        if data:
            self._deliver(user, data)

    def _deliver(self, user: User, data: bytes) -> None:
        """Write to one member; a member who fails is dropped, not the room."""
        try:
            user.client.deliver(data)
        except Exception:
            log.failure("delivery to {name} failed", name=user.name)
            self._on_failed(user)
