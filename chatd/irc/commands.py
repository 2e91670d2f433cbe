"""What a registered IRC client may do: each command to the core, answered
with the numerics of the Modern IRC Client Protocol.

Commands(conn) runs `irc_COMMAND` methods against the connection's public
side (its user, server, reply/send); refusals from the core (RoomError)
become the matching numeric.  Channel #ROOM is chatd's room ROOM.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger
from twisted.words.protocols import irc

from chatd import __version__
from chatd.core.errors import Muted, NoSuchRoom, NoSuchUser, RoomError
from chatd.core.room import Room, User
from chatd.core.text import NAME_MAX, clean, valid_name
from chatd.irc import moderation

log = Logger()

ISUPPORT = [
    "CASEMAPPING=ascii", f"NICKLEN={NAME_MAX}", "CHANTYPES=#", "PREFIX=(o)@",
    f"CHANNELLEN={NAME_MAX + 1}", "CHANMODES=bq,,,nt", "NETWORK=chatd", "SAFELIST",
    "UTF8ONLY", f"MODES={moderation.MAX_MODES}", f"TARGMAX=KICK:{moderation.MAX_TARGETS}",
]


class Commands:
    __slots__ = ("_conn",)

    def __init__(self, conn):
        self._conn = conn

    @property
    def user(self) -> User:
        return self._conn.user

    def run(self, command: str, params: list[str]) -> None:
        handler = getattr(self, "irc_" + command, None)
        if handler is None:
            self._conn.reply(irc.ERR_UNKNOWNCOMMAND, command, "Unknown command")
            return
        try:
            result = handler(params)
        except RoomError as e:
            self._conn.send(f":{self._conn.server_name} NOTICE {self._conn.nick} :{e}")
            return
        if isinstance(result, defer.Deferred):
            self._conn.hold_until(result)

    # -- helpers ------------------------------------------------------

    def _room(self, name: str, joined: bool = True) -> Room | None:
        """The room for channel name, answering 403/442 when there is none."""
        conn = self._conn
        room = conn.server.room(name[1:]) if name.startswith("#") else None
        if room is None:
            conn.reply(irc.ERR_NOSUCHCHANNEL, name, "No such channel")
            return None
        if joined and room not in self.user.rooms:
            conn.reply(irc.ERR_NOTONCHANNEL, name, "You're not on that channel")
            return None
        return room

    def _label(self, user: User) -> str:
        return ("@" if user.admin else "") + user.name

    # -- after registration -------------------------------------------

    def welcome(self) -> None:
        conn, server = self._conn, self._conn.server
        name = conn.server_name
        conn.reply(irc.RPL_WELCOME, f"Welcome to chatd, {conn.nick}")
        conn.reply(irc.RPL_YOURHOST, f"Your host is {name}, running chatd {__version__}")
        conn.reply(irc.RPL_CREATED, "This server speaks chatd's rooms as channels")
        conn.reply(irc.RPL_MYINFO, name, f"chatd-{__version__}", "io", "bnoqt", "")
        for start in range(0, len(ISUPPORT), 12):
            conn.reply(irc.RPL_ISUPPORT, *ISUPPORT[start:start + 12],
                       "are supported by this server")
        self.irc_LUSERS([])
        self.irc_MOTD([])
        del server

    def irc_LUSERS(self, params: list[str]) -> None:
        conn, server = self._conn, self._conn.server
        users = server.users
        conn.reply(irc.RPL_LUSERCLIENT, f"There are {len(users)} users and 0 invisible"
                   " on 1 servers")
        conn.reply(irc.RPL_LUSEROP, str(sum(1 for u in users if u.admin)),
                   "operator(s) online")
        conn.reply(irc.RPL_LUSERCHANNELS, str(len(server.rooms)), "channels formed")
        conn.reply(irc.RPL_LUSERME, f"I have {len(users)} clients and 0 servers")

    def irc_MOTD(self, params: list[str]) -> None:
        conn, motd = self._conn, self._conn.server.motd
        if not motd:
            conn.reply(irc.ERR_NOMOTD, "MOTD File is missing")
            return
        conn.reply(irc.RPL_MOTDSTART, f"- {conn.server_name} Message of the day - ")
        for line in motd.splitlines():
            conn.reply(irc.RPL_MOTD, f"- {line}")
        conn.reply(irc.RPL_ENDOFMOTD, "End of /MOTD command.")

    def irc_JOIN(self, params: list[str]) -> defer.Deferred | None:
        conn = self._conn
        if not params:
            conn.reply(irc.ERR_NEEDMOREPARAMS, "JOIN", "Not enough parameters")
            return None
        waits = []
        for name in params[0].split(","):
            if not name.startswith("#") or not valid_name(name[1:]):
                conn.reply(irc.ERR_NOSUCHCHANNEL, name or "*", "No such channel")
                continue
            try:
                d = conn.server.enter(self.user, name[1:])
            except NoSuchRoom:
                conn.reply(irc.ERR_NOSUCHCHANNEL, name, "No such channel (rooms are closed)")
                continue
            except RoomError as e:
                conn.reply(irc.ERR_NOSUCHCHANNEL, name, str(e))
                continue
            waits.append(d.addCallback(self._joined))
        return defer.DeferredList(waits) if waits else None

    def _joined(self, room: Room | None) -> None:
        if room is not None:
            self._names(room)

    def _names(self, room: Room) -> None:
        conn = self._conn
        labels = [self._label(user) for user in sorted(room.members, key=lambda u: u.key)]
        target = "#" + room.name
        for start in range(0, len(labels), 40):
            conn.reply(irc.RPL_NAMREPLY, "=", target, " ".join(labels[start:start + 40]))
        conn.reply(irc.RPL_ENDOFNAMES, target, "End of /NAMES list.")

    def irc_NAMES(self, params: list[str]) -> None:
        if not params:
            for room in self.user.rooms:
                self._names(room)
            return
        for name in params[0].split(","):
            room = self._room(name, joined=False)
            if room is not None:
                self._names(room)

    def irc_PART(self, params: list[str]) -> None:
        conn = self._conn
        if not params:
            conn.reply(irc.ERR_NEEDMOREPARAMS, "PART", "Not enough parameters")
            return
        reason = clean(params[1]) if len(params) > 1 else ""
        for name in params[0].split(","):
            room = self._room(name)
            if room is None:
                continue
            conn.send(f":{conn.wire.source(self.user.name)} PART #{room.name} :{reason}")
            conn.server.part(self.user, room, reason=reason)

    def irc_PRIVMSG(self, params: list[str], notice: bool = False) -> None:
        conn = self._conn
        verb = "NOTICE" if notice else "PRIVMSG"
        if not params:
            if not notice:
                conn.reply(irc.ERR_NORECIPIENT, f"No recipient given ({verb})")
            return
        if len(params) < 2 or not params[1]:
            if not notice:
                conn.reply(irc.ERR_NOTEXTTOSEND, "No text to send")
            return
        raw = params[1]
        action = raw.startswith("\x01ACTION ") and raw.endswith("\x01")
        text = clean(raw[8:-1] if action else raw)
        if not text.strip():
            return
        for target in params[0].split(","):
            try:
                if target.startswith("#"):
                    room = self._room(target)
                    if room is None:
                        continue
                    if action:
                        conn.server.action(self.user, room, text)
                    else:
                        conn.server.say(self.user, room, text)
                else:
                    conn.server.private(self.user, target, text)
            except Muted:
                if not notice:
                    conn.reply(irc.ERR_CANNOTSENDTOCHAN, target, "Cannot send: you are muted")
                continue
            except NoSuchUser:
                if not notice:
                    conn.reply(irc.ERR_NOSUCHNICK, target, "No such nick/channel")
                continue
            if "echo-message" in conn.caps:
                body = f"\x01ACTION {text}\x01" if action else text
                conn.send(f":{conn.wire.source(self.user.name)} {verb} {target} :{body}")

    def irc_NOTICE(self, params: list[str]) -> None:
        self.irc_PRIVMSG(params, notice=True)

    def irc_WHO(self, params: list[str]) -> None:
        conn = self._conn
        mask = params[0] if params else "*"
        if mask.startswith("#"):
            room = self._room(mask, joined=False)
            users = room.members if room is not None else []
        else:
            found = conn.server.get(mask)
            users = [found] if found is not None else []
        for user in users:
            channel = f"#{user.rooms[0].name}" if user.rooms else "*"
            if mask.startswith("#"):
                channel = mask
            flags = ("G" if getattr(user.client, "away", None) else "H") + (
                "@" if user.admin else "")
            conn.reply(irc.RPL_WHOREPLY, channel, user.name, conn.server_name,
                       conn.server_name, user.name, flags, f"0 {user.name}")
        conn.reply(irc.RPL_ENDOFWHO, mask, "End of WHO list")

    def irc_WHOIS(self, params: list[str]) -> None:
        conn = self._conn
        if not params:
            conn.reply(irc.ERR_NONICKNAMEGIVEN, "No nickname given")
            return
        nick = params[-1]
        user = conn.server.get(nick)
        if user is None:
            conn.reply(irc.ERR_NOSUCHNICK, nick, "No such nick/channel")
            conn.reply(irc.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")
            return
        conn.reply(irc.RPL_WHOISUSER, user.name, user.name, conn.server_name, "*", user.name)
        if user.rooms:
            conn.reply(irc.RPL_WHOISCHANNELS, user.name, " ".join(
                ("@" if user.admin else "") + "#" + room.name for room in user.rooms))
        conn.reply(irc.RPL_WHOISSERVER, user.name, conn.server_name, "chatd")
        if user.admin:
            conn.reply(irc.RPL_WHOISOPERATOR, user.name, "is an IRC operator (chatd admin)")
        away = getattr(user.client, "away", None)
        if away:
            conn.reply(irc.RPL_AWAY, user.name, away)
        conn.reply(irc.RPL_ENDOFWHOIS, user.name, "End of /WHOIS list")

    def irc_TOPIC(self, params: list[str]) -> None:
        conn = self._conn
        if not params:
            conn.reply(irc.ERR_NEEDMOREPARAMS, "TOPIC", "Not enough parameters")
            return
        room = self._room(params[0], joined=len(params) > 1)
        if room is None:
            return
        if len(params) == 1:
            if room.topic:
                conn.reply(irc.RPL_TOPIC, "#" + room.name, room.topic)
            else:
                conn.reply(irc.RPL_NOTOPIC, "#" + room.name, "No topic is set")
            return
        if not self.user.admin:
            conn.reply("482", "#" + room.name, "You're not channel operator")
            return
        conn.server.set_topic(self.user, room, clean(params[1]))

    def irc_LIST(self, params: list[str]) -> None:
        conn = self._conn
        conn.reply(irc.RPL_LISTSTART, "Channel", "Users  Name")
        for room in conn.server.rooms:
            conn.reply(irc.RPL_LIST, "#" + room.name, str(len(room)), room.topic)
        conn.reply(irc.RPL_LISTEND, "End of /LIST")

    def irc_AWAY(self, params: list[str]) -> None:
        conn = self._conn
        text = clean(params[0]) if params and params[0] else ""
        conn.away = text or None
        if text:
            conn.reply(irc.RPL_NOWAWAY, "You have been marked as being away")
        else:
            conn.reply(irc.RPL_UNAWAY, "You are no longer marked as being away")

    def irc_MODE(self, params: list[str]) -> defer.Deferred | None:
        conn = self._conn
        if not params:
            conn.reply(irc.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters")
            return
        target = params[0]
        if not target.startswith("#"):
            if target.lower() != self.user.key:
                conn.reply("502", "Can't change mode for other users")
            else:
                conn.reply(irc.RPL_UMODEIS, "+io" if self.user.admin else "+i")
            return
        room = self._room(target, joined=False)
        if room is None:
            return
        if len(params) == 1:
            conn.reply(irc.RPL_CHANNELMODEIS, target, "+nt")
        elif params[1] in ("b", "+b") and len(params) == 2:
            for ban in conn.server.bans.all(conn.server.now()):
                conn.reply(irc.RPL_BANLIST, target, f"{ban.name}!*@*", ban.by_admin,
                           str(int(ban.created)))
            conn.reply(irc.RPL_ENDOFBANLIST, target, "End of channel ban list")
        else:  # admins' +b/-b (bans) and +q/-q (mutes): chatd.irc.moderation
            return moderation.change_modes(conn, room, params[1], params[2:])

    def irc_KICK(self, params: list[str]) -> defer.Deferred | None:
        """KICK #room nick[,nick] [:reason]: out of that channel alone (chatd.irc.moderation)."""
        if len(params) < 2:
            self._conn.reply(irc.ERR_NEEDMOREPARAMS, "KICK", "Not enough parameters")
            return None
        room = self._room(params[0])
        if room is None:
            return None
        reason = clean(params[2]).strip() if len(params) > 2 else ""
        return moderation.kick(self._conn, room, params[1].split(","), reason)
