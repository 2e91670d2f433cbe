"""Hostile input against a real `twistd -n chatd`, over real loopback sockets.

Each case asserts what the offender gets (a documented `! ` line, or for
control and invisible characters the line delivered without them) and that
everyone else keeps chatting (docs/protocol.md, "Lines" and "Limits").  Every
line any client reads is also checked by tests.helpers_hostile.Client: UTF-8,
CRLF, a known kind, no control or format character.

Limits are set small per test class, so each one is shown working.  A test
class shares one server between its tests unless `shared` is False.
"""

from __future__ import annotations

import atexit
import itertools
import shutil
import signal
import socket
import struct
import tempfile
import time
from pathlib import Path

from twisted.trial import unittest

from tests.helpers_hostile import ADMIN, ADMIN_PASSWORD, DEADLINE, Client, Server, wait_for

_SHARED: list[Server] = []


@atexit.register
def _stop_shared() -> None:
    """Trial has no tearDownClass: shared servers stop when the run ends."""
    for server in _SHARED:
        server.kill()
        shutil.rmtree(server.dir, ignore_errors=True)


class ServerTestCase(unittest.TestCase):
    """Tests against one real server; clients are closed after each test."""

    limits: dict = {}
    shared = True
    _names = itertools.count()

    @classmethod
    def tearDownClass(cls):
        """Under pytest the shared server stops with its class."""
        server = cls.__dict__.get("_server")
        if server is not None:
            server.kill()
            shutil.rmtree(server.dir, ignore_errors=True)
            _SHARED.remove(server)
            cls._server = None

    def setUp(self):
        if not self.shared:
            self.server = Server(Path(self.mktemp()).resolve(), **self.limits).start()
            self.addCleanup(self._stop_server)
        else:
            cls = type(self)
            if cls.__dict__.get("_server") is None:
                directory = Path(tempfile.mkdtemp(prefix="chatd-hostile-"))
                cls._server = Server(directory, **self.limits).start()
                _SHARED.append(cls._server)
            self.server = cls._server
        self.log_start = len(self.server.log())
        self.clients: list[Client] = []
        self.addCleanup(self._check_server)

    def _stop_server(self):
        """A server of its own is stopped with SIGTERM, which must end it, promptly."""
        stopped = self.server.proc is not None
        status = self.server.kill()
        if stopped:
            # twistd ends by re-raising the signal once it has shut down cleanly.
            self.assertIn(status, (0, -signal.SIGTERM), "chatd did not exit on SIGTERM "
                          "within 7 s:\n" + self.server.log()[-2000:])

    def _check_server(self):
        for client in self.clients:
            client.close()
        self.assertIsNotNone(self.server.proc, "server stopped during the test")
        self.assertIsNone(self.server.proc.poll(), "the server died:\n" + self.server.log())
        new = self.server.log()[self.log_start:]
        self.assertNotIn("Traceback", new)
        self.assertNotIn("Unhandled", new)

    def name(self, stem: str) -> str:
        """A name no other test on this server uses."""
        return f"{stem}{next(self._names)}"

    def connect(self, source: str = "127.0.0.1", rcvbuf: int | None = None) -> Client:
        client = self.server.connect(source, rcvbuf)
        self.clients.append(client)
        return client

    def login(self, name: str, password: str | None = None, source: str = "127.0.0.1",
              rcvbuf: int | None = None) -> Client:
        client = self.server.login(name, password, source, rcvbuf)
        self.clients.append(client)
        return client

    def at_password_prompt(self) -> Client:
        """A connection at `? password` for the admin, once an earlier test's admin has gone."""

        def attempt():
            client = self.connect()
            client.until("? username")
            client.say(ADMIN)
            if client.line() == "? password":
                return client
            client.close()  # still taken by the previous test's connection
            return None

        return wait_for(attempt, "the admin name to be free")

    def admin(self) -> Client:
        """The admin, logged in."""
        client = self.at_password_prompt()
        client.say(ADMIN_PASSWORD)
        client.until("* online")
        return client

    def pair(self) -> tuple[Client, Client, str, str]:
        """An offender and a witness in the room, each past the other's joining."""
        witness_name, offender_name = self.name("w"), self.name("o")
        witness = self.login(witness_name)
        offender = self.login(offender_name)
        witness.until(f"* {offender_name} joined")
        return offender, witness, offender_name, witness_name

    def assertStillChatting(self, speaker: Client, speaker_name: str, *listeners: Client,
                            notices: bool = True, allowed: str = r"^\* \S+ (joined|left)$"):
        """speaker's next plain line reaches every listener as the next thing they get
        (after join and leave notices only, with notices=True)."""
        token = f"still chatting {time.monotonic_ns()}"
        speaker.say(token)
        for listener in listeners:
            lines = listener.upto(f"<{speaker_name}> {token}") if notices else [listener.line()]
            self.assertEqual(lines[-1], f"<{speaker_name}> {token}")
            for line in lines[:-1]:
                self.assertRegex(line, allowed)

    def assertRefused(self, client: Client, *lines: str):
        """The server says exactly these lines to client, then closes it."""
        self.assertEqual(client.rest(), list(lines))


