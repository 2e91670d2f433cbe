"""The IRC front end at the protocol level: registration, CAP, SASL, framing."""

from __future__ import annotations

import base64

from chatd.core.store import Ban
from tests.helpers_irc import IrcTestCase, numerics, plain


class RegistrationTests(IrcTestCase):
    def test_nick_then_user(self):
        """NICK then USER registers: the client gets 001 addressed to its nick."""
        p = self.h.irc()
        self.h.say(p, "NICK bob", "USER bob 0 * :Bob")
        out = self.h.lines(p)
        self.assertEqual(out[0], ":test.irc 001 bob :Welcome to chatd, bob")
        self.assertIsNotNone(self.h.server.get("bob"))

    def test_user_then_nick(self):
        """USER then NICK registers just the same."""
        p = self.h.irc()
        self.h.say(p, "USER bob 0 * :Bob")
        self.assertEqual(self.h.lines(p), [])
        self.h.say(p, "NICK bob")
        self.assertEqual(numerics(self.h.lines(p))[0], "001")

    def test_cap_ls_holds_registration_until_cap_end(self):
        """CAP LS 302 lists the capabilities and holds registration until CAP END."""
        p = self.h.irc()
        self.h.say(p, "CAP LS 302", "NICK bob", "USER bob 0 * :Bob")
        out = self.h.lines(p)
        self.assertEqual(len(out), 1)
        self.assertTrue(out[0].startswith(":test.irc CAP * LS :"))
        offered = out[0].split(" :", 1)[1].split()
        for cap in ("server-time", "message-tags", "echo-message", "multi-prefix",
                    "away-notify", "batch", "sasl"):
            self.assertIn(cap, offered)
        self.assertIsNone(self.h.server.get("bob"))
        self.h.say(p, "CAP END")
        self.assertEqual(numerics(self.h.lines(p))[0], "001")

    def test_cap_req_ack_nak_and_list(self):
        """CAP REQ of known caps is ACKed, one unknown cap NAKs the lot; CAP LIST shows them."""
        p = self.h.irc()
        self.h.say(p, "CAP REQ :server-time echo-message", "CAP REQ :batch bogus",
                   "CAP LIST", "CAP REQ :-echo-message", "CAP LIST", "CAP BOGUS")
        self.assertEqual(self.h.lines(p), [
            ":test.irc CAP * ACK :server-time echo-message",
            ":test.irc CAP * NAK :batch bogus",
            ":test.irc CAP * LIST :echo-message server-time",
            ":test.irc CAP * ACK :-echo-message",
            ":test.irc CAP * LIST :server-time",
            ":test.irc 410 * BOGUS :Invalid CAP command",
        ])

    def test_unfinished_registration_times_out(self):
        """A client that never finishes registering (here: no CAP END) is
        closed after login_timeout with ERROR."""
        p = self.h.irc()
        self.h.say(p, "CAP LS 302", "NICK bob", "USER bob 0 * :Bob")
        self.h.lines(p)
        self.h.clock.advance(30)
        self.assertEqual(self.h.lines(p), ["ERROR :Closing Link: 127.0.0.1 (login timed out)"])
        self.assertTrue(self.closed(p))

    def test_cap_req_after_registration_changes_what_arrives(self):
        """CAP REQ :server-time once registered: the next room lines carry the tag."""
        line = self.h.login("alice")
        p = self.h.irc_login("bob")
        self.h.say(p, "JOIN #testroom")
        self.h.lines(p)
        self.h.say(p, "CAP REQ :server-time")
        self.assertEqual(self.h.lines(p), [":test.irc CAP bob ACK :server-time"])
        self.h.send(line, "hi")
        self.assertEqual(self.h.lines(p), [
            "@time=1970-01-01T00:00:00.000Z :alice!alice@test.irc PRIVMSG #testroom :hi"])

    def test_name_rules_432(self):
        """A nick breaking the name rules gets 432 and may try again."""
        p = self.h.irc()
        self.h.say(p, "NICK b@d!", "USER x 0 * :x")
        self.assertEqual(numerics(self.h.lines(p)), ["432"])
        self.h.say(p, "NICK good")
        self.assertEqual(numerics(self.h.lines(p))[0], "001")

    def test_taken_433_any_case_and_line_users(self):
        """A nick in use (any case, by an IRC or a line user) gets 433, and may try another."""
        self.h.login("alice")
        self.h.irc_login("bob")
        p = self.h.irc()
        self.h.say(p, "USER x 0 * :x", "NICK ALICE")
        self.assertEqual(numerics(self.h.lines(p)), ["433"])
        self.h.say(p, "NICK Bob")
        self.assertEqual(numerics(self.h.lines(p)), ["433"])
        self.h.say(p, "NICK carol")
        self.assertEqual(numerics(self.h.lines(p))[0], "001")

    def test_banned_name_and_address_465(self):
        """A banned name, or a banned address, gets 465 and ERROR, and is closed."""
        self.successResultOf(self.h.bans.add(Ban("mallory", "boss", "spam", 0.0)))
        p = self.h.irc()
        self.h.say(p, "NICK Mallory", "USER x 0 * :x")
        out = self.h.lines(p)
        self.assertEqual(numerics(out), ["465", "ERROR"])
        self.assertIn("you are banned: spam", out[0])
        self.assertTrue(self.closed(p))
        self.successResultOf(self.h.bans.add(
            Ban("eve", "boss", "", 0.0, address="10.0.0.9")))
        p = self.h.irc(host="10.0.0.9")
        self.h.say(p, "NICK someone", "USER x 0 * :x")
        self.assertEqual(numerics(self.h.lines(p)), ["465", "ERROR"])
        self.assertTrue(self.closed(p))

    def test_commands_before_registration_451(self):
        """Commands other than registration's before it get 451; PING is answered."""
        p = self.h.irc()
        self.h.say(p, "JOIN #testroom", "PING :tok")
        self.assertEqual(self.h.lines(p), [
            ":test.irc 451 * :You have not registered",
            ":test.irc PONG test.irc :tok"])

    def test_after_registration_462(self):
        """PASS or USER once registered gets 462, AUTHENTICATE 907 (not 421:
        the commands exist, a client must not think otherwise)."""
        p = self.h.irc_login("bob")
        self.h.say(p, "USER bob 0 * :Bob", "PASS x", "AUTHENTICATE PLAIN")
        self.assertEqual(numerics(self.h.lines(p)), ["462", "462", "907"])


