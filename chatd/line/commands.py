"""Commands: what a line starting with '/' does.

The protocol turns bytes into lines and chatd.line.login runs the login
steps; once a user is in a room it hands each `/verb args` line to a
Commands made for it.  Commands.run calls the `cmd_<verb>` method of the
same name, which parses the arguments and makes one call on the core's
server (chatd.core.server) or its moderation (`server.moderation`), and
renders the answer as lines (chatd.line.codec).  Refusals are RoomErrors,
each shown as one "! " line.
Commands that write to disk return a Deferred; the connection holds further
lines until it fires, so a user's lines keep their order.

Commands reach their connection only through CommandContext, a small
public interface the line protocol provides; they never touch its state.
"""

from __future__ import annotations

import re
from typing import Protocol

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatd.config import Limits
from chatd.core.errors import PermissionDenied, RoomError
from chatd.core.journal import MAX_SHOWN, parse_count
from chatd.core.journal import timestamp as _timestamp
from chatd.core.room import Room, User
from chatd.core.server import Server
from chatd.core.stats import Stats, format_uptime
from chatd.core.text import with_reason
from chatd.line.codec import error, notice, who_line
from chatd.line.register import Registration

log = Logger()

_DURATION = re.compile(r"([0-9]{1,7})([smhdw])\Z", re.IGNORECASE)
_LOOKS_LIKE_DURATION = re.compile(r"[0-9]+[a-z]*\Z", re.IGNORECASE)
MAX_DURATION = 10 * 365 * 86400.0
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(word: str) -> float | None:
    """'30m' -> 1800.0; None if word is not meant as a duration.

    A word that looks like one but is not valid (0s, 90min, 99999w) raises
    RoomError, so that a typo never turns a timed ban into a permanent one.
    """
    match = _DURATION.match(word)
    if match is None:
        if _LOOKS_LIKE_DURATION.match(word):
            raise RoomError(f"bad duration {word}: use a number and s, m, h, d or w (2h, 7d)")
        return None
    seconds = float(int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])
    if not 0 < seconds <= MAX_DURATION:
        raise RoomError(f"bad duration {word}: more than 0s and at most 10 years")
    return seconds

HELP = [
    "commands:",
    "  /who                 who is in this room (@ marks admins)",
    "  /rooms               the rooms and how many are in each",
    "  /join ROOM           go to ROOM (made if it does not exist, where allowed)",
    "  /part                back to the room everyone lands in",
    "  /topic               this room's topic",
    "  /register            protect your name with a password",
    "  /limits              how fast and how long your lines may be",
    "  /me ACTION           say what you do",
    "  /msg NAME TEXT       a private message",
    "  /quit [REASON]       leave",
    "  /help                this list",
    "  //TEXT               send a line that starts with /",
]
ADMIN_HELP = [
    "admin commands:",
    "  /kick NAME [REASON]  disconnect NAME (they may come back)",
    "  /ban [-ip] NAME [DURATION] [REASON]",
    "                       disconnect NAME and keep them out (for 30m, 2h,",
    "                       7d...; -ip: their address too)",
    "  /unban NAME          lift a ban",
    "  /bans                list bans",
    "  /mute NAME [DURATION]  NAME may read but not speak",
    "  /unmute NAME         lift a mute",
    f"  /modlog [N]          the last N moderation actions (20; at most {MAX_SHOWN})",
    "  /stats               uptime, users, traffic, refusals, disconnects",
    "  /topic TEXT          set this room's topic (/topic - clears it)",
]


