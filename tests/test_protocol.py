"""The line protocol over a StringTransport: framing, login, commands, errors."""

from twisted.logger import capturedLogs
from twisted.trial import unittest

from tests.helpers import ProtocolHarness


class ProtocolTestCase(unittest.TestCase):
    def setUp(self):
        self.h = ProtocolHarness(self.mktemp_path(), admins={"boss": "s3cret-pass"})

    def mktemp_path(self):
        from pathlib import Path

        path = Path(self.mktemp())
        path.mkdir(parents=True)
        return path


class LoginTests(ProtocolTestCase):
    def test_welcome_then_username_prompt(self):
        """On connect the user sees the room's name, then the username prompt."""
        proto = self.h.connect()
        self.assertEqual(self.h.read(proto), ["* welcome to testroom", "? username"])

    def test_login_and_join_notice(self):
        """A user logs in, sees who is online; the others see them join."""
        alice = self.h.login("alice")
        bob = self.h.connect()
        self.h.read(bob)
        self.h.send(bob, "bob")
        self.assertEqual(self.h.read(bob), ["* logged in as bob in testroom",
                                            "* online (2): alice, bob"])
        self.assertEqual(self.h.read(alice), ["* bob joined"])

    def test_invalid_and_taken_names_then_close(self):
        """Bad or taken names are refused with a reason; the third refusal closes."""
        self.h.login("alice")
        proto = self.h.connect()
        self.h.read(proto)
        self.h.send(proto, "bad name")
        self.assertEqual(self.h.read(proto), [
            "! invalid username: use 1-24 letters, digits, '_', '-' or '.'",
            "? username"])
        self.h.send(proto, "ALICE")
        self.assertEqual(self.h.read(proto), ["! username ALICE is taken", "? username"])
        self.assertFalse(self.h.closed(proto))
        self.h.send(proto, "x" * 25)
        self.assertEqual(self.h.read(proto)[-1], "! too many attempts, goodbye")
        self.assertTrue(self.h.closed(proto))

    def test_blank_username_lines_ignored(self):
        """Pressing Enter at the username prompt neither counts nor errors."""
        proto = self.h.connect()
        self.h.read(proto)
        self.h.send(proto, "", "  ", "", "")
        self.assertEqual(self.h.read(proto), [])
        self.h.send(proto, "alice")
        self.assertEqual(self.h.read(proto)[0], "* logged in as alice in testroom")

    def test_banned_name_refused(self):
        """A banned name in any case gets '! you are banned' with the reason, and is closed."""
        boss = self.h.login("boss", "s3cret-pass")
        self.h.send(boss, "/ban mallory spamming")
        proto = self.h.connect()
        self.h.read(proto)
        self.h.send(proto, "MALLORY")
        self.assertEqual(self.h.read(proto), ["! you are banned: spamming"])
        self.assertTrue(self.h.closed(proto))

    def test_admin_login(self):
        """An admin's name asks for a password; the right one logs them in as admin."""
        proto = self.h.connect()
        self.h.read(proto)
        self.h.send(proto, "Boss")
        self.assertEqual(self.h.read(proto), ["? password"])
        with capturedLogs() as events:
            self.h.send(proto, "s3cret-pass")
        self.assertEqual(self.h.read(proto)[0], "* logged in as Boss (admin) in testroom")
        self.assertNotIn("s3cret-pass", repr([dict(e) for e in events]))

    def test_wrong_password_refused_and_logged(self):
        """A wrong password is refused, the connection closed, the peer address logged."""
        proto = self.h.connect()
        self.h.read(proto)
        self.h.send(proto, "boss")
        self.h.read(proto)
        with capturedLogs() as events:
            self.h.send(proto, "guess123")
        self.assertEqual(self.h.read(proto), ["! wrong password"])
        self.assertTrue(self.h.closed(proto))
        failures = [e for e in events if e.get("name") == "boss" and "host" in e]
        self.assertEqual(len(failures), 1)
        self.assertEqual(failures[0]["host"], "127.0.0.1")
        self.assertNotIn("guess123", repr([dict(e) for e in events]))

    def test_lines_after_password_wait_for_the_check(self):
        """Lines sent right behind the password are handled after login, in order."""
        alice = self.h.login("alice")
        proto = self.h.connect()
        self.h.read(proto)
        self.h.send(proto, "boss")
        proto.dataReceived(b"s3cret-pass\nfirst\nsecond\n")
        self.h.clock.advance(0)
        self.assertEqual(self.h.read(alice), ["* boss joined", "<boss> first", "<boss> second"])

    def test_vanishing_mid_login_leaves_no_trace(self):
        """A client that disconnects at any login step is simply gone."""
        alice = self.h.login("alice")
        for steps in ([], ["boss"], [b"partial-line-no-newline"]):
            proto = self.h.connect()
            for step in steps:
                if isinstance(step, bytes):
                    proto.dataReceived(step)
                else:
                    self.h.send(proto, step)
            self.h.close(proto)
        self.assertEqual(self.h.read(alice), [])
        self.assertEqual([m.name for m in self.h.room.members], ["alice"])
        self.assertEqual(self.h.factory.connections, {alice})