class LineFramingTests(ServerTestCase):
    """max_line, UTF-8, line endings, control and invisible characters."""

    limits = {"max_line": 256, "sendq": 64 * 1024}
    TOO_LONG = "! line too long (max 256 bytes): dropped"

    def test_line_exactly_at_limit_delivered(self):
        """A line of exactly max_line bytes (multi-byte UTF-8, CRLF or split) is delivered whole."""
        offender, witness, name, _ = self.pair()
        at_limit = "é" * 128  # 256 bytes
        offender.send(at_limit.encode() + b"\r\n")
        offender.send(("x" * 200).encode())
        offender.send(("y" * 56).encode() + b"\r")
        offender.send(b"\n")
        self.assertEqual(offender.sync(), [])
        self.assertEqual(witness.line(), f"<{name}> {at_limit}")
        self.assertEqual(witness.line(), f"<{name}> {'x' * 200}{'y' * 56}")
        self.assertStillChatting(offender, name, witness)

    def test_line_one_over_limit_refused(self):
        """max_line + 1 bytes gets `! line too long`, is not delivered; the connection stays."""
        offender, witness, name, wname = self.pair()
        offender.send(("é" * 128 + "x").encode() + b"\n")
        offender.send(b"a" * 200)
        offender.send(b"b" * 57 + b"\r\n")
        self.assertEqual(offender.sync(), [self.TOO_LONG, self.TOO_LONG])
        self.assertStillChatting(witness, wname, offender)
        self.assertStillChatting(offender, name, witness)

    def test_megabyte_without_newline(self):
        """1 MB with no newline: one `! line too long`, all discarded; others chat meanwhile."""
        offender, witness, name, wname = self.pair()
        third_name = self.name("t")
        third = self.login(third_name)
        witness.until(f"* {third_name} joined")
        offender.until(f"* {third_name} joined")
        chunk = b"A" * 65536
        for _ in range(8):
            offender.send(chunk)
        self.assertEqual(offender.line(), self.TOO_LONG)
        self.assertStillChatting(witness, wname, offender)
        for _ in range(8):
            offender.send(chunk)
        offender.send(b"still the same line\n")
        self.assertEqual(offender.sync(), [])
        self.assertStillChatting(offender, name, witness)
        seen = third.upto(f"<{name}> still chatting")
        self.assertEqual(len(seen), 2, seen)
        self.assertTrue(seen[0].startswith(f"<{wname}> still chatting"), seen)

    def test_long_line_at_login_prompt(self):
        """A 10 KB username gets `! line too long`, and a proper name still logs in."""
        client = self.connect()
        client.until("? username")
        client.send(b"n" * 10240 + b"\n")
        self.assertEqual(client.line(), self.TOO_LONG)
        name = self.name("u")
        client.say(name)
        self.assertEqual(client.line(), f"* logged in as {name} in chatd")

    def test_hostile_lines_at_password_prompt(self):
        """At `? password`, a too-long or non-UTF-8 line is refused and the prompt stays."""
        client = self.at_password_prompt()
        client.send(b"p" * 10240 + b"\n")
        self.assertEqual(client.line(), self.TOO_LONG)
        client.send(b"\xffboss-password\n")
        self.assertEqual(client.line(), "! invalid UTF-8: line dropped")
        client.say(ADMIN_PASSWORD)
        self.assertEqual(client.line(), f"* logged in as {ADMIN} (admin) in chatd")

    def test_lines_pipelined_past_the_password(self):
        """Lines sent right behind a password wait for its check: said if right, else dropped."""
        witness_name = self.name("w")
        witness = self.login(witness_name)
        guesser = self.at_password_prompt()
        guesser.send(b"wrong\nsneaky line\n/who\n")
        self.assertRefused(guesser, "! wrong password")
        admin = self.at_password_prompt()
        admin.send(f"{ADMIN_PASSWORD}\nfirst words\n".encode() + b"x" * 300 + b"\n/who\n")
        self.assertEqual(admin.line(), f"* logged in as {ADMIN} (admin) in chatd")
        self.assertEqual(admin.until("! "), self.TOO_LONG)
        self.assertRegex(admin.line(), rf"^\* online \(\d+\): .*@{ADMIN}, .*{witness_name}")
        self.assertEqual(witness.upto(f"<{ADMIN}>"), [f"* {ADMIN} joined",
                                                      f"<{ADMIN}> first words"])

    def test_overlong_name_within_line_limit(self):
        """A 200-character username is an invalid name, answered with the rule and a new prompt."""
        client = self.connect()
        client.until("? username")
        client.say("n" * 200)
        self.assertEqual(client.upto("? username"), [
            "! invalid username: use 1-24 letters, digits, '_', '-' or '.'", "? username"])

    def test_invalid_utf8(self):
        """Each non-UTF-8 line gets `! invalid UTF-8: line dropped`, at login and in the room."""
        bad = [b"\xff\xfe", b"caf\xe9", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80",
               b"\xf4\x90\x80\x80", b"ok \xe2\x82"]
        client = self.connect()
        client.until("? username")
        client.send(b"\xffname\n")
        self.assertEqual(client.line(), "! invalid UTF-8: line dropped")
        client.close()

        offender, witness, name, _ = self.pair()
        offender.send(b"".join(line + b"\n" for line in bad))
        self.assertEqual(offender.sync(), ["! invalid UTF-8: line dropped"] * len(bad))
        self.assertStillChatting(offender, name, witness)

    def test_nul_and_control_characters_removed(self):
        """NUL, BEL, BS, TAB, DEL, ESC sequences, C1 controls are removed; the rest is delivered."""
        offender, witness, name, wname = self.pair()
        cases = [
            (b"a\x00b\x00c", "abc"),
            (b"\x1b[31mred\x1b[0m text", "[31mred[0m text"),
            (b"\x1b]0;owned\x07title", "]0;ownedtitle"),
            (b"back\x08\x08\x08spaced\x7f", "backspaced"),
            (b"tab\there", "tab here"),  # a tab becomes a space
            ("c1 \u009b31m csi \u0085nel".encode(), "c1 31m csi nel"),
            (b"\x1b[2J\x1b[H clear", "[2J[H clear"),
        ]
        offender.send(b"".join(raw + b"\n" for raw, _ in cases))
        offender.send(b"\x00\x1b\x07\x7f\n")  # nothing left: a blank line, ignored
        offender.send(b"/me \x1bwaves\x00\n")
        offender.send(f"/msg {wname} se\x1bcret\x00".encode() + b"\n")
        self.assertEqual(offender.sync(), [f"[->{wname}] secret"])
        for _, shown in cases:
            self.assertEqual(witness.line(), f"<{name}> {shown}")
        self.assertEqual(witness.line(), f"+ {name} waves")
        self.assertEqual(witness.line(), f"[{name}] secret")
        self.assertStillChatting(offender, name, witness)

    def test_bidi_and_zero_width_removed(self):
        """Bidi controls, zero-width characters, soft hyphen, BOM and separators are removed."""
        offender, witness, name, _ = self.pair()
        cases = [
            ("\u202eevil\u202c txt", "evil txt"),
            ("\u2066iso\u2069 \u2067late\u2069 \u2068fsi\u2069", "iso late fsi"),
            ("z\u200bero wi\u2060dth", "zero width"),
            ("\ufeffbom soft\u00adhyphen", "bom softhyphen"),
            ("line\u2028sep para\u2029sep", "linesep parasep"),
            ("\u200e\u200fmarks \u061c", "marks "),
            ("emoji 👍🏽 and é stay", "emoji 👍🏽 and é stay"),
        ]
        offender.send(b"".join(raw.encode() + b"\n" for raw, _ in cases))
        offender.send("\u200b\u202e\ufeff\n".encode())  # nothing visible: ignored
        self.assertEqual(offender.sync(), [])
        for _, shown in cases:
            self.assertEqual(witness.line(), f"<{name}> {shown}")
        self.assertStillChatting(offender, name, witness)

    def test_joiners_and_emoji_tags_arrive_unchanged(self):
        """Persian with ZWNJ, a ZWJ family emoji and a tag-sequence flag reach
        another user byte for byte; joiners alone are an ignored blank line."""
        offender, witness, name, _ = self.pair()
        texts = [
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
            "\U0001f468\u200d\U0001f469\u200d\U0001f467",
            "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
        ]
        offender.send(b"".join(text.encode() + b"\n" for text in texts))
        offender.send("\u200d\u200c\n".encode())
        self.assertEqual(offender.sync(), [])
        for text in texts:
            self.assertEqual(witness.line(), f"<{name}> {text}")
        self.assertStillChatting(offender, name, witness)

    def test_cr_only_and_mixed_endings(self):
        """Lone CR ends a line; CRLF split across packets is one ending, not an extra blank line."""
        offender, witness, name, _ = self.pair()
        offender.send(b"one\rtwo\rthree\r")
        offender.send(b"\nfour\n\r\nfive\r")
        offender.send(b"\n")
        offender.send(b"six\r\r\n\n\rseven\r\n")
        self.assertEqual(offender.sync(), [])
        for word in ["one", "two", "three", "four", "five", "six", "seven"]:
            self.assertEqual(witness.line(), f"<{name}> {word}")
        self.assertStillChatting(offender, name, witness)

    def test_thousands_of_blank_lines(self):
        """Thousands of blank and white-space lines, at login and in the room, produce no output."""
        client = self.connect()
        self.assertEqual(client.upto("? username"), ["* welcome to chatd", "? username"])
        client.send(b"\n" * 3000 + b"\r\n" * 1000 + b"\r" * 1000 + b"  \t \n" * 500)
        name = self.name("b")
        client.say(name)
        self.assertEqual(client.line(), f"* logged in as {name} in chatd")

        offender, witness, oname, _ = self.pair()
        offender.send(b"\n" * 5000 + b"\r\n" * 2000 + b"   \n" * 1000 + b"\r" * 1000)
        self.assertEqual(offender.sync(), [])
        self.assertStillChatting(offender, oname, witness)

    def test_huge_username_default_limit(self):
        """A 10 KB username with nothing else is refused as too long, never taken as a name."""
        client = self.connect()
        client.until("? username")
        client.send(("ü" * 5120).encode() + b"\r\n")
        self.assertEqual(client.line(), self.TOO_LONG)
        client.say("/who")
        self.assertEqual(client.upto("? username"), [
            "! invalid username: use 1-24 letters, digits, '_', '-' or '.'", "? username"])

    def test_control_characters_in_usernames(self):
        """Invisible characters in a username are removed before it is checked; ESC[ is invalid."""
        client = self.connect()
        client.until("? username")
        client.send(b"\x1b[2Jmallory\n")
        self.assertEqual(client.upto("? username")[0],
                         "! invalid username: use 1-24 letters, digits, '_', '-' or '.'")
        name = self.name("zw")
        client.send(f"\u200b{name[:1]}\u202e{name[1:]}\ufeff".encode() + b"\n")
        self.assertEqual(client.line(), f"* logged in as {name} in chatd")

    def test_odd_command_spacing_and_case(self):
        """`/kick  bob` and `/KICK bob` kick, `/kickbob` is unknown: case and spacing are free."""
        boss = self.admin()
        names = [self.name("v") for _ in range(3)]
        victims = [self.login(n) for n in names]
        watcher_name = self.name("watch")
        watcher = self.login(watcher_name)
        boss.until(f"* {watcher_name} joined")

        boss.say(f"/kickbob {names[0]}")
        self.assertEqual(boss.line(), "! unknown command /kickbob (try /help)")
        boss.say(f"/kick{names[0]}")
        self.assertEqual(boss.line(), f"! unknown command /kick{names[0]} (try /help)")
        for cmd in ["/", "/ ", "/__class__", "/_command x", "/cmd_kick x", "/-ip x", "/1"]:
            boss.say(cmd)
            shown = cmd[1:].split(" ")[0]
            self.assertEqual(boss.line(), f"! unknown command /{shown} (try /help)")

        boss.say(f"/kick  {names[0]}")
        self.assertEqual(victims[0].until("! "), f"! you were kicked by {ADMIN}")
        self.assertEqual(watcher.until("* "), f"* {names[0]} was kicked by {ADMIN}")
        boss.say(f"/KICK {names[1].upper()}")
        self.assertEqual(victims[1].until("! "), f"! you were kicked by {ADMIN}")
        self.assertEqual(watcher.until("* "), f"* {names[1]} was kicked by {ADMIN}")
        boss.say(f"/Kick   {names[2]}    be   nice  ")
        self.assertEqual(victims[2].until("! "), f"! you were kicked by {ADMIN}: be   nice")
        self.assertEqual(watcher.until("* "), f"* {names[2]} was kicked by {ADMIN}: be   nice")
        for victim in victims:
            self.assertEqual(victim.rest(), [])

        watcher.say("/WHO", "/Me   stretches", f"/MSG   {ADMIN}    hi   there", f"/kick {ADMIN}")
        self.assertEqual(watcher.line(), f"* online (2): @{ADMIN}, {watcher_name}")
        self.assertEqual(watcher.line(), f"[->{ADMIN}] hi   there")
        self.assertEqual(watcher.line(), "! permission denied")
        self.assertEqual(boss.until("+ "), f"+ {watcher_name} stretches")
        self.assertEqual(boss.line(), f"[{watcher_name}] hi   there")
        self.assertStillChatting(boss, ADMIN, watcher)

    def test_leading_space_is_not_a_command(self):
        """A line whose first character is not `/` is said, even if a `/` follows white space."""
        offender, witness, name, _ = self.pair()
        offender.say("  /quit", "//quit")
        self.assertEqual(offender.sync(), [])
        self.assertEqual(witness.line(), f"<{name}>   /quit")
        self.assertEqual(witness.line(), f"<{name}> /quit")

    def test_disconnect_at_every_login_step(self):
        """Vanishing at any login step (even with a reset) leaves no member; the room chats on."""
        alice_name, bob_name = self.name("al"), self.name("bo")
        alice, bob = self.login(alice_name), self.login(bob_name)
        alice.until(f"* {bob_name} joined")
        ghosts = [self.name("g") for _ in range(4)]
        steps = [
            (b"", None),
            (None, "? username"),
            (b"half a na", "? username"),
            (b"bad name!\n", "! invalid username"),
            (b"\xff\n", "! invalid UTF-8"),
            (f"{ADMIN}\n".encode(), "? password"),
            (f"{ADMIN}\nhalf a pass".encode(), "? password"),
            (f"{ADMIN}\nwrong\n".encode(), None),
            (f"{ADMIN}\n{ADMIN_PASSWORD}\n".encode(), None),
            (f"{ghosts[0]}\n".encode(), None),
            (f"{ghosts[1]}\n".encode(), "* online"),
            (f"{ghosts[2]}\nhello from a ghost\nhalf a li".encode(), "* online"),
            (f"{ghosts[3]}\n/quit\n".encode(), None),
        ]
        for reset in (False, True):
            for data, reply in steps:
                ghost = self.connect()
                if reply is not None:
                    ghost.until("* welcome")
                if data:
                    ghost.send(data)
                if reply is not None:
                    ghost.until(reply)
                if reset:
                    ghost.reset()
                else:
                    ghost.close()
        expected = sorted([alice_name, bob_name])

        def settled():
            alice.say("/who")
            return alice.until("* online (") == f"* online (2): {', '.join(expected)}"

        wait_for(settled, "every ghost to be gone")
        ghostly = r"^(\* \S+ (joined|left)|<g\d+> hello from a ghost)$"
        self.assertStillChatting(bob, bob_name, alice, allowed=ghostly)
        self.assertStillChatting(alice, alice_name, bob, allowed=ghostly)
        self.login(ghosts[1])  # the names of those who vanished are free again
        self.admin()

    def test_reader_that_never_reads(self):
        """A client that never reads is cut off past sendq; the room is told and keeps chatting."""
        lazy_name, talker_name, reader_name = self.name("lazy"), self.name("tk"), self.name("rd")
        self.login(lazy_name, rcvbuf=4096)  # and never read from again
        reader = self.login(reader_name)
        talker = self.login(talker_name)
        reader.until(f"* {talker_name} joined")
        body = "z" * 200
        end = time.monotonic() + 20
        sent = 0
        left = None
        while left is None:
            self.assertLess(time.monotonic(), end, "the non-reader was never cut off")
            self.assertLess(sent, 16 * 1024 * 1024, "the non-reader was never cut off")
            batch = [f"{sent}-{i} {body}" for i in range(50)]
            talker.say(*batch)
            sent += 50 * 210
            for expected in batch:
                line = reader.line()
                if line == f"* {lazy_name} left (send queue exceeded)":
                    left = line
                    line = reader.line()
                self.assertEqual(line, f"<{talker_name}> {expected}")
        self.assertStillChatting(talker, talker_name, reader)
        reader.say("/who")
        self.assertEqual(reader.until("* online"),
                         f"* online (2): {', '.join(sorted([reader_name, talker_name]))}")