class AdmissionTests(IrcTestCase):
    harness_args = {"max_per_ip": 2, "max_clients": 3}

    def test_max_per_ip_counts_line_and_irc(self):
        """IRC connections count with line connections against max_per_ip."""
        self.h.connect()
        self.h.irc()
        p = self.h.irc()
        out = self.h.lines(p)
        self.assertEqual(len(out), 1)
        self.assertTrue(out[0].startswith("ERROR :Closing Link: 127.0.0.1 ("), out)
        self.assertTrue(self.closed(p))

    def test_server_full(self):
        """Past max_clients an IRC connection gets ERROR and is closed."""
        self.h.irc(host="10.0.0.1")
        self.h.irc(host="10.0.0.2")
        self.h.connect(host="10.0.0.3")
        p = self.h.irc(host="10.0.0.4")
        self.assertEqual(numerics(self.h.lines(p)), ["ERROR"])
        self.assertTrue(self.closed(p))


class PasswordTests(IrcTestCase):
    harness_args = {"login_failures": 2}

    def test_admin_pass_right(self):
        """An admin with the right PASS is welcomed and is an operator."""
        p = self.h.irc()
        self.h.say(p, "PASS s3cret-pass", "NICK boss", "USER boss 0 * :B")
        self.assertEqual(numerics(self.h.lines(p))[0], "001")
        self.assertTrue(self.h.server.get("boss").admin)

    def test_registered_pass_right(self):
        """A registered name with the right PASS is welcomed."""
        p = self.h.irc()
        self.h.say(p, "PASS reg-pass", "NICK reggie", "USER r 0 * :R")
        self.assertEqual(numerics(self.h.lines(p))[0], "001")

    def test_no_password_464(self):
        """An admin's or a registered name without a password gets 464, ERROR, closed."""
        for nick in ("boss", "reggie"):
            p = self.h.irc()
            self.h.say(p, f"NICK {nick}", "USER x 0 * :x")
            self.assertEqual(numerics(self.h.lines(p)), ["464", "ERROR"])
            self.assertTrue(self.closed(p))

    def test_wrong_password_464_and_failure_window(self):
        """A wrong password gets 464 and ERROR and is closed; after login_failures
        of them even the right password is refused from that address."""
        for nick, password in (("boss", "nope"), ("reggie", "nope")):
            p = self.h.irc()
            self.h.say(p, f"PASS {password}", f"NICK {nick}", "USER x 0 * :x")
            out = self.h.lines(p)
            self.assertEqual(numerics(out), ["464", "ERROR"])
            self.assertNotIn("nope", "".join(out))
            self.assertTrue(self.closed(p))
            self.h.irc_close(p)
        p = self.h.irc()
        self.h.say(p, "PASS s3cret-pass", "NICK boss", "USER x 0 * :x")
        out = self.h.lines(p)
        self.assertEqual(numerics(out), ["ERROR"])
        self.assertIn("too many failed logins", out[0])
        self.assertIsNone(self.h.server.get("boss"))

    def test_sasl_plain(self):
        """SASL PLAIN: AUTHENTICATE +, 900 and 903, then the account logs in."""
        p = self.h.irc()
        self.h.say(p, "CAP LS 302", "CAP REQ :sasl", "NICK whatever", "USER x 0 * :x",
                   "AUTHENTICATE PLAIN")
        self.assertEqual(self.h.lines(p)[-1], "AUTHENTICATE +")
        self.h.say(p, "AUTHENTICATE " + plain("boss", "s3cret-pass"))
        self.assertEqual(numerics(self.h.lines(p)), ["900", "903"])
        self.h.say(p, "CAP END")
        out = self.h.lines(p)
        self.assertEqual(out[0], ":test.irc 001 boss :Welcome to chatd, boss")

    def test_sasl_wrong_password(self):
        """A wrong SASL password gets 904 at once (never 903), counts as a failed
        login, and leaves the client unauthenticated: a registered nick then
        needs a password (464, closed)."""
        p = self.h.irc()
        self.h.say(p, "CAP REQ :sasl", "NICK reggie", "USER x 0 * :x", "AUTHENTICATE PLAIN",
                   "AUTHENTICATE " + plain("reggie", "bad"))
        self.assertEqual(numerics(self.h.lines(p)), ["CAP", "AUTHENTICATE", "904"])
        self.assertTrue(self.h.gate.failures.failed("127.0.0.1"))
        self.h.say(p, "CAP END")
        self.assertEqual(numerics(self.h.lines(p))[-2:], ["464", "ERROR"])
        self.assertTrue(self.closed(p))

    def test_sasl_errors(self):
        """Malformed SASL data 904 (an account that is no valid name too), *
        aborts (906), another mechanism 908 + 904; without the sasl cap
        AUTHENTICATE fails (904)."""
        p = self.h.irc()
        self.h.say(p, "AUTHENTICATE PLAIN")
        self.assertEqual(numerics(self.h.lines(p)), ["904"])
        self.h.say(p, "CAP REQ :sasl", "AUTHENTICATE EXTERNAL")
        self.assertEqual(numerics(self.h.lines(p)), ["CAP", "908", "904"])
        self.h.say(p, "AUTHENTICATE PLAIN", "AUTHENTICATE !!notbase64")
        self.assertEqual(numerics(self.h.lines(p)), ["AUTHENTICATE", "904"])
        self.h.say(p, "AUTHENTICATE PLAIN", "AUTHENTICATE " + base64.b64encode(
            b"no-nul").decode())
        self.assertEqual(numerics(self.h.lines(p)), ["AUTHENTICATE", "904"])
        self.h.say(p, "AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("x\r\nQUIT y", "pw"))
        self.assertEqual(numerics(self.h.lines(p)), ["AUTHENTICATE", "904"])
        self.h.say(p, "AUTHENTICATE PLAIN", "AUTHENTICATE *")
        self.assertEqual(numerics(self.h.lines(p)), ["AUTHENTICATE", "906"])
        self.assertFalse(self.closed(p))


class FramingTests(IrcTestCase):
    def test_input_over_512_bytes_417_connection_kept(self):
        """A message over 512 bytes gets 417 and is not run; the connection stays."""
        p = self.h.irc_login("bob")
        self.h.say(p, "JOIN #testroom")
        self.h.lines(p)
        self.h.say(p, "PRIVMSG #testroom :" + "x" * 500)
        self.assertEqual(self.h.lines(p), [":test.irc 417 bob :Input line was too long"])
        self.assertEqual(self.h.room.members[0].name, "bob")
        self.h.say(p, "PING :still")
        self.assertEqual(numerics(self.h.lines(p)), ["PONG"])

    def test_tags_up_to_8191_bytes(self):
        """Client tags up to 8191 bytes are allowed (and ignored); more gets 417."""
        p = self.h.irc_login("bob")
        self.h.say(p, "@" + "a" * 8190 + " PING :ok")
        self.assertEqual(self.h.lines(p), [":test.irc PONG test.irc :ok"])
        self.h.say(p, "@" + "a" * 8192 + " PING :no")
        self.assertEqual(numerics(self.h.lines(p)), ["417"])

    def test_overlong_line_dropped_whole_nothing_after(self):
        """A line longer than any IRC line is dropped whole, even when its end
        arrives later, and the lines after it are still run."""
        p = self.h.irc_login("bob")
        p.dataReceived(b"PRIVMSG #x :" + b"y" * 9000)
        p.dataReceived(b"y" * 100 + b" QUIT\r\nPING :a\r\n")
        p.dataReceived(b"PRIVMSG #x :" + b"z" * 9000 + b"\r\nPING :b\r\n")
        self.assertEqual(numerics(self.h.lines(p)), ["417", "PONG", "417", "PONG"])
        self.assertFalse(self.closed(p))


class FloodTests(IrcTestCase):
    harness_args = {"flood_burst": 3, "flood_rate": 1.0, "flood_kick": 4}

    def test_lines_over_the_limit_wait_their_turn(self):
        """Lines past the burst are run later, one per 1/flood_rate seconds, in order."""
        p = self.h.irc_login("bob")
        self.h.say(p, *(f"PING :{i}" for i in range(6)))
        self.assertEqual(len(self.h.lines(p)), 3)
        self.h.clock.advance(1)
        self.assertEqual(self.h.lines(p), [":test.irc PONG test.irc :3"])
        self.h.clock.advance(2)
        self.assertEqual(len(self.h.lines(p)), 2)
        self.assertFalse(self.closed(p))

    def test_too_many_waiting_is_a_flood_kick(self):
        """More than flood_kick lines waiting: the user is kicked for flooding."""
        p = self.h.irc_login("bob")
        self.h.say(p, *(f"PING :{i}" for i in range(8)))
        out = self.h.lines(p)
        self.assertEqual(out[-1], "ERROR :Closing Link: kicked by server: flooding")
        self.assertIsNone(self.h.server.get("bob"))

    def test_flooding_before_registration(self):
        """Flooding before registration closes the connection."""
        p = self.h.irc()
        self.h.say(p, *(f"PING :{i}" for i in range(8)))
        self.assertEqual(numerics(self.h.lines(p))[-1], "ERROR")
        self.assertTrue(self.closed(p))
