"""IRC commands after registration, with their numerics and error replies."""

from __future__ import annotations

from tests.helpers import join
from tests.helpers_irc import IrcTestCase, numerics


class WelcomeTests(IrcTestCase):
    def test_001_to_005_lusers_motd(self):
        """Registration is answered with 001-005 (005 has the ISUPPORT tokens
        clients read), LUSERS and the MOTD."""
        p = self.h.irc()
        self.h.say(p, "NICK bob", "USER bob 0 * :Bob")
        out = self.h.lines(p)
        self.assertEqual(numerics(out), ["001", "002", "003", "004", "005", "251", "252",
                                         "254", "255", "375", "372", "376"])
        self.assertTrue(out[3].startswith(":test.irc 004 bob test.irc chatd-"))
        tokens = out[4].split(" :")[0].split()[3:]
        for token in ("CASEMAPPING=ascii", "NICKLEN=24", "CHANTYPES=#", "PREFIX=(o)@"):
            self.assertIn(token, tokens)
        self.assertEqual(out[10], ":test.irc 372 bob :- be nice")

    def test_motd_lusers_commands(self):
        """MOTD and LUSERS on demand; 422 without a MOTD; 251-255 count users and rooms."""
        self.h.login("alice")
        p = self.h.irc_login("bob")
        self.h.say(p, "MOTD", "LUSERS")
        self.assertEqual(self.h.lines(p), [
            ":test.irc 375 bob :- test.irc Message of the day - ",
            ":test.irc 372 bob :- be nice",
            ":test.irc 376 bob :End of /MOTD command.",
            ":test.irc 251 bob :There are 2 users and 0 invisible on 1 servers",
            ":test.irc 252 bob 0 :operator(s) online",
            ":test.irc 254 bob 1 :channels formed",
            ":test.irc 255 bob :I have 2 clients and 0 servers"])
        self.h.server.motd = ""
        self.h.say(p, "MOTD")
        self.assertEqual(self.h.lines(p), [":test.irc 422 bob :MOTD File is missing"])

    def test_ping_pong_unknown_421(self):
        """PING is answered with PONG and its token; an unknown command gets 421."""
        p = self.h.irc_login("bob")
        self.h.say(p, "PING :abc", "PONG :x", "FROB a b")
        self.assertEqual(self.h.lines(p), [":test.irc PONG test.irc :abc",
                                           ":test.irc 421 bob FROB :Unknown command"])