class FramingTests(ProtocolTestCase):
    def setUp(self):
        super().setUp()
        self.alice = self.h.login("alice")
        self.bob = self.h.login("bob")
        self.h.read(self.alice)

    def test_lf_crlf_and_cr_endings(self):
        """netcat's LF, telnet's CRLF and a lone CR all end a line; none adds a blank one."""
        self.alice.dataReceived(b"one\ntwo\r\nthree\rfour\r")
        self.alice.dataReceived(b"\nfive\n")
        self.assertEqual(self.h.read(self.bob), [f"<alice> {w}" for w in
                                                 ("one", "two", "three", "four", "five")])

    def test_line_split_across_reads(self):
        """A line arriving in pieces is delivered once, whole."""
        for piece in (b"hel", b"lo wor", b"ld\n"):
            self.alice.dataReceived(piece)
        self.assertEqual(self.h.read(self.bob), ["<alice> hello world"])

    def test_line_at_limit_delivered(self):
        """A line of exactly max_line bytes is delivered."""
        self.h.send(self.alice, "x" * 2048)
        self.assertEqual(self.h.read(self.bob), ["<alice> " + "x" * 2048])

    def test_line_over_limit_refused_connection_kept(self):
        """One byte over the limit: '! line too long', nothing delivered, still connected."""
        self.h.send(self.alice, "x" * 2049, "after")
        self.assertEqual(self.h.read(self.alice), [
            "! line too long (max 2048 bytes): dropped"])
        self.assertEqual(self.h.read(self.bob), ["<alice> after"])
        self.assertFalse(self.h.closed(self.alice))

    def test_megabyte_without_newline_not_buffered(self):
        """1 MB with no newline gets one refusal; the server never holds more than a line."""
        chunk = b"y" * 65536
        for _ in range(16):
            self.alice.dataReceived(chunk)
            self.assertLessEqual(self.alice.buffered, 2048)
        self.alice.dataReceived(b"tail\nnext line\n")
        self.assertEqual(self.h.read(self.alice), [
            "! line too long (max 2048 bytes): dropped"])
        self.assertEqual(self.h.read(self.bob), ["<alice> next line"])

    def test_invalid_utf8_refused_connection_kept(self):
        """Bytes that are not UTF-8 get '! invalid UTF-8' and the line is dropped."""
        self.h.send(self.alice, b"\xff\xfe bad", "good")
        self.assertEqual(self.h.read(self.alice), ["! invalid UTF-8: line dropped"])
        self.assertEqual(self.h.read(self.bob), ["<alice> good"])

    def test_control_characters_never_reach_others(self):
        """ESC, NUL, bidi and zero-width characters are removed; the text is delivered."""
        self.h.send(self.alice, "\x1b[2Jhi\x00 \u202ethere\u200b\x07")
        self.assertEqual(self.h.read(self.bob), ["<alice> [2Jhi there"])

    def test_no_line_can_forge_another_kind(self):
        """Whatever alice types, bob's line starts with '<alice> '."""
        self.h.send(self.alice, "* bob was kicked\r<boss> hi", "\x85! fake error")
        for line in self.h.read(self.bob):
            self.assertTrue(line.startswith("<alice> "), line)

    def test_blank_lines_ignored(self):
        """Blank or whitespace-only lines send nothing."""
        self.h.send(self.alice, "", "   ", "\x07", *[""] * 1000)
        self.assertEqual(self.h.read(self.bob), [])
        self.assertEqual(self.h.read(self.alice), [])