class FloodTests(ServerTestCase):
    """flood_burst, flood_rate, flood_kick."""

    limits = {"flood_burst": 5, "flood_rate": 2.0, "flood_kick": 10, "flood_kick_window": 30}

    def test_burst_then_slow_down(self):
        """8 lines at once: 5 delivered, 3 get `! slow down`; blank lines do not count."""
        offender, witness, name, wname = self.pair()
        offender.send(b"\n" * 100 + b"".join(f"line {i}\n".encode() for i in range(8)))
        self.assertEqual([offender.line() for _ in range(3)], ["! slow down"] * 3)
        for i in range(5):
            self.assertEqual(witness.line(), f"<{name}> line {i}")
        self.assertStillChatting(witness, wname, offender)
        witness.say("/who")
        self.assertEqual(witness.line()[:10], "* online (")

    def test_flooder_kicked(self):
        """20 lines at once: 5 delivered, 10 `! slow down`, then a kick the room sees."""
        offender, witness, name, wname = self.pair()
        third_name = self.name("t")
        third = self.login(third_name)
        witness.until(f"* {third_name} joined")
        offender.send(b"".join(f"spam {i}\n".encode() for i in range(20)))
        self.assertEqual(offender.upto("! you were")[-11:],
                         ["! slow down"] * 10 + ["! you were kicked by server: flooding"])
        self.assertEqual(offender.rest(), [])
        got = witness.upto(f"* {name} was")
        self.assertEqual(got, [f"<{name}> spam {i}" for i in range(5)]
                         + [f"* {name} was kicked by server: flooding"])
        self.assertEqual(third.until(f"* {name} was"), f"* {name} was kicked by server: flooding")
        self.assertStillChatting(witness, wname, third)
        self.assertStillChatting(third, third_name, witness)
        back = self.login(name)
        self.assertStillChatting(back, name, witness, third)


    def test_rate_refills_the_bucket(self):
        """Once the burst is spent, lines go through again at flood_rate (2 a second)."""
        offender, witness, name, _ = self.pair()
        offender.send(b"".join(f"burst {i}\n".encode() for i in range(6)))
        self.assertEqual(offender.line(), "! slow down")
        self.assertEqual(witness.upto(f"<{name}> burst 4")[-1], f"<{name}> burst 4")
        started, probes = time.monotonic(), []

        def probe_delivered():
            probes.append(f"probe {len(probes)}")
            offender.say(probes[-1])
            try:
                self.assertEqual(offender.line(timeout=0.25), "! slow down")
            except TimeoutError:  # no refusal: it went through
                return True
            try:  # refused: nothing else comes for a while (and the bucket refills)
                self.fail(f"unexpected {offender.line(timeout=0.25)!r}")
            except TimeoutError:
                return False

        wait_for(probe_delivered, "a line to be let through again", timeout=3)
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertEqual(witness.line(), f"<{name}> {probes[-1]}")


    def test_invalid_lines_count_too(self):
        """Lines that are not UTF-8 or too long cost a token too: 5 answers, then `! slow down`."""
        offender, witness, name, wname = self.pair()
        offender.send(b"\xff\n" * 3 + b"x" * 3000 + b"\n" + b"\xfe\n" * 4)
        self.assertEqual([offender.line() for _ in range(8)],
                         ["! invalid UTF-8: line dropped"] * 3
                         + ["! line too long (max 2048 bytes): dropped"]
                         + ["! invalid UTF-8: line dropped"] + ["! slow down"] * 3)
        self.assertStillChatting(witness, wname, offender)

    def test_flooding_before_login(self):
        """20 bad lines at the username prompt: 5 answers, 10 `! slow down`, then closed."""
        watcher_name = self.name("w")
        watcher = self.login(watcher_name)
        client = self.connect()
        client.until("? username")
        client.send(b"\xff\n" * 20)
        self.assertEqual(client.rest(), ["! invalid UTF-8: line dropped"] * 5
                         + ["! slow down"] * 10 + ["! you were kicked by server: flooding"])
        other_name = self.name("o")
        other = self.login(other_name)
        self.assertEqual(watcher.line(), f"* {other_name} joined")
        self.assertStillChatting(other, other_name, watcher)