class ChannelTests(IrcTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.h.login("alice")  # a line user in #testroom
        self.bob = self.h.irc_login("bob")

    def test_join_one_and_several(self):
        """JOIN #a,#b joins both (a new room is made: open_rooms), each with
        JOIN, NAMES; the line users in the room see the join."""
        self.h.say(self.bob, "JOIN #testroom,#games")
        self.assertEqual(self.h.lines(self.bob), [
            ":bob!bob@test.irc JOIN #testroom",
            ":test.irc 353 bob = #testroom :alice bob",
            ":test.irc 366 bob #testroom :End of /NAMES list.",
            ":bob!bob@test.irc JOIN #games",
            ":test.irc 353 bob = #games :bob",
            ":test.irc 366 bob #games :End of /NAMES list."])
        self.assertEqual(self.h.read(self.alice), ["* bob joined"])
        self.assertIsNotNone(self.h.server.room("games"))

    def test_join_again_and_join_0(self):
        """JOIN of a channel one is on says nothing; JOIN 0 leaves every channel."""
        self.h.say(self.bob, "JOIN #testroom,#games")
        self.h.lines(self.bob)
        self.h.say(self.bob, "JOIN #TestRoom")
        self.assertEqual(self.h.lines(self.bob), [])
        self.h.say(self.bob, "JOIN 0")
        self.assertEqual(self.h.lines(self.bob), [":bob!bob@test.irc PART #testroom :",
                                                  ":bob!bob@test.irc PART #games :"])
        self.assertEqual(self.h.server.get("bob").rooms, ())
        self.h.say(self.bob, "JOIN 0")
        self.assertEqual(self.h.lines(self.bob), [])

    def test_join_errors(self):
        """JOIN without a channel is 461; a bad name or a new room when rooms
        are closed is 403."""
        self.h.server.open_rooms = False
        self.h.say(self.bob, "JOIN", "JOIN #games", "JOIN nohash", "JOIN #b@d")
        self.assertEqual(numerics(self.h.lines(self.bob)), ["461", "403", "403", "403"])
        self.assertIsNone(self.h.server.room("games"))

    def test_part(self):
        """PART with a reason: the line users see it; 442 when not on it,
        403 when there is no such channel, 461 without one."""
        self.h.say(self.bob, "JOIN #testroom")
        self.h.lines(self.bob)
        self.h.read(self.alice)
        self.h.say(self.bob, "PART #testroom :see you")
        self.assertEqual(self.h.lines(self.bob), [":bob!bob@test.irc PART #testroom :see you"])
        self.assertEqual(self.h.read(self.alice), ["* bob left: see you"])
        self.h.say(self.bob, "PART #testroom", "PART #nothere", "PART")
        self.assertEqual(numerics(self.h.lines(self.bob)), ["442", "403", "461"])

    def test_privmsg_both_ways_and_action(self):
        """An IRC user's PRIVMSG and CTCP ACTION reach a line user as `<bob> hi`
        and `+ bob waves`; a line user's line reaches IRC as PRIVMSG."""
        self.h.say(self.bob, "JOIN #testroom")
        self.h.lines(self.bob)
        self.h.read(self.alice)
        self.h.say(self.bob, "PRIVMSG #testroom :hi", "PRIVMSG #testroom :\x01ACTION waves\x01")
        self.assertEqual(self.h.read(self.alice), ["<bob> hi", "+ bob waves"])
        self.assertEqual(self.h.lines(self.bob), [], "no echo without echo-message")
        self.h.send(self.alice, "hello")
        self.assertEqual(self.h.lines(self.bob),
                         [":alice!alice@test.irc PRIVMSG #testroom :hello"])

    def test_privmsg_to_nick_and_away_301(self):
        """PRIVMSG to a nick is private; to an away IRC user it also gets 301."""
        carol = self.h.irc_login("carol")
        self.h.say(carol, "AWAY :lunch")
        self.h.lines(carol)
        self.h.say(self.bob, "PRIVMSG alice :psst", "PRIVMSG Carol :hey")
        self.assertEqual(self.h.read(self.alice), ["[bob] psst"])
        self.assertEqual(self.h.lines(carol), [":bob!bob@test.irc PRIVMSG carol :hey"])
        self.assertEqual(self.h.lines(self.bob), [":test.irc 301 bob carol :lunch"])

    def test_privmsg_errors_and_notice_none(self):
        """411 no recipient, 412 no text, 401 no such nick, 403/442 channels,
        404 when muted; NOTICE gets none of them."""
        self.h.say(self.bob, "PRIVMSG", "PRIVMSG #testroom", "PRIVMSG ghost :x",
                   "PRIVMSG #nope :x", "PRIVMSG #testroom :x")
        self.assertEqual(numerics(self.h.lines(self.bob)), ["411", "412", "401", "403", "442"])
        self.h.say(self.bob, "NOTICE", "NOTICE #testroom", "NOTICE ghost :x",
                   "NOTICE #nope :x", "NOTICE #testroom :x")
        self.assertEqual(self.h.lines(self.bob), [])
        boss = self.h.login("boss", "s3cret-pass")
        self.h.send(boss, "/mute bob")
        self.h.say(self.bob, "JOIN #testroom")
        self.h.lines(self.bob)
        self.h.say(self.bob, "PRIVMSG #testroom :let me talk", "NOTICE #testroom :me too")
        self.assertEqual(numerics(self.h.lines(self.bob)), ["404"])
        self.assertNotIn("<bob> let me talk", self.h.read(self.alice))

    def test_other_ctcp_not_shown(self):
        """A CTCP other than ACTION (VERSION...) is shown to nobody as text."""
        self.h.say(self.bob, "PRIVMSG alice :\x01VERSION\x01")
        self.assertEqual(self.h.read(self.alice), [])

    def test_echo_message(self):
        """With echo-message the sender gets its own lines back, as others see them."""
        carol = self.h.irc_login("carol", caps="echo-message server-time")
        self.h.say(carol, "JOIN #testroom", "PRIVMSG #testroom :hi", "PRIVMSG alice :yo",
                   "PRIVMSG #testroom :\x01ACTION nods\x01")
        out = [line for line in self.h.lines(carol) if " JOIN " not in line
               and " 353 " not in line and " 366 " not in line]
        self.assertEqual(out, [
            "@time=1970-01-01T00:00:00.000Z :carol!carol@test.irc PRIVMSG #testroom :hi",
            "@time=1970-01-01T00:00:00.000Z :carol!carol@test.irc PRIVMSG alice :yo",
            "@time=1970-01-01T00:00:00.000Z :carol!carol@test.irc PRIVMSG #testroom"
            " :\x01ACTION nods\x01"])

    def test_private_message_to_yourself_arrives_once(self):
        """With echo-message, a PRIVMSG to your own nick arrives once, not twice."""
        carol = self.h.irc_login("carol", caps="echo-message")
        self.h.say(carol, "PRIVMSG Carol :note to self")
        self.assertEqual(self.h.lines(carol),
                         [":carol!carol@test.irc PRIVMSG carol :note to self"])

    def test_names_who_with_admin(self):
        """NAMES (353/366) and WHO (352/315) show admins with @."""
        boss = self.h.irc_login("boss", "PASS s3cret-pass")
        self.h.say(boss, "JOIN #testroom")
        self.h.say(self.bob, "NAMES #testroom", "WHO #testroom")
        self.assertEqual(self.h.lines(self.bob), [
            ":test.irc 353 bob = #testroom :alice @boss",
            ":test.irc 366 bob #testroom :End of /NAMES list.",
            ":test.irc 352 bob #testroom alice test.irc test.irc alice H :0 alice",
            ":test.irc 352 bob #testroom boss test.irc test.irc boss H@ :0 boss",
            ":test.irc 315 bob #testroom :End of WHO list"])

    def test_names_many_long_nicks_never_cut(self):
        """A full room's NAMES comes in several 353 lines of at most 512 bytes,
        no nick cut in two: the client's nick list is right."""
        nicks = [f"user{i:02d}" + "x" * 18 for i in range(60)]
        for nick in nicks:
            join(self.h.server, nick)
        self.h.say(self.bob, "NAMES #testroom")
        raw = self.bob.transport.value()
        self.assertTrue(all(len(line) + 2 <= 512 for line in raw.split(b"\r\n")))
        out = self.h.lines(self.bob)
        self.assertGreater(len(out), 3)
        listed = []
        for line in out[:-1]:
            self.assertTrue(line.startswith(":test.irc 353 bob = #testroom :"))
            listed += line.split(" :", 1)[1].split(" ")
        self.assertEqual(listed, sorted(["alice", *nicks]))

    def test_whois(self):
        """WHOIS: 311, 319 channels, 312, 313 for admins, 301 away, 318; 401 for nobody."""
        boss = self.h.irc_login("boss", "PASS s3cret-pass")
        self.h.say(boss, "JOIN #testroom", "AWAY :out")
        self.h.say(self.bob, "WHOIS boss", "WHOIS ghost")
        self.assertEqual(self.h.lines(self.bob), [
            ":test.irc 311 bob boss boss test.irc * :boss",
            ":test.irc 319 bob boss :@#testroom",
            ":test.irc 312 bob boss test.irc :chatd",
            ":test.irc 313 bob boss :is an IRC operator (chatd admin)",
            ":test.irc 301 bob boss :out",
            ":test.irc 318 bob boss :End of /WHOIS list",
            ":test.irc 401 bob ghost :No such nick/channel",
            ":test.irc 318 bob ghost :End of /WHOIS list"])

    def test_topic(self):
        """TOPIC shows 331/332; an admin sets it (everyone sees it); others get 482."""
        boss = self.h.irc_login("boss", "PASS s3cret-pass")
        self.h.say(boss, "JOIN #testroom")
        self.h.say(self.bob, "JOIN #testroom")
        self.h.lines(self.bob)
        self.h.say(self.bob, "TOPIC #testroom", "TOPIC #testroom :mine")
        self.assertEqual(numerics(self.h.lines(self.bob)), ["331", "482"])
        self.h.say(boss, "TOPIC #testroom :be kind")
        self.assertEqual(self.h.lines(self.bob),
                         [":boss!boss@test.irc TOPIC #testroom :be kind"])
        self.h.say(self.bob, "TOPIC #testroom")
        self.assertEqual(self.h.lines(self.bob), [":test.irc 332 bob #testroom :be kind"])

    def test_topic_and_reasons_lose_colour_numbers(self):
        """A topic or part reason typed with IRC colours reaches everyone as
        plain text: no stray colour digits ("04red" for a red "red")."""
        boss = self.h.irc_login("boss", "PASS s3cret-pass")
        self.h.say(boss, "JOIN #testroom")
        self.h.say(self.bob, "JOIN #testroom")
        self.h.lines(self.bob)
        self.h.say(boss, "TOPIC #testroom :\x0304,01red\x0f topic")
        self.assertEqual(self.h.lines(self.bob),
                         [":boss!boss@test.irc TOPIC #testroom :red topic"])
        self.h.say(boss, "PART #testroom :\x0312blue\x03 bye")
        self.assertEqual(self.h.lines(self.bob),
                         [":boss!boss@test.irc PART #testroom :blue bye"])

    def test_list(self):
        """LIST: 321, one 322 per room with its count and topic, 323."""
        self.h.say(self.bob, "JOIN #games", "LIST")
        out = self.h.lines(self.bob)[3:]
        self.assertEqual(out, [":test.irc 321 bob Channel :Users  Name",
                               ":test.irc 322 bob #games 1 :",
                               ":test.irc 322 bob #testroom 1 :",
                               ":test.irc 323 bob :End of /LIST"])

    def test_list_filter_ison_userhost_tagmsg(self):
        """LIST #a lists that one; ISON and USERHOST tell who is online (as
        irssi's notify list asks); TAGMSG (typing notices) is taken silently."""
        self.h.say(self.bob, "JOIN #games", "LIST #Games", "ISON alice ghost Bob",
                   "USERHOST alice ghost", "@+typing=active TAGMSG #games")
        out = self.h.lines(self.bob)[3:]
        self.assertEqual(out, [":test.irc 321 bob Channel :Users  Name",
                               ":test.irc 322 bob #games 1 :",
                               ":test.irc 323 bob :End of /LIST",
                               ":test.irc 303 bob :alice bob",
                               ":test.irc 302 bob :alice=+alice@test.irc"])

    def test_away_and_away_notify(self):
        """AWAY text 306, AWAY 305; IRC clients with away-notify in a shared
        channel see `AWAY :text` and `AWAY`, others see nothing; one who joins
        while away is shown away right after the JOIN."""
        carol = self.h.irc_login("carol", caps="away-notify")
        dave = self.h.irc_login("dave")
        for proto in (self.bob, carol, dave):
            self.h.say(proto, "JOIN #testroom")
        for proto in (self.bob, carol, dave):
            self.h.lines(proto)
        self.h.say(self.bob, "AWAY :brb", "AWAY")
        self.assertEqual(numerics(self.h.lines(self.bob)), ["306", "305"])
        self.assertEqual(self.h.lines(carol), [":bob!bob@test.irc AWAY :brb",
                                               ":bob!bob@test.irc AWAY"])
        self.assertEqual(self.h.lines(dave), [])
        self.h.say(self.bob, "AWAY :gone", "JOIN #games")
        self.h.say(carol, "JOIN #games")
        self.h.lines(carol)
        self.h.say(self.bob, "PART #games", "JOIN #games")
        self.assertEqual(self.h.lines(carol), [":bob!bob@test.irc PART #games :",
                                               ":bob!bob@test.irc JOIN #games",
                                               ":bob!bob@test.irc AWAY :gone"])

    def test_quit(self):
        """QUIT: ERROR to the client, closed; the room hears it left, with the reason."""
        carol = self.h.irc_login("carol")
        for proto in (self.bob, carol):
            self.h.say(proto, "JOIN #testroom")
        self.h.lines(carol)
        self.h.read(self.alice)
        self.h.say(self.bob, "QUIT :bye all")
        self.assertEqual(self.h.lines(self.bob)[-1],
                         "ERROR :Closing Link: 127.0.0.1 (Quit: bye all)")
        self.assertTrue(self.closed(self.bob))
        self.assertEqual(self.h.read(self.alice), ["* bob left: bye all"])
        self.assertEqual(self.h.lines(carol), [":bob!bob@test.irc QUIT :bye all"])

    def test_mode_queries(self):
        """MODE #chan gives 324, MODE nick 221, another's modes 502, 461 without a target."""
        self.h.say(self.bob, "MODE #testroom", "MODE bob", "MODE alice", "MODE")
        self.assertEqual(numerics(self.h.lines(self.bob)), ["324", "221", "502", "461"])


class KeepaliveTests(IrcTestCase):
    harness_args = {"keepalive_idle": 60}

    def test_idle_client_pinged_then_closed(self):
        """After keepalive_idle seconds without input the server PINGs; an
        answer keeps the connection, silence as long again closes it."""
        p = self.h.irc_login("bob")
        self.h.clock.advance(59)
        self.assertEqual(self.h.lines(p), [])
        self.h.clock.advance(1)
        self.assertEqual(self.h.lines(p), ["PING :test.irc"])
        self.h.say(p, "PONG :test.irc")
        self.h.clock.advance(59)
        self.assertEqual(self.h.lines(p), [], "an answer: no PING until idle again")
        self.h.clock.advance(1)
        self.assertEqual(self.h.lines(p), ["PING :test.irc"])
        self.h.clock.advance(60)
        self.assertEqual(self.h.lines(p),
                         ["ERROR :Closing Link: 127.0.0.1 (Ping timeout: 60 seconds)"])
        self.assertTrue(self.closed(p))
        self.assertIsNone(self.h.server.get("bob"))

    def test_talking_client_never_pinged(self):
        """A client that sends something every 30 s is never pinged."""
        p = self.h.irc_login("bob")
        for _ in range(6):
            self.h.clock.advance(30)
            self.h.say(p, "LUSERS")
        self.assertNotIn("PING :test.irc", self.h.lines(p))
