"""What IRC operators may do: KICK, and the channel modes that are chatd moderation.

chatd admins are channel operators (@) in every channel; everyone else
gets 482 for any of these.  Each maps to the core's Moderation, which
writes the journal first and then announces the result as events: the
channel hears it as every front end's users do (a KICK line, a NOTICE for
a mute), and nothing else is sent to confirm it.  The client's further
lines wait until the journal has it (Commands.run holds on the Deferred).

- `KICK #room nick[,nick] [:reason]`: nick leaves that channel only
  (Moderation.kick_from_room); the line protocol's /kick still disconnects.
- `MODE #room +b nick!*@*` / `-b`: a chatd ban of the name (server-wide,
  persistent, listed by `/bans` and `MODE #room b`), or lifting it.
- `MODE #room +q nick!*@*` / `-q`: the "quiet" list mode of charybdis and
  solanum, here chatd's /mute and /unmute (server-wide, until lifted).

Masks name one chatd name: `nick`, `nick!*` or `nick!*@*` (every user is
shown as nick!nick@SERVER, so a user or host part says nothing more);
anything else, a wildcard in the nick above all, is refused with a NOTICE.
At most MAX_MODES changes are made per MODE line; the rest are ignored.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet import defer
from twisted.logger import Logger
from twisted.words.protocols import irc

from chatd.core.errors import RoomError
from chatd.core.room import Room
from chatd.core.text import valid_name

log = Logger()

MAX_MODES = 4  # ISUPPORT MODES
MAX_TARGETS = 4  # nicks per KICK (ISUPPORT TARGMAX=KICK:4)


def mask_name(mask: str) -> str | None:
    """The chatd name a ban or quiet mask names (`bob`, `bob!*`, `bob!*@*`),
    or None if it names anything else (`b*!*@*`, `*!*@host`, `bob!x@y`)."""
    nick, bang, rest = mask.partition("!")
    if bang and rest not in ("*", "*@*"):
        return None
    return nick if valid_name(nick) else None


def _notice(conn, text: str) -> None:
    conn.send(f":{conn.server_name} NOTICE {conn.nick} :{text}")


def _moderate(conn, act: Callable[[], defer.Deferred]) -> defer.Deferred | None:
    """act(), with a refusal (now or once the journal answers) as a NOTICE."""
    try:
        d = act()
    except RoomError as e:
        _notice(conn, str(e))
        return None

    def failed(failure) -> None:
        if failure.check(RoomError):
            _notice(conn, str(failure.value))
        else:
            log.failure("IRC moderation by {name} failed", failure, name=conn.nick)
            _notice(conn, f"failed: {failure.getErrorMessage()}")

    return d.addErrback(failed)


def _operator(conn, room: Room) -> bool:
    """True for an admin; anyone else gets 482."""
    if conn.user.admin:
        return True
    conn.reply(irc.ERR_CHANOPRIVSNEEDED, "#" + room.name, "You're not channel operator")
    return False


def _all(waits: list[defer.Deferred | None]) -> defer.DeferredList | None:
    waits = [d for d in waits if d is not None]
    return defer.DeferredList(waits) if waits else None


def kick(conn, room: Room, nicks: list[str], reason: str) -> defer.DeferredList | None:
    """KICK: each of nicks (at most MAX_TARGETS) out of room alone; 401 for
    a nick not online, 441 for one not in room."""
    if not _operator(conn, room):
        return None
    server, admin, channel = conn.server, conn.user, "#" + room.name
    waits = []
    for nick in nicks[:MAX_TARGETS]:
        target = server.get(nick)
        if target is None:
            conn.reply(irc.ERR_NOSUCHNICK, nick or "*", "No such nick/channel")
        elif room not in target.rooms:
            conn.reply(irc.ERR_USERNOTINCHANNEL, nick, channel, "They aren't on that channel")
        else:
            waits.append(_moderate(conn, lambda name=target.name: server.moderation
                                   .kick_from_room(admin, room, name, reason)))
    return _all(waits)


def change_modes(conn, room: Room, modes: str, args: list[str]) -> defer.DeferredList | None:
    """MODE #room with changes: +b/-b ban and unban, +q/-q mute and unmute
    (each taking a mask from args in turn); 472 for any other mode, 461
    for one without its mask."""
    if not _operator(conn, room):
        return None
    moderation, admin = conn.server.moderation, conn.user
    actions = {
        ("+", "b"): lambda name: moderation.ban(admin, name),
        ("-", "b"): lambda name: moderation.unban(admin, name),
        ("+", "q"): lambda name: moderation.mute(admin, name),
        ("-", "q"): lambda name: moderation.unmute(admin, name),
    }
    args, sign, made, waits = list(args), "+", 0, []
    for char in modes:
        if char in "+-":
            sign = char
        elif char not in "bq":
            conn.reply(irc.ERR_UNKNOWNMODE, char, "is not a mode chatd changes (+b, +q)")
        elif not args:
            conn.reply(irc.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
        elif made < MAX_MODES:
            made += 1
            mask = args.pop(0)
            name = mask_name(mask)
            if name is None:
                _notice(conn, f"{mask}: chatd {'bans' if char == 'b' else 'mutes'} names:"
                              " use nick or nick!*@*")
                continue
            act = actions[sign, char]
            waits.append(_moderate(conn, lambda act=act, name=name: act(name)))
    return _all(waits)