class LoginTimeoutTests(ServerTestCase):
    """login_timeout."""

    limits = {"login_timeout": 2}

    def test_idle_connections_timed_out(self):
        """Idle at the username prompt, mid-name or at `? password`: `! login timed out`, closed."""
        member_name = self.name("m")
        member = self.login(member_name)
        idle, partial, password = self.connect(), self.connect(), self.connect()
        partial.until("? username")
        partial.send(b"half a na")
        password.until("? username")
        password.say(ADMIN)
        password.until("? password")
        started = time.monotonic()
        self.assertEqual(idle.rest(timeout=5), ["* welcome to chatd", "? username",
                                                "! login timed out"])
        self.assertGreater(time.monotonic() - started, 1.0)
        self.assertEqual(partial.rest(timeout=5), ["! login timed out"])
        self.assertEqual(password.rest(timeout=5), ["! login timed out"])
        other = self.login(self.name("o"))
        self.assertStillChatting(member, member_name, other)


class ConnectionLimitTests(ServerTestCase):
    """max_per_ip, max_clients, and connection churn; a fresh server per test."""

    shared = False
    limits = {"max_per_ip": 3, "max_clients": 6}

    def admitted(self, source: str) -> Client | None:
        """A new connection from source, if it gets the welcome (else None, closed)."""
        client = self.connect(source)
        first = client.line()
        if first == "* welcome to chatd":
            return client
        self.assertEqual(client.rest(), [])
        client.close()
        return None

    def test_max_per_ip(self):
        """The 4th connection from one address is refused; other addresses are not affected."""
        logged_in = self.login("alice", source="127.0.0.20")
        waiting = [self.connect("127.0.0.20"), self.connect("127.0.0.20")]
        for client in waiting:
            client.until("? username")
        over = self.connect("127.0.0.20")
        self.assertRefused(over, "! too many connections from your address")
        bob = self.login("bob", source="127.0.0.21")
        self.assertStillChatting(logged_in, "alice", bob)
        waiting[0].close()
        wait_for(lambda: self.admitted("127.0.0.20"), "a place for 127.0.0.20")

    def test_max_clients(self):
        """Over max_clients, any address gets `! server full`; a place freed is taken again."""
        alice = self.login("alice", source="127.0.0.22")
        bob = self.login("bob", source="127.0.0.23")
        rest = [self.connect(src) for src in ("127.0.0.22", "127.0.0.23", "127.0.0.24",
                                               "127.0.0.24")]
        for client in rest:
            client.until("? username")
        self.assertRefused(self.connect("127.0.0.25"), "! server full")
        self.assertRefused(self.connect("127.0.0.22"), "! server full")
        self.assertStillChatting(alice, "alice", bob)
        rest[0].close()
        wait_for(lambda: self.admitted("127.0.0.26"), "a free place")

