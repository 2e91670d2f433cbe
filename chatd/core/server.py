"""The server: rooms by name, one registry of names across them, and the rules.

A front end logs a person in (through chatd.core.login, which calls
login() here), then puts them in rooms with enter().  What they say goes
through say/action/private, which check the rules (mutes) and make the
events; the rooms fan them out.  Refusals are RoomErrors (chatd.core.errors)
whose text a front end shows as it likes.  What admins do to people is the
server's Moderation (chatd.core.moderation), reached as `server.moderation`.

Rooms: the landing room (where every line-protocol user lands at login)
and the configured rooms always exist; with open_rooms, entering any other
valid name creates it, and a room nobody is in that is not configured
disappears.  A user may be in several rooms at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatd.core import events as ev
from chatd.core.bus import IBus, LocalBus
from chatd.core.errors import (
    Banned,
    InvalidName,
    NameTaken,
    NoSuchRoom,
    NoSuchUser,
    NotAllowed,
    Unavailable,
)
from chatd.core.moderation import Moderation
from chatd.core.peers import Peers
from chatd.core.reconfigure import configure
from chatd.core.room import GREETING_NAMES, IClient, Room, User
from chatd.core.stats import Stats
from chatd.core.store import BanStore
from chatd.core.text import NAME_RULE, name_key, valid_name, with_reason

log = Logger()


class Server:
    def __init__(
        self,
        clock: IReactorTime,
        bans: BanStore,
        is_admin_name: Callable[[str], bool] = lambda name: False,
        landing: str = "chatd",
        rooms: Iterable[str] = (),
        open_rooms: bool = True,
        motd: str = "",
        wall_clock: Callable[[], float] | None = None,
        stats: Stats | None = None,
        history=None,
        bus: IBus | None = None,
        is_registered_name: Callable[[str], bool] = lambda name: False,
        registration: str = "open",
    ):
        self.stats = stats if stats is not None else Stats(clock.seconds())
        self.motd = motd
        self.open_rooms = open_rooms
        self.registration = registration  # who may /register: open, admins, off
        self.history = history  # chatd.core.history.History, or None: off
        self._clock = clock
        self._now = wall_clock or clock.seconds
        self._bans = bans
        self._bus = bus if bus is not None else LocalBus()
        self._is_admin_name = is_admin_name
        self._is_registered_name = is_registered_name
        self._users: dict[str, User] = {}
        self._rooms: dict[str, Room] = {}
        self._landing = self._make_room(landing, configured=True)
        for name in rooms:
            if name_key(name) not in self._rooms:
                self._make_room(name, configured=True)
        self.moderation = Moderation(self, bans.journal, self._now)
        self.peers = Peers(self)  # who is on the other nodes of a cluster

    # -- what is here -------------------------------------------------

    @property
    def bans(self) -> BanStore:
        """The ban list logins are checked against (and moderation writes to)."""
        return self._bans

    @property
    def landing(self) -> Room:
        """The room everyone lands in at login."""
        return self._landing

    @property
    def users(self) -> list[User]:
        """The users connected to this process."""
        return list(self._users.values())

    @property
    def bus(self) -> IBus:
        return self._bus

    def get(self, name: str) -> User | None:
        """The logged-in user of that name (any case), if any: connected
        here, or (in a cluster) on another node (User.node)."""
        key = name_key(name)
        return self._users.get(key) or self.peers.get(key)

    def local(self, key: str) -> User | None:
        """The user connected to this process under that name key, if any."""
        return self._users.get(key)

    def room(self, name: str) -> Room | None:
        return self._rooms.get(name_key(name))

    @property
    def rooms(self) -> list[Room]:
        """Every room, sorted by name."""
        return [self._rooms[key] for key in sorted(self._rooms)]

    def is_admin_name(self, name: str) -> bool:
        return self._is_admin_name(name)

    def is_registered_name(self, name: str) -> bool:
        return self._is_registered_name(name)

    def now(self) -> float:
        return self._now()

    # -- logging in and out -------------------------------------------

    def check_name(self, name: str, taking_over: bool = False) -> None:
        """Raise unless name may log in now (before any password is asked);
        with taking_over, a name in use is allowed (a registered user's
        right password takes it over)."""
        if not valid_name(name):
            raise InvalidName(f"invalid username: use {NAME_RULE}")
        ban = self._bans.get(name, self._now())
        if ban is not None:
            raise Banned(with_reason("you are banned", ban.reason))
        if not self._bus.ready():
            raise Unavailable()
        if not taking_over and self.get(name) is not None:
            raise NameTaken(f"username {name} is taken")

    def check_cluster(self) -> None:
        """Raise Unavailable if what an admin does now could not be made
        durable on every node (a cluster whose link is down)."""
        if not self._bus.ready():
            raise Unavailable()

    def check_address(self, address: str) -> None:
        """Raise Banned if connections from address are banned."""
        ban = self._bans.for_address(address, self._now())
        if ban is not None:
            raise Banned(with_reason("you are banned", ban.reason))

    def claim(self, name: str, client: IClient, admin: bool = False,
              address: str | None = None, registered: bool = False) -> defer.Deferred:
        """login(), once the name is claimed on every node of a cluster (at
        once in one process); fires with the User, or fails with RoomError."""
        takeover = registered and not admin
        try:
            self.check_name(name, taking_over=takeover)
        except Exception:
            return defer.fail()
        key = name_key(name)

        def claimed(_):
            try:
                return self.login(name, client, admin, address, registered)
            except Exception:
                if key not in self._users:
                    self._bus.release(key)
                raise

        def refused(failure):
            failure.trap(NameTaken)
            raise NameTaken(f"username {name} is taken")

        return self._bus.claim(key, takeover).addCallbacks(claimed, refused)

    def login(self, name: str, client: IClient, admin: bool = False,
              address: str | None = None, registered: bool = False) -> User:
        """Take name for client (in no room yet).  A registered or admin
        name that is in use is taken over: the old connection is told and
        closed.  Raises RoomError if name may not log in."""
        takeover = registered and not admin
        self.check_name(name, taking_over=takeover)
        old = self._users.get(name_key(name))
        if old is not None:
            self.tell(old, ev.Replaced(ev.next_id(), self._now(), "", old.name))
            self.logout(old, cause="logged in from elsewhere", count_as="replaced",
                        release=False)
            old.client.disconnect()
        user = User(name, client, admin, address, registered, server=self)
        self._users[user.key] = user
        self.stats.joined(len(self._users))
        return user

    def logout(self, user: User, reason: str = "", cause: str = "",
               count_as: str = "closed", release: bool = True) -> bool:
        """user is gone (the cred logout): every room they were in is told
        `Left`; False if they were logged out already.  Without release the
        name stays claimed (the same name is logging in again here)."""
        rooms = self.remove(user, count_as, release)
        if rooms is None:
            return False
        for room in rooms:
            room.broadcast(room.event(ev.Left, user.name, reason, cause))
        log.info("{name} left ({how})", name=user.name, how=cause or count_as)
        return True

    def remove(self, user: User, count_as: str,
               release: bool = True) -> tuple[Room, ...] | None:
        """Log user out without a word to anyone, counting the disconnect
        under count_as; the rooms they were in, or None if already out."""
        if self._users.get(user.key) is not user:
            return None
        del self._users[user.key]
        rooms = user.rooms
        for room in rooms:
            room.discard(user)
            self.close_if_empty(room)
        if release:
            self._bus.release(user.key)
        self.stats.disconnected(count_as)
        return rooms

    # -- rooms --------------------------------------------------------

    def enter(self, user: User, name: str | None = None, login: bool = False,
              leaving: Room | None = None) -> defer.Deferred:
        """Put user in room name (the landing room by default), creating it
        if rooms are open; fires with the Room once they are in, after they
        have been sent its Welcome (with its history, and with login the
        message of the day); with leaving, they leave that room as they
        enter this one.  Raises RoomError."""
        room = self._landing if name is None else self._rooms.get(name_key(name))
        if room is None:
            if not valid_name(name):
                raise InvalidName(f"invalid room name: use {NAME_RULE}")
            if not self.open_rooms:
                raise NoSuchRoom(f"no such room: {name} (/rooms lists them)")
            room = self._make_room(name)
        if room in user.rooms:
            return defer.succeed(room)
        if self.history is not None and self.history.limit:
            d = self.history.recent(room.name)
        else:
            d = defer.succeed([])
        return d.addCallback(self._entered, user, room, login, leaving)

    def _entered(self, history, user: User, room: Room, login: bool,
                 leaving: Room | None) -> Room | None:
        if self._users.get(user.key) is not user:  # gone while the history loaded
            self.close_if_empty(room)
            return None
        if self._rooms.get(room.key) is not room:  # closed meanwhile: make it again
            room = self.room_for(room.name)
        if room in user.rooms:
            return room
        if leaving is not None:
            self.part(user, leaving, cause=f"joined {room.name}")
        room.add(user)
        who, count = room.who(limit=GREETING_NAMES)
        self.tell(user, room.event(
            ev.Welcome, user.name, user.admin, who, count, login=login,
            motd=self.motd if login else "", topic=room.topic, history=tuple(history)))
        room.broadcast(room.event(ev.Joined, user.name, user.admin), sender=user)
        if login:
            log.info("{name} joined from {address}", name=user.name, address=user.address)
        else:
            log.info("{name} joined {room}", name=user.name, room=room.name)
        return room

    def part(self, user: User, room: Room, cause: str = "", reason: str = "") -> None:
        """user leaves room (staying logged in); the room is told."""
        if room.discard(user):
            room.broadcast(room.event(ev.Left, user.name, reason, cause, quit=False))
            self.close_if_empty(room)

    def remove_from_room(self, user: User, room: Room) -> bool:
        """Take user out of room without a word to the room (an admin's
        room-only kick: the room heard `Kicked`), and tell their front end
        (IClient.removed); they stay logged in.  False if not in room."""
        if not room.discard(user):
            return False
        self.close_if_empty(room)
        if user.node:  # their own node takes them out, and tells their front end
            self._bus.unroom(user, room.name)
            return True
        removed = getattr(user.client, "removed", None)  # optional for a front end
        if removed is not None:
            removed(room)
        return True

    def rename_room(self, room: Room, name: str) -> None:
        """Give room a new name (a reload renames the landing room)."""
        key = name_key(name)
        if not valid_name(name):
            raise InvalidName(f"invalid room name {name}: use {NAME_RULE}")
        if key != room.key and key in self._rooms:
            raise NotAllowed(f"a room {name} exists already")
        del self._rooms[room.key]
        old = room.name
        room.rename(name)
        self._rooms[key] = room
        if self.history is not None:
            self.history.rename(old, name)

    def configure(self, rooms: Iterable[str], open_rooms: bool,
                  registration: str) -> list[str]:
        """Apply the room settings of a (re)loaded config; what changed."""
        return configure(self, rooms, open_rooms, registration)

    def room_for(self, name: str) -> Room:
        """The room of that name, made if there is none (someone on another
        node is in it)."""
        room = self._rooms.get(name_key(name))  # not `or`: an empty Room is falsy
        return room if room is not None else self._make_room(name)

    def _make_room(self, name: str, configured: bool = False) -> Room:
        room = Room(name, self._clock, self.stats, self._now, self._bus,
                    on_failed=self._failed, configured=configured)
        self._rooms[room.key] = room
        return room

    def close_if_empty(self, room: Room) -> None:
        """A room nobody is in (on any node) that is not configured disappears."""
        if not room.configured and not len(room) and self._rooms.get(room.key) is room:
            del self._rooms[room.key]
            room.close()
            if self.history is not None:
                self.history.forget(room.name)

    # -- talking ------------------------------------------------------

    def say(self, user: User, room: Room, text: str, rich: str = "",
            echo: bool = False) -> ev.Message:
        """user says text in room; rich: the same with formatting codes; with
        echo the sender hears it too (in the room's shared bytes, in order)."""
        return self._said(user, room, ev.Message, text, rich, echo)

    def action(self, user: User, room: Room, text: str, rich: str = "",
               echo: bool = False) -> ev.Action:
        return self._said(user, room, ev.Action, text, rich, echo)

    def _said(self, user: User, room: Room, kind, text: str, rich: str, echo: bool):
        self.moderation.check_muted(user)
        event = kind(ev.next_id(), self._now(), room.name, user.name, text, rich)
        if self.history is not None and not self._bus.keeps_history:
            self.history.keep(room.key, event)
        room.broadcast(event, sender=None if echo else user)
        return event

    def private(self, user: User, target_name: str, text: str) -> None:
        """text from user to target alone (never in any history)."""
        self.moderation.check_muted(user)
        target = self.get(target_name)
        if target is None:
            raise NoSuchUser(f"no such user: {target_name}")
        event = ev.Private(ev.next_id(), self._now(), "", user.name, target.name, text)
        self.tell(target, event)
        if target is not user:
            self.tell(user, event)

    def set_topic(self, user: User, room: Room, text: str) -> None:
        """The room's topic, shown to whoever enters; everyone in it is told."""
        room.topic = text
        room.broadcast(room.event(ev.Topic, user.name, text))

    # -- delivery -----------------------------------------------------

    def tell(self, user: User, event: ev.Event) -> None:
        """event to user alone, after what their rooms said before it."""
        if user.node:
            self._bus.tell(user, event)
            return
        for room in user.rooms:
            room.settle(user)
        data = user.client.wire.render_for(event, user.name)
        self.stats.lines_delivered += data.count(b"\n")
        self.stats.bytes_sent += len(data)
        try:
            user.client.deliver(data)
        except Exception:
            log.failure("delivery to {name} failed", name=user.name)
            self._failed(user)

    def _failed(self, user: User) -> None:
        """Writing to user failed: they go, the rest of the room stays."""
        if self.logout(user, cause="connection failed", count_as="failed"):
            try:
                user.client.disconnect()
            except Exception:
                log.failure("disconnecting {name} failed", name=user.name)

    def shutdown(self, text: str = "server shutting down") -> None:
        """Tell every room the server is going, and let everyone go."""
        for room in self._rooms.values():
            room.broadcast(room.event(ev.Notice, text))
            room.flush()
        self.stats.disconnected("shutdown", len(self._users))
        users, self._users = list(self._users.values()), {}
        for user in users:
            if not user.rooms:  # logged in, their first room's history still loading
                self.tell(user, ev.Notice(ev.next_id(), self._now(), "", text))
            for room in user.rooms:
                room.discard(user)
            user.client.disconnect()
