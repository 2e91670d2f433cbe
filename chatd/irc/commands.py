"""What a registered IRC client may do: each command to the core, answered
with the numerics of the Modern IRC Client Protocol.

Commands(conn) runs `irc_COMMAND` methods against the connection's public
side (its user, server, reply/send); refusals from the core (RoomError)
become the matching numeric.  Channel #ROOM is chatd's room ROOM.  The
commands that only ask (NAMES, WHO, WHOIS, LIST...) are chatd.irc.queries'.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger
from twisted.words.protocols import irc

from chatd import __version__
from chatd.core.errors import Muted, NoSuchRoom, NoSuchUser, RoomError
from chatd.core.room import Room
from chatd.core.text import (
    NAME_MAX,
    clean_keeping_formatting,
    plain,
    strip_formatting,
    valid_name,
)
from chatd.irc import moderation
from chatd.irc.queries import Queries

log = Logger()

ISUPPORT = [
    "CASEMAPPING=ascii", f"NICKLEN={NAME_MAX}", "CHANTYPES=#", "PREFIX=(o)@",
    f"CHANNELLEN={NAME_MAX + 1}", "CHANMODES=bq,,,nt", "NETWORK=chatd", "SAFELIST",
    "UTF8ONLY", f"MODES={moderation.MAX_MODES}", f"TARGMAX=KICK:{moderation.MAX_TARGETS}",
]


class Commands(Queries):
    __slots__ = ()

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
        # Most commands return None: test that first (isinstance against
        # Deferred, an ABC, was a tenth of the IRC input path).
        if result is not None and isinstance(result, defer.Deferred):
            self._conn.hold_until(result)

    # -- after registration -------------------------------------------

    def welcome(self) -> None:
        conn, server = self._conn, self._conn.server
        name = conn.server_name
        conn.reply(irc.RPL_WELCOME, f"Welcome to chatd, {conn.nick}")
        conn.reply(irc.RPL_YOURHOST, f"Your host is {name}, running chatd {__version__}")
        conn.reply(irc.RPL_CREATED, "This server speaks chatd's rooms as channels")
        conn.reply(irc.RPL_MYINFO, name, f"chatd-{__version__}", "io", "bnoqt", "bq")
        for start in range(0, len(ISUPPORT), 12):
            conn.reply(irc.RPL_ISUPPORT, *ISUPPORT[start:start + 12],
                       "are supported by this server")
        self.irc_LUSERS([])
        self.irc_MOTD([])
        del server

    def irc_JOIN(self, params: list[str]) -> defer.Deferred | None:
        conn = self._conn
        if not params:
            conn.reply(irc.ERR_NEEDMOREPARAMS, "JOIN", "Not enough parameters")
            return None
        if params[0] == "0":  # JOIN 0: leave every channel
            self.irc_PART([",".join("#" + room.name for room in self.user.rooms)])
            return None
        waits = []
        for name in params[0].split(","):
            if not name.startswith("#") or not valid_name(name[1:]):
                conn.reply(irc.ERR_NOSUCHCHANNEL, name or "*", "No such channel")
                continue
            if conn.server.room(name[1:]) in self.user.rooms:
                continue  # there already: nothing to say
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
            if self._conn.away:  # away-notify: who joins away is shown away
                self._away_notify(self._conn.away, (room,))

    def irc_PART(self, params: list[str]) -> None:
        conn = self._conn
        if not params:
            conn.reply(irc.ERR_NEEDMOREPARAMS, "PART", "Not enough parameters")
            return
        reason = plain(params[1]) if len(params) > 1 else ""
        for name in filter(None, params[0].split(",")):
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
        action = raw.startswith("\x01ACTION ")
        if action:
            raw = raw[8:].removesuffix("\x01")
        elif raw.startswith("\x01"):
            return  # other CTCP (VERSION, PING...): not a thing to show anyone
        rich = clean_keeping_formatting(raw)
        text = strip_formatting(rich)
        if not text.strip():
            return
        if rich == text:
            rich = ""
        for target in params[0].split(","):
            try:
                if target.startswith("#"):
                    room = self._room(target, quiet=notice)
                    if room is None:
                        continue
                    if action:
                        conn.server.action(self.user, room, text, rich)
                    else:
                        conn.server.say(self.user, room, text, rich)
                else:
                    conn.server.private(self.user, target, text)
                    found = conn.server.get(target)  # there: private() did not raise
                    away = getattr(found.client, "away", None)
                    if away and not notice:
                        conn.reply(irc.RPL_AWAY, found.name, away)
            except Muted:
                if not notice:
                    conn.reply(irc.ERR_CANNOTSENDTOCHAN, target, "Cannot send: you are muted")
                continue
            except NoSuchUser:
                if not notice:
                    conn.reply(irc.ERR_NOSUCHNICK, target, "No such nick/channel")
                continue
            # (a private message to yourself arrives once already)
            if "echo-message" in conn.caps and target.lower() != self.user.key:
                body = rich or text
                if action:
                    body = f"\x01ACTION {body}\x01"
                conn.send_bytes(conn.wire.echo(conn.server.now(), self.user.name, verb,
                                               target, body))

    def irc_NOTICE(self, params: list[str]) -> None:
        self.irc_PRIVMSG(params, notice=True)

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
        conn.server.set_topic(self.user, room, plain(params[1]))

    def irc_TAGMSG(self, params: list[str]) -> None:
        """Client-only tags (typing...) are not relayed, and need no answer:
        message-tags clients send them, and must not get 421."""

    def irc_AWAY(self, params: list[str]) -> None:
        conn = self._conn
        text = plain(params[0]) if params and params[0] else ""
        conn.away = text or None
        self._away_notify(text)
        if text:
            conn.reply(irc.RPL_NOWAWAY, "You have been marked as being away")
        else:
            conn.reply(irc.RPL_UNAWAY, "You are no longer marked as being away")

    def _away_notify(self, text: str, rooms: tuple[Room, ...] | None = None) -> None:
        """Tell the IRC clients with away-notify who share a channel (of
        rooms, by default all) with this user (the core has no away: it is
        the IRC front end's)."""
        user = self.user
        line = f":{self._conn.wire.source(user.name)} AWAY" + (f" :{text}" if text else "")
        told = {user}
        for room in user.rooms if rooms is None else rooms:
            for member in room.members:
                if member not in told:
                    told.add(member)
                    if "away-notify" in getattr(member.client, "caps", ()):
                        member.client.send(line)

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
        reason = plain(params[2]).strip() if len(params) > 2 else ""
        return moderation.kick(self._conn, room, params[1].split(","), reason)