class ChurnTests(ServerTestCase):
    """Connection churn against limits low enough that a leaked place would show."""

    shared = False
    limits = {"max_per_ip": 30, "max_clients": 60}

    def all_admitted(self, sources: list[str]) -> bool:
        """True if a connection from each of sources (at once) gets the welcome."""
        clients = [self.server.connect(source) for source in sources]
        try:
            return all(client.line() == "* welcome to chatd" for client in clients)
        finally:
            for client in clients:
                client.close()

    def test_connection_churn(self):
        """Hundreds of connections opened and dropped every way: no place leaks, chat goes on."""
        alice = self.login("alice", source="127.0.0.30")
        bob = self.login("bob", source="127.0.0.31")
        end = time.monotonic() + 20
        for i in range(400):
            self.assertLess(time.monotonic(), end, "churn took too long")
            sock = socket.socket()
            sock.settimeout(DEADLINE)
            sock.bind((f"127.0.0.{40 + i % 10}", 0))
            sock.connect(("127.0.0.1", self.server.port))
            how = i % 5
            if how == 1:
                sock.recv(100)
            elif how == 2:
                sock.sendall(b"ghost%d\nhal" % i)
            elif how == 3:
                sock.sendall(b"\xff\xfe" * 100)
            if how in (0, 4) or i % 3 == 0:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        self.assertStillChatting(alice, "alice", bob)
        others = [f"127.0.0.{n}" for n in (40, 41, 42, 43, 45, 46, 47, 48, 49)]
        everyone = ["127.0.0.44"] * 30 + others * 3 + ["127.0.0.50"]  # max_clients with alice, bob
        wait_for(lambda: self.all_admitted(everyone),
                 "every churned connection to be released")
        alice.say("/who")
        self.assertEqual(alice.until("* online"), "* online (2): alice, bob")


