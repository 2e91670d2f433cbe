"""What IRC clients receive: long lines split, tags, history batches, shared
bytes, and IRC formatting codes kept between IRC users only."""

from __future__ import annotations

from chatd.core.text import clean_keeping_formatting, strip_formatting
from tests.helpers_irc import IrcTestCase

FORMATTED = "\x02bold\x02 \x0304,12red\x03 \x1ditalic\x1d \x1funder\x1f \x16rev\x16 " \
            "\x11mono\x11 \x1estrike\x1e\x0f end"


class FormattingTextTests(IrcTestCase):
    def test_formatting_codes_kept_nothing_else(self):
        """clean_keeping_formatting keeps bold, colour, italic, underline, reverse,
        monospace, strikethrough and reset, and drops every other control:
        ESC sequences, bidi overrides, C1 controls, DEL, NUL, CR/LF, zero-width space."""
        self.assertEqual(clean_keeping_formatting(FORMATTED), FORMATTED)
        hostile = "a\x1b[2J\x1b]0;title\x07b\u202ec\u2066d\x9b31m\x85e\x7f\x00\r\nf\u200bg"
        self.assertEqual(clean_keeping_formatting(hostile), "a[2J]0;titlebcd31mef" + "g")
        self.assertEqual(clean_keeping_formatting("\x02é\u202e\x02"), "\x02é\x02")

    def test_strip_formatting(self):
        """strip_formatting removes the codes and colour numbers, nothing else."""
        self.assertEqual(strip_formatting(FORMATTED),
                         "bold red italic under rev mono strike end")
        self.assertEqual(strip_formatting("\x034x\x03,5y 12"), "x,5y 12")


class IrcWireTests(IrcTestCase):
    harness_args = {"history": 10}

    def setUp(self):
        super().setUp()
        self.alice = self.h.login("alice")

    def joined(self, nick: str, caps: str = ""):
        proto = self.h.irc_login(nick, caps=caps)
        self.h.say(proto, "JOIN #testroom")
        return proto

    def test_long_message_split_never_cutting_utf8(self):
        """A line user's message too long for one IRC line reaches IRC as
        several PRIVMSG lines of at most 512 bytes, each valid UTF-8, that
        together are the whole message."""
        bob = self.joined("bob")
        self.h.lines(bob)
        text = "é" * 300 + "🎉" * 100 + "x" * 50
        self.h.send(self.alice, text)
        raw = bob.transport.value()
        lines = raw.split(b"\r\n")[:-1]
        self.assertGreater(len(lines), 2)
        prefix = ":alice!alice@test.irc PRIVMSG #testroom :"
        got = ""
        for line in lines:
            self.assertLessEqual(len(line) + 2, 512)
            decoded = line.decode("utf-8")  # raises if a character was cut
            self.assertTrue(decoded.startswith(prefix))
            got += decoded[len(prefix):]
        self.assertEqual(got, text)

    def test_server_time_tags(self):
        """With server-time each message carries the time it was said."""
        self.h.clock.advance(1700000000.25)
        bob = self.joined("bob", caps="server-time")
        self.h.lines(bob)
        self.h.send(self.alice, "hi")
        self.assertEqual(self.h.lines(bob), [
            "@time=2023-11-14T22:13:20.250Z :alice!alice@test.irc PRIVMSG #testroom :hi"])

    def test_history_batch_only_with_batch_and_server_time(self):
        """History is replayed on JOIN as a chathistory batch with the original
        times to clients with batch and server-time, and not at all to others."""
        self.h.clock.advance(1700000000)
        self.h.send(self.alice, "first", "/me waves")
        self.h.clock.advance(60)
        bob = self.joined("bob", caps="batch server-time")
        out = self.h.lines(bob)
        self.assertEqual(out[0].split(" ", 1)[1], ":bob!bob@test.irc JOIN #testroom")
        batch = out[1].split()[1][1:]
        self.assertEqual(out[1:5], [
            f"BATCH +{batch} chathistory #testroom",
            f"@batch={batch};time=2023-11-14T22:13:20.000Z :alice!alice@test.irc"
            " PRIVMSG #testroom :first",
            f"@batch={batch};time=2023-11-14T22:13:20.000Z :alice!alice@test.irc"
            " PRIVMSG #testroom :\x01ACTION waves\x01",
            f"BATCH -{batch}"])
        for caps in ("server-time", "batch", ""):
            carol = self.joined("carol", caps=caps)
            self.assertNotIn("first", "".join(self.h.lines(carol)), caps)
            self.h.say(carol, "QUIT")
            self.h.irc_close(carol)

    def test_same_bytes_shared_per_capability_set(self):
        """IRC clients whose capabilities give the same bytes get the very same
        bytes object from the fan-out (rendered once); others get their own."""
        protos = {nick: self.joined(nick, caps=caps)
                  for nick, caps in (("bob", ""), ("carol", "message-tags echo-message"),
                                     ("dave", "server-time"))}
        self.h.clock.advance(0)
        got = {}
        for nick, proto in protos.items():
            got[nick] = []
            proto.deliver = got[nick].append
        self.h.send(self.alice, "once")
        self.assertIs(got["bob"][0], got["carol"][0])
        self.assertIsNot(got["bob"][0], got["dave"][0])
        self.assertIn(b"PRIVMSG #testroom :once", got["dave"][0])

    def test_formatting_kept_between_irc_users_only(self):
        """An IRC user's bold and colours reach other IRC users as typed (other
        controls removed); line users and history get the text without them."""
        bob = self.joined("bob")
        carol = self.joined("carol")
        self.h.lines(carol)
        self.h.read(self.alice)
        self.h.say(bob, "PRIVMSG #testroom :" + FORMATTED + "\x1b[31m!",
                   "PRIVMSG #testroom :\x01ACTION \x02jumps\x02\x01")
        self.assertEqual(self.h.lines(carol), [
            ":bob!bob@test.irc PRIVMSG #testroom :" + FORMATTED + "[31m!",
            ":bob!bob@test.irc PRIVMSG #testroom :\x01ACTION \x02jumps\x02\x01"])
        self.assertEqual(self.h.read(self.alice), [
            "<bob> bold red italic under rev mono strike end[31m!", "+ bob jumps"])
        dave = self.joined("dave", caps="batch server-time")
        history = [line for line in self.h.lines(dave) if "@batch=" in line]
        self.assertTrue(history[-2].endswith(
            ":bold red italic under rev mono strike end[31m!"), history)
        self.assertTrue(history[-1].endswith(":\x01ACTION jumps\x01"), history)

    def test_only_codes_is_no_message(self):
        """A line of nothing but formatting codes says nothing."""
        bob = self.joined("bob")
        self.h.read(self.alice)
        self.h.say(bob, "PRIVMSG #testroom :\x02\x0304\x0f")
        self.assertEqual(self.h.read(self.alice), [])


def test_an_admin_who_joins_is_shown_as_operator():
    """An admin's JOIN is followed by MODE +o, so IRC clients show them with @
    at once, not only after the next NAMES."""
    from chatd.core import events as ev
    from chatd.irc.wire import IrcFormat

    fmt = IrcFormat("test.irc")
    data = fmt.render(ev.Joined(1, 0.0, "chatd", "boss", True)).decode()
    assert data == (":boss!boss@test.irc JOIN #chatd\r\n"
                    ":test.irc MODE #chatd +o boss\r\n")
    assert "MODE" not in fmt.render(ev.Joined(2, 0.0, "chatd", "amy", False)).decode()