class CommandContext(Protocol):
    """All a command may use of the connection its line came from.

    chatd.line.protocol.ChatProtocol provides it; a test or another front end
    may provide its own.
    """

    @property
    def member(self) -> User | None:
        """Who sent the command; None once they have left."""

    @property
    def here(self) -> Room | None:
        """The room this connection is shown."""

    @property
    def server(self) -> Server: ...

    @property
    def registrar(self):
        """registrar(name, password) -> Deferred stores a registered name;
        None where /register is unavailable."""

    @property
    def stats(self) -> Stats: ...

    @property
    def limits(self) -> Limits:
        """The limits this connection is held to, as they are now."""

    @property
    def clock(self) -> IReactorTime: ...

    def reply(self, *lines: str) -> None:
        """Lines to this connection only, in order with what the room sent it."""

    def hold_until(self, done: defer.Deferred) -> None:
        """Read no further line from this connection until done has fired
        (call it after adding done's own callbacks)."""

    def leave_room(self, reason: str) -> None:
        """The user leaves the room by their own choice, as /quit: the room
        is told; the connection stays until close()."""

    def close(self, *lines: str) -> None:
        """Send lines, then close the connection."""

    def ask(self, then) -> None:
        """Hand the next line this connection reads to then(text), unseen by anyone."""

    def entered(self, room: Room) -> None:
        """The user is in room now, and is shown it."""