class PasswordGuessingTests(ServerTestCase):
    """login_failures, login_failure_window."""

    shared = False
    limits = {"login_failures": 3, "login_failure_window": 300}
    ATTACKER, FRIEND = "127.0.0.60", "127.0.0.61"

    def test_guessing_locks_out_the_address(self):
        """3 wrong passwords shut the address out of the admin name, even with the right one."""
        for guess in ["hunter2", "password", "boss"]:
            client = self.connect(self.ATTACKER)
            client.until("? username")
            client.say(ADMIN)
            client.until("? password")
            client.say(guess)
            self.assertRefused(client, "! wrong password")
        for spelling in [ADMIN, ADMIN.upper()]:
            client = self.connect(self.ATTACKER)
            client.until("? username")
            client.send(f"{spelling}\n{ADMIN_PASSWORD}\n".encode())
            self.assertRefused(client, "! too many failed logins, try later")

        user = self.login("mallory", source=self.ATTACKER)
        boss = self.login(ADMIN, ADMIN_PASSWORD, source=self.FRIEND)
        user.until(f"* {ADMIN} joined")
        self.assertStillChatting(boss, ADMIN, user)
        log = self.server.log()
        self.assertEqual(log.count(f"failed admin login for {ADMIN} from {self.ATTACKER}"), 3)
        self.assertNotIn("hunter2", log)
        self.assertNotIn(ADMIN_PASSWORD, log)


    def test_parallel_guessing_gets_no_more_tries(self):
        """Passwords sent on 5 connections at once: 3 are checked, the others refused."""
        clients = []
        for _ in range(5):
            client = self.connect(self.ATTACKER)
            client.until("? username")
            client.say(ADMIN)
            client.until("? password")
            clients.append(client)
        for n, client in enumerate(clients):
            client.say(f"guess {n}")
        answers = sorted(line for client in clients for line in client.rest())
        self.assertEqual(answers, ["! too many failed logins, try later"] * 2
                         + ["! wrong password"] * 3)
        log = self.server.log()
        self.assertEqual(log.count(f"failed admin login for {ADMIN} from {self.ATTACKER}"), 3)


