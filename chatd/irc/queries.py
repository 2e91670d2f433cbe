"""What an IRC client may ask about (NAMES, WHO, WHOIS, LIST, ISON,
USERHOST, LUSERS, MOTD), answered with the Modern IRC Client Protocol's
numerics; and what every command needs (the room for a channel name,
replies that fit IRC's line length).  chatd.irc.commands.Commands adds
what changes things.  Channel #ROOM is chatd's room ROOM.
"""

from __future__ import annotations

from twisted.words.protocols import irc

from chatd.core.room import Room, User
from chatd.irc.wire import LINE_MAX


class Queries:
    """The asking commands of one IRC connection, and the helpers of all."""

    __slots__ = ("_conn",)

    def __init__(self, conn):
        self._conn = conn

    @property
    def user(self) -> User:
        return self._conn.user

    # -- helpers ------------------------------------------------------

    def _room(self, name: str, joined: bool = True, quiet: bool = False) -> Room | None:
        """The room for channel name, answering 403/442 (unless quiet: NOTICE
        never gets an error reply) when there is none."""
        conn = self._conn
        room = conn.server.room(name[1:]) if name.startswith("#") else None
        if room is None:
            if not quiet:
                conn.reply(irc.ERR_NOSUCHCHANNEL, name, "No such channel")
            return None
        if joined and room not in self.user.rooms:
            if not quiet:
                conn.reply(irc.ERR_NOTONCHANNEL, name, "You're not on that channel")
            return None
        return room

    def _label(self, user: User) -> str:
        # Admins (@) are the only prefix there is, so multi-prefix changes nothing.
        return ("@" if user.admin else "") + user.name

    # -- queries --------------------------------------------------------

    def _reply_words(self, numeric: str, params: tuple[str, ...], words: list[str]) -> None:
        """numeric with words as its last parameter, in as many lines as
        needed to keep each within IRC's 512 bytes, never cutting a word."""
        conn = self._conn
        head = len(f":{conn.server_name} {numeric} {conn.nick} {' '.join(params)} :\r\n")
        room, line = LINE_MAX - head, []
        used = -1
        for word in words:
            if line and used + 1 + len(word) > room:
                conn.reply(numeric, *params, " ".join(line))
                line, used = [], -1
            line.append(word)
            used += 1 + len(word)
        if line:
            conn.reply(numeric, *params, " ".join(line))

    def _names(self, room: Room) -> None:
        conn = self._conn
        labels = [self._label(user) for user in sorted(room.members, key=lambda u: u.key)]
        target = "#" + room.name
        self._reply_words(irc.RPL_NAMREPLY, ("=", target), labels)
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
            self._reply_words(irc.RPL_WHOISCHANNELS, (user.name,), [
                ("@" if user.admin else "") + "#" + room.name for room in user.rooms])
        conn.reply(irc.RPL_WHOISSERVER, user.name, conn.server_name, "chatd")
        if user.admin:
            conn.reply(irc.RPL_WHOISOPERATOR, user.name, "is an IRC operator (chatd admin)")
        away = getattr(user.client, "away", None)
        if away:
            conn.reply(irc.RPL_AWAY, user.name, away)
        conn.reply(irc.RPL_ENDOFWHOIS, user.name, "End of /WHOIS list")

    def irc_LIST(self, params: list[str]) -> None:
        conn = self._conn
        wanted = {name.lower() for name in params[0].split(",")} if params else None
        conn.reply(irc.RPL_LISTSTART, "Channel", "Users  Name")
        for room in conn.server.rooms:
            if wanted is None or "#" + room.key in wanted:
                conn.reply(irc.RPL_LIST, "#" + room.name, str(len(room)), room.topic)
        conn.reply(irc.RPL_LISTEND, "End of /LIST")

    def irc_ISON(self, params: list[str]) -> None:
        """Which of these nicks are online (irssi's notify list asks)."""
        found = (self._conn.server.get(nick) for nick in " ".join(params).split())
        self._conn.reply(irc.RPL_ISON, " ".join(user.name for user in found if user))

    def irc_USERHOST(self, params: list[str]) -> None:
        conn, out = self._conn, []
        for nick in params[:5]:
            user = conn.server.get(nick)
            if user is not None:
                away = "-" if getattr(user.client, "away", None) else "+"
                oper = "*" if user.admin else ""
                out.append(f"{user.name}{oper}={away}{user.name}@{conn.server_name}")
        conn.reply(irc.RPL_USERHOST, " ".join(out))