class Commands:
    """The `/` commands of one logged-in user, run against their connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: CommandContext):
        self._conn = conn

    @property
    def member(self) -> User:
        return self._conn.member

    @property
    def server(self) -> Server:
        return self._conn.server

    def reply(self, *lines: str) -> None:
        self._conn.reply(*lines)

    def run(self, text: str) -> None:
        """Run one command line, `verb args` without its "/"."""
        parts = text.split(None, 1)
        verb = parts[0].lower() if parts else ""
        arg = parts[1].strip() if len(parts) > 1 else ""
        handler = getattr(self, "cmd_" + verb, None) if verb.isalpha() else None
        if handler is None:
            self.reply(error(f"unknown command /{verb} (try /help)"))
            return
        try:
            result = handler(arg)
        except RoomError as e:
            self.reply(error(str(e)))
            return
        if isinstance(result, defer.Deferred):
            result.addErrback(self._failed, verb)
            self._conn.hold_until(result)

    def _failed(self, failure, verb: str) -> None:
        if failure.check(RoomError):
            self.reply(error(str(failure.value)))
        else:
            log.failure("/{verb} failed", failure, verb=verb)
            self.reply(error(f"/{verb} failed: {failure.getErrorMessage()}"))

    def cmd_help(self, arg: str) -> None:
        lines = HELP + (ADMIN_HELP if self.member.admin else [])
        self.reply(*(notice(line) for line in lines))

    def cmd_who(self, arg: str) -> None:
        self.reply(who_line(*self._conn.here.who()))

    def cmd_me(self, arg: str) -> None:
        if not arg:
            raise RoomError("usage: /me ACTION")
        self.server.action(self.member, self._conn.here, arg)

    def cmd_msg(self, arg: str) -> None:
        parts = arg.split(None, 1)
        if len(parts) < 2:
            raise RoomError("usage: /msg NAME TEXT")
        self.server.private(self.member, parts[0], parts[1])

    def cmd_rooms(self, arg: str) -> None:
        rooms = self.server.rooms
        listed = ", ".join(f"{room.name} ({len(room)})" for room in rooms)
        self.reply(notice(f"rooms ({len(rooms)}): {listed}"))

    def cmd_join(self, arg: str) -> defer.Deferred | None:
        words = arg.split()
        if len(words) != 1:
            raise RoomError("usage: /join ROOM")
        return self._move(words[0])

    def cmd_part(self, arg: str) -> defer.Deferred | None:
        if self._conn.here is self.server.landing:
            raise RoomError(f"you are in {self.server.landing.name}, where everyone lands")
        return self._move(None)

    def _move(self, name: str | None) -> defer.Deferred | None:
        """Leave this room for room name (None: the landing room)."""
        here, server = self._conn.here, self.server
        target = server.landing if name is None else server.room(name)
        if target is here:
            raise RoomError(f"you are in {here.name} already")
        d = server.enter(self.member, name, leaving=here)
        return d.addCallback(lambda room: room and self._conn.entered(room))

    def cmd_topic(self, arg: str) -> None:
        here = self._conn.here
        if not arg:
            self.reply(notice(f"topic: {here.topic}" if here.topic
                              else f"no topic in {here.name}"))
            return
        self._admin_only()
        self.server.set_topic(self.member, here, "" if arg == "-" else arg)

    def cmd_limits(self, arg: str) -> None:
        """So that a client can pace its lines under the flood limit
        (chatd-client does, after login) instead of being kicked for a paste."""
        self.reply(limits_line(self._conn.limits))

    def cmd_register(self, arg: str) -> None:
        Registration(self._conn).start()

    def cmd_quit(self, arg: str) -> None:
        self._conn.leave_room(arg)
        self._conn.close(notice("bye"))

    def _admin_only(self) -> None:
        if not self.member.admin:
            raise PermissionDenied()

    def cmd_kick(self, arg: str) -> defer.Deferred:
        self._admin_only()
        name, reason = (arg.split(None, 1) + ["", ""])[:2]
        return self.server.moderation.kick(self.member, name, reason.strip())

    def cmd_ban(self, arg: str) -> defer.Deferred:
        self._admin_only()
        words = arg.split()
        address = bool(words) and words[0].lower() == "-ip"
        if address:
            words.pop(0)
        name = words.pop(0) if words else ""
        duration = parse_duration(words[0]) if words else None
        if duration is not None:
            words.pop(0)
        if not name:
            raise RoomError("usage: /ban [-ip] NAME [DURATION] [REASON]")
        return self.server.moderation.ban(self.member, name, " ".join(words), duration, address)

    def cmd_mute(self, arg: str) -> defer.Deferred:
        self._admin_only()
        words = arg.split()
        if not words:
            raise RoomError("usage: /mute NAME [DURATION]")
        duration = None
        if len(words) > 1:
            duration = parse_duration(words[1])
            if duration is None:
                raise RoomError("usage: /mute NAME [DURATION], DURATION like 30s, 10m, 2h, 7d")
        return self.server.moderation.mute(self.member, words[0], duration)

    def cmd_unmute(self, arg: str) -> defer.Deferred:
        self._admin_only()
        if not arg:
            raise RoomError("usage: /unmute NAME")
        return self.server.moderation.unmute(self.member, arg.split()[0])

    def cmd_unban(self, arg: str) -> defer.Deferred:
        self._admin_only()
        if not arg:
            raise RoomError("usage: /unban NAME")
        return self.server.moderation.unban(self.member, arg.split()[0])

    def cmd_bans(self, arg: str) -> None:
        bans = self.server.moderation.bans(self.member)
        if not bans:
            self.reply(notice("no bans"))
            return
        lines = [notice(f"bans ({len(bans)}):")]
        for ban in bans:
            text = f"{ban.name} by {ban.by_admin} at {_timestamp(ban.created)}"
            if ban.expires is not None:
                text += f" until {_timestamp(ban.expires)}"
            if ban.address:
                text += f" (address {ban.address})"
            lines.append(notice(with_reason(text, ban.reason)))
        self.reply(*lines)

    def cmd_modlog(self, arg: str) -> defer.Deferred:
        self._admin_only()
        count = parse_count(arg)
        if count is None:
            raise RoomError("usage: /modlog [N]")
        d = self.server.moderation.modlog(self.member, count)
        return d.addCallback(lambda entries: self.reply(
            *([notice(entry.line()) for entry in entries] or [notice("no moderation entries")])))

    def cmd_stats(self, arg: str) -> None:
        self._admin_only()
        self.reply(*stats_lines(self._conn.stats, len(self.server.users),
                                self._conn.clock.seconds()))


def limits_line(limits: Limits) -> str:
    """What /limits answers (docs/protocol.md, "/limits")."""
    return notice(f"limits flood_burst={limits.flood_burst} "
                  f"flood_rate={limits.flood_rate:g} max_line={limits.max_line}")


def _by_cause(counts) -> str:
    return ", ".join(f"{cause} {n}" for cause, n in sorted(counts.items()) if n) or "none"


def stats_lines(stats: Stats, users: int, now: float) -> list[str]:
    """What /stats shows (docs/protocol.md, "/stats")."""
    lines_in, delivered, _ = stats.last_minute(now)
    return [notice(line) for line in (
        f"up {format_uptime(now - stats.started)}",
        f"users: {users} now, {stats.peak_users} peak, {stats.logins} logins",
        f"last minute: {lines_in} lines in, {delivered} delivered",
        f"refused: {_by_cause(stats.refusals)}",
        f"disconnects: {_by_cause(stats.disconnects)}",
    )]