class PasswordLockoutEndsTests(ServerTestCase):
    """login_failure_window: the lockout ends by itself."""

    shared = False
    limits = {"login_failures": 2, "login_failure_window": 1.5}

    def test_lockout_ends_after_the_window(self):
        """After the window has passed since the last failure, the admin may log in again."""
        for guess in ["one", "two"]:
            client = self.connect("127.0.0.62")
            client.until("? username")
            client.say(ADMIN)
            client.until("? password")
            client.say(guess)
            self.assertRefused(client, "! wrong password")
        locked_at = time.monotonic()

        def admin_prompted():
            client = self.connect("127.0.0.62")
            client.until("? username")
            client.say(ADMIN)
            answer = client.line()
            client.close()
            if answer == "? password":
                return True
            self.assertEqual(answer, "! too many failed logins, try later")
            return False

        self.assertFalse(admin_prompted())
        wait_for(admin_prompted, "the lockout to end", timeout=5)
        self.assertGreater(time.monotonic() - locked_at, 1.0)
        self.login(ADMIN, ADMIN_PASSWORD, source="127.0.0.62")


class ModerationTests(ServerTestCase):
    """Timed and address bans, mutes, over real sockets (lightly: the unit tests go deeper)."""

    shared = False

    def test_ip_ban_and_mute(self):
        """`/ban -ip bob 1h spam` shuts out any name from bob's address; `/mute` silences."""
        boss = self.admin()
        bob = self.login("bob", source="127.0.0.70")
        carol = self.login("carol")
        boss.until("* carol joined")

        boss.say("/mute carol 10m")
        self.assertEqual(carol.line(), f"* carol was muted by {ADMIN} for 10m")
        carol.say("hello?", "/me waves", "/msg bob hi")
        self.assertEqual([carol.line() for _ in range(3)], ["! you are muted"] * 3)
        boss.say("/unmute carol")
        self.assertEqual(carol.line(), f"* carol was unmuted by {ADMIN}")

        boss.say("/ban -ip bob 1h spam")
        self.assertEqual(bob.until("! "), f"! you were banned by {ADMIN} for 1h: spam")
        self.assertEqual(bob.rest(), [])
        self.assertEqual(carol.line(), f"* bob was banned by {ADMIN} for 1h: spam")
        from_there = self.connect("127.0.0.70")
        from_there.say("dave")
        self.assertRefused(from_there, "* welcome to chatd", "? username",
                           "! you are banned: spam")
        other = self.connect()
        other.until("? username")
        other.say("BOB")
        self.assertRefused(other, "! you are banned: spam")
        self.assertStillChatting(carol, "carol", boss, allowed=r"^\* (bob|carol) was ")

        boss.say("/ban -ip carol", "/ban carol 2x", "/ban carol 0s", "/bans")
        self.assertTrue(boss.line().startswith("! "))  # not on your own address
        self.assertTrue(boss.line().startswith("! bad duration 2x: "))
        self.assertTrue(boss.line().startswith("! bad duration 0s: "))
        self.assertEqual(boss.line(), "* bans (1):")
        self.assertRegex(boss.line(), rf"^\* bob by {ADMIN} at \S+ \S+Z until \S+ \S+Z "
                                      r"\(address 127\.0\.0\.70\): spam$")
        self.assertStillChatting(carol, "carol", boss)

        boss.say("/unban Bob")
        self.assertEqual(carol.line(), f"* bob was unbanned by {ADMIN}")
        back = self.login("bob", source="127.0.0.70")
        self.assertStillChatting(back, "bob", carol)