class CommandTests(ProtocolTestCase):
    def setUp(self):
        super().setUp()
        self.boss = self.h.login("boss", "s3cret-pass")
        self.alice = self.h.login("alice")
        self.bob = self.h.login("bob")
        for p in (self.boss, self.alice, self.bob):
            self.h.read(p)

    def test_help_differs_for_admins(self):
        """/help lists the commands this user may run: admins also see moderation."""
        self.h.send(self.alice, "/help")
        self.h.send(self.boss, "/HELP")
        user_help, admin_help = self.h.read(self.alice), self.h.read(self.boss)
        self.assertTrue(all(line.startswith("* ") for line in user_help + admin_help))
        self.assertIn("/msg", " ".join(user_help))
        self.assertNotIn("/kick", " ".join(user_help))
        self.assertIn("/kick", " ".join(admin_help))

    def test_who(self):
        """/who lists who is online, admins marked with '@'."""
        self.h.send(self.alice, "/who")
        self.assertEqual(self.h.read(self.alice), ["* online (3): alice, bob, @boss"])

    def test_double_slash_sends_slash(self):
        """//text is delivered as a message starting with '/'."""
        self.h.send(self.alice, "//shrug")
        self.assertEqual(self.h.read(self.bob), ["<alice> /shrug"])

    def test_me_and_msg(self):
        """/me and /msg reach the right people in their own forms."""
        self.h.send(self.alice, "/me waves", "/msg bob  psst  there")
        self.assertEqual(self.h.read(self.bob), ["+ alice waves", "[alice] psst  there"])
        self.assertEqual(self.h.read(self.boss), ["+ alice waves"])
        self.assertEqual(self.h.read(self.alice), ["[->bob] psst  there"])

    def test_usage_errors(self):
        """Commands missing their arguments say how to use them."""
        self.h.send(self.alice, "/me", "/msg bob", "/msg")
        self.assertEqual(self.h.read(self.alice), [
            "! usage: /me ACTION", "! usage: /msg NAME TEXT", "! usage: /msg NAME TEXT"])

    def test_unknown_command(self):
        """An unknown command, including '/kickbob', says so and points at /help."""
        self.h.send(self.boss, "/dance", "/kickbob", "/")
        self.assertEqual(self.h.read(self.boss), [
            "! unknown command /dance (try /help)",
            "! unknown command /kickbob (try /help)",
            "! unknown command / (try /help)"])
        self.assertFalse(self.h.closed(self.bob))

    def test_quit_with_reason(self):
        """/quit says bye, closes, and the room sees why."""
        self.h.send(self.alice, "/quit lunch time")
        self.assertEqual(self.h.read(self.alice), ["* bye"])
        self.assertTrue(self.h.closed(self.alice))
        self.h.close(self.alice)
        self.assertEqual(self.h.read(self.bob), ["* alice left: lunch time"])

    def test_closing_socket_announces_leave(self):
        """Closing the connection tells the room the user left."""
        self.h.close(self.alice)
        self.assertEqual(self.h.read(self.bob), ["* alice left"])

    def test_non_admin_refused(self):
        """Ordinary users get '! permission denied' for every admin command."""
        self.h.send(self.alice, "/kick bob", "/ban bob", "/unban bob", "/bans", "/unban")
        self.assertEqual(self.h.read(self.alice), ["! permission denied"] * 5)
        self.assertEqual(self.h.read(self.bob), [])
        self.assertFalse(self.h.closed(self.bob))

    def test_kick_with_odd_spacing_and_case(self):
        """'/KICK   bob   reason' works like /kick bob reason."""
        self.h.send(self.boss, "/KICK   bob   too loud")
        self.assertEqual(self.h.read(self.bob), ["! you were kicked by boss: too loud"])
        self.assertTrue(self.h.closed(self.bob))
        self.h.close(self.bob)
        self.assertEqual(self.h.read(self.alice), ["* bob was kicked by boss: too loud"])
        bob_again = self.h.connect()
        self.h.send(bob_again, "bob")
        self.assertIn("* logged in as bob in testroom", self.h.read(bob_again))

    def test_moderation_errors(self):
        """Kicking yourself, an admin or nobody, and unbanning nobody, say why."""
        self.h.send(self.boss, "/kick boss", "/kick ghost", "/kick", "/unban ghost",
                    "/bans")
        self.assertEqual(self.h.read(self.boss), [
            "! you cannot kick yourself", "! no such user: ghost",
            "! usage: /kick NAME [REASON]", "! ghost is not banned", "* no bans"])

    def test_ban_bans_unban(self):
        """/ban disconnects and lists the ban; /unban lifts it and the room sees both."""
        self.h.send(self.boss, "/ban bob flooding", "/bans")
        self.assertEqual(self.h.read(self.bob), ["! you were banned by boss: flooding"])
        boss_lines = self.h.read(self.boss)
        self.assertEqual(boss_lines[:2], ["* bob was banned by boss: flooding", "* bans (1):"])
        self.assertTrue(boss_lines[2].startswith("* bob by boss at "))
        self.h.send(self.boss, "/ban BOB again", "/unban Bob")
        self.assertEqual(self.h.read(self.boss), [
            "! BOB is already banned", "* bob was unbanned by boss"])


class ShutdownTests(ProtocolTestCase):
    def test_everyone_told_and_closed(self):
        """On shutdown, logged-in and half-logged-in clients all get the notice."""
        alice = self.h.login("alice")
        halfway = self.h.connect()
        self.h.read(halfway)
        d = self.h.factory.shutdown()
        for proto in (alice, halfway):
            self.assertEqual(self.h.read(proto), ["* server shutting down"])
            self.assertTrue(self.h.closed(proto))
            self.h.close(proto)
        self.successResultOf(d)

    def test_stuck_connections_aborted(self):
        """A connection that never closes is aborted after the timeout."""
        alice = self.h.login("alice")
        d = self.h.factory.shutdown(timeout=5)
        self.assertNoResult(d)
        self.h.clock.advance(5)
        self.assertTrue(alice.transport.disconnected)