class AddressBanLimitTests(ServerTestCase):
    """Refusals for a banned address, against small connection limits."""

    shared = False
    limits = {"max_per_ip": 3, "max_clients": 6}

    def test_banned_address_refused_every_time_and_takes_no_place(self):
        """Each connection from a banned address gets `! you are banned`, and none keeps a place."""
        boss = self.admin()
        bob = self.login("bob", source="127.0.0.80")
        boss.until("* bob joined")
        boss.say("/ban -ip bob 1h spam")
        self.assertEqual(boss.line(), f"* bob was banned by {ADMIN} for 1h: spam")
        self.assertEqual(bob.rest()[-1], f"! you were banned by {ADMIN} for 1h: spam")
        for _ in range(8):  # more than max_per_ip and than max_clients
            client = self.connect("127.0.0.80")
            client.say("carol")  # refused before the prompt (or, at the latest, here)
            self.assertEqual(client.rest()[-1:], ["! you are banned: spam"])
        boss.say("/unban bob")
        self.assertEqual(boss.line(), f"* bob was unbanned by {ADMIN}")
        back = wait_for(lambda: self.connect("127.0.0.80").line() == "* welcome to chatd",
                        "the unbanned address to be let in", timeout=3)
        self.assertTrue(back)
        for n in range(4):  # with boss and the one let back in: max_clients
            client = self.connect(f"127.0.0.{90 + n}")
            self.assertEqual(client.line(), "* welcome to chatd")


class DurabilityTests(ServerTestCase):
    """A ban holds through SIGKILL of the real process."""

    shared = False

    def test_ban_survives_sigkill(self):
        """Once the room hears of a ban, SIGKILL and restart: the name (any case) stays refused."""
        boss = self.admin()
        bob = self.login("bob")
        boss.until("* bob joined")
        boss.say("/ban bob spam", "/ban carol 1h flood")
        self.assertEqual(boss.line(), f"* bob was banned by {ADMIN}: spam")
        self.assertEqual(boss.line(), f"* carol was banned by {ADMIN} for 1h: flood")
        self.assertEqual(bob.until("! "), f"! you were banned by {ADMIN}: spam")
        self.server.kill(signal.SIGKILL)
        self.server.start()
        self.log_start = 0
        for name, why in [("bob", "spam"), ("BOB", "spam"), ("Carol", "flood")]:
            client = self.connect()
            client.until("? username")
            client.say(name)
            self.assertRefused(client, f"! you are banned: {why}")
        alice = self.login("alice")
        boss = self.admin()
        self.assertStillChatting(boss, ADMIN, alice)
