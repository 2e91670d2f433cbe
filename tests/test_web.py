"""The web front end (chatd.web): JSON over a WebSocket, in the rooms line users share."""

from __future__ import annotations

import json
from pathlib import Path

from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial import unittest
from twisted.web.client import Agent, readBody
from twisted.web.server import Site

from chatd import config
from chatd.tap import Options, makeService
from chatd.web.wire import WEB, frame
from tests.helpers import ProtocolHarness
from tests.helpers_web import WebHarness, WsClient, client_frame

XSS = "<img src=x onerror=alert(1)>"


class WebTestCase(unittest.TestCase):
    def setUp(self):
        self.h = ProtocolHarness(Path(self.mktemp()), admins={"boss": "bosspassword"},
                                 history=10)
        self.w = WebHarness(self.h)


class LoginTests(WebTestCase):
    def test_asks_a_name_then_lands_in_the_landing_room(self):
        """A page is asked a username, then lands in the landing room with a
        welcome listing who is there, as a line user does."""
        bob = self.h.login("bob")
        page = self.w.connect()
        self.assertEqual(self.w.read(page), [{"kind": "username", "room": "testroom"}])
        self.w.send(page, {"type": "login", "name": "alice"})
        [welcome] = self.w.read(page)
        self.assertEqual((welcome["kind"], welcome["room"], welcome["name"], welcome["login"]),
                         ("welcome", "testroom", "alice", True))
        self.assertEqual(welcome["members"], [{"name": "alice", "admin": False},
                                              {"name": "bob", "admin": False}])
        self.assertIn("* alice joined", self.h.read(bob))

    def test_admin_gives_a_password(self):
        """An admin's name gets a password request; the right one logs in as admin."""
        page = self.w.connect()
        self.w.read(page)
        self.w.send(page, {"type": "login", "name": "boss"})
        self.assertEqual(self.w.read(page), [{"kind": "password"}])
        self.w.send(page, {"type": "password", "password": "bosspassword"})
        [welcome] = self.w.read(page)
        self.assertEqual((welcome["kind"], welcome["admin"]), ("welcome", True))

    def test_wrong_password_is_refused_and_closed(self):
        """A wrong password: `wrong password`, the connection closes, and the
        failure counts in the failed-login window every front end shares."""
        page = self.w.connect()
        self.w.send(page, {"type": "login", "name": "boss"},
                    {"type": "password", "password": "nope"})
        messages = self.w.read(page)
        self.assertIn({"kind": "error", "text": "wrong password"}, messages)
        self.assertTrue(page.transport.disconnecting)
        self.assertIsNone(self.h.server.get("boss"))
        self.assertEqual(self.h.server.stats.failed_admin_logins, 1)

    def test_taken_name_asks_again(self):
        """A name in use: an error, and the username is asked again."""
        self.h.login("alice")
        page = self.w.connect()
        self.w.read(page)
        self.w.send(page, {"type": "login", "name": "alice"})
        messages = self.w.read(page)
        self.assertEqual(messages[-1], {"kind": "username"})
        self.assertEqual(messages[0]["kind"], "error")
        self.assertIn("taken", messages[0]["text"])

    def test_nothing_before_login(self):
        """Saying, joining or listing rooms before login is refused, not crashed on."""
        page = self.w.connect()
        self.w.read(page)
        self.w.send(page, {"type": "say", "room": "testroom", "text": "hi"}, {"type": "rooms"})
        self.assertEqual(self.w.read(page), [{"kind": "error", "text": "log in first"}] * 2)


class ChatTests(WebTestCase):
    def test_messages_both_ways_with_a_line_user(self):
        """What a page says reaches a line user, and the other way round; the
        page gets its own line back (a page shows what it said, in order)."""
        bob = self.h.login("bob")
        page = self.w.login("alice")
        self.h.read(bob)
        self.w.send(page, {"type": "say", "room": "testroom", "text": "hello bob"})
        self.assertEqual(self.h.read(bob), ["<alice> hello bob"])
        [mine] = self.w.read(page)
        self.assertEqual({k: mine[k] for k in ("kind", "room", "name", "text")},
                         {"kind": "message", "room": "testroom", "name": "alice",
                          "text": "hello bob"})
        self.w.send(page, {"type": "say", "room": "testroom", "text": "/me waves"})
        self.assertEqual(self.h.read(bob), ["+ alice waves"])
        self.assertEqual([(m["kind"], m["text"]) for m in self.w.read(page)],
                         [("action", "waves")])
        self.h.send(bob, "hello alice")
        [message] = self.w.read(page)
        self.assertEqual({k: message[k] for k in ("kind", "room", "name", "text")},
                         {"kind": "message", "room": "testroom", "name": "bob",
                          "text": "hello alice"})
        self.assertIsInstance(message["id"], int)
        self.assertIsInstance(message["at"], float)

    def test_markup_is_plain_json_text(self):
        """Markup typed by anyone reaches a page as the same characters in a
        JSON string (the page shows it as text), never altered or interpreted."""
        bob = self.h.login("bob")
        page = self.w.login("alice")
        self.h.send(bob, XSS)
        [message] = self.w.read(page)
        self.assertEqual(message["text"], XSS)
        self.w.send(page, {"type": "say", "room": "testroom", "text": XSS + "\x1b[2J"})
        self.assertEqual(self.h.read(bob)[-1], f"<alice> {XSS}[2J")

    def test_commands_answer_in_json(self):
        """`/` commands are the line protocol's (/limits too); their replies
        come as notice and error objects, /me as an action, // sends a slash."""
        bob = self.h.login("bob")
        page = self.w.login("alice")
        self.h.read(bob)
        for text in ("/who", "/nosuch", "/me waves", "//etc", "/limits"):
            self.w.send(page, {"type": "say", "room": "testroom", "text": text})
        messages = self.w.read(page)
        self.assertEqual(messages[0], {"kind": "notice", "room": "",
                                       "text": "online (2): alice, bob"})
        self.assertEqual(messages[1], {"kind": "error",
                                       "text": "unknown command /nosuch (try /help)"})
        self.assertEqual(messages[-1], {"kind": "notice", "room": "",
                                        "text": "limits flood_burst=5 flood_rate=2 max_line=2048"})
        self.assertEqual(self.h.read(bob), ["+ alice waves", "<alice> /etc"])

    def test_private_messages(self):
        """/msg reaches its target and comes back to its sender as a receipt."""
        bob = self.h.login("bob")
        page = self.w.login("alice")
        self.w.send(page, {"type": "say", "room": "testroom", "text": "/msg bob psst"})
        [receipt] = self.w.read(page)
        self.assertEqual((receipt["kind"], receipt["from"], receipt["to"], receipt["text"]),
                         ("private", "alice", "bob", "psst"))
        self.assertIn("[alice] psst", self.h.read(bob))

    def test_join_part_and_rooms(self):
        """A page may be in several rooms at once, list them, and leave one."""
        bob = self.h.login("bob")
        page = self.w.login("alice")
        self.w.send(page, {"type": "join", "room": "games"})
        [welcome] = self.w.read(page)
        self.assertEqual((welcome["kind"], welcome["room"], welcome["login"]),
                         ("welcome", "games", False))
        self.h.send(bob, "still here?")
        self.assertEqual(self.w.read(page)[0]["text"], "still here?")  # still in testroom
        self.w.send(page, {"type": "rooms"})
        [rooms] = self.w.read(page)
        self.assertEqual(rooms["rooms"], [{"name": "games", "count": 1, "topic": ""},
                                          {"name": "testroom", "count": 2, "topic": ""}])
        self.w.send(page, {"type": "part", "room": "testroom"})
        [left] = self.w.read(page)
        self.assertEqual((left["kind"], left["room"], left["name"], left["quit"]),
                         ("left", "testroom", "alice", False))
        self.w.send(page, {"type": "part", "room": "games"},
                    {"type": "say", "room": "testroom", "text": "hi"})
        self.assertEqual(self.w.read(page), [
            {"kind": "error", "text": "games is the only room you are in"},
            {"kind": "error", "text": "you are not in testroom"}])

    def test_history_in_welcome(self):
        """Joining a room shows its recent history in the welcome, each line
        with its kind, name, text and time."""
        bob = self.h.login("bob")
        self.h.send(bob, "earlier", "/me waved")
        page = self.w.login("alice")
        self.w.send(page, {"type": "join", "room": "games"}, {"type": "part", "room": "games"})
        self.w.read(page)
        page2 = self.w.connect()
        self.w.send(page2, {"type": "login", "name": "carol"})
        [welcome] = self.w.read(page2)[1:]
        self.assertEqual([(s["kind"], s["name"], s["text"]) for s in welcome["history"]],
                         [("message", "bob", "earlier"), ("action", "bob", "waved")])

    def test_a_kick_is_seen(self):
        """An admin's /kick: the page is told it was kicked (`you`), then closed;
        everyone else sees who was kicked."""
        boss = self.h.login("boss", "bosspassword")
        page = self.w.login("alice")
        watcher = self.w.login("carol")
        self.h.send(boss, "/kick alice spam")
        kicked, closed = self.w.read(page)[-2:]
        self.assertEqual((kicked["kind"], kicked["name"], kicked["by"], kicked["reason"],
                          kicked["you"]), ("kicked", "alice", "boss", "spam", True))
        self.assertEqual(closed, {"kind": "(close)"})
        self.assertTrue(page.transport.disconnecting)
        seen = [m for m in self.w.read(watcher) if m["kind"] == "kicked"]
        self.assertEqual((seen[0]["name"], seen[0]["you"]), ("alice", False))


    def test_kicked_out_of_one_room(self):
        """An IRC admin's KICK out of one room: the page sees it (room_only)
        and stays logged in; kicked out of its only room, it is back in the
        landing room."""
        self.h.login("boss", "bosspassword")
        boss = self.h.server.get("boss")
        page = self.w.login("alice")
        self.w.send(page, {"type": "join", "room": "games"})
        self.h.server.enter(boss, "games")
        self.h.clock.advance(0)
        self.w.read(page)
        self.h.server.moderation.kick_from_room(boss, self.h.server.room("games"), "alice")
        self.h.clock.advance(0)
        [kicked] = [m for m in self.w.read(page) if m["kind"] == "kicked"]
        self.assertEqual((kicked["room"], kicked["room_only"], kicked["you"]),
                         ("games", True, True))
        self.assertEqual([r.name for r in self.h.server.get("alice").rooms], ["testroom"])
        self.h.server.moderation.kick_from_room(boss, self.h.room, "alice")
        self.h.clock.advance(0)
        kinds = [(m["kind"], m["room"]) for m in self.w.read(page)]
        self.assertEqual(kinds, [("kicked", "testroom"), ("welcome", "testroom")])
        self.assertFalse(page.transport.disconnecting)


class LimitsTests(WebTestCase):
    def test_oversize_message_is_refused_like_a_long_line(self):
        """A message over max_line bytes is dropped with the line protocol's
        words, and the page stays connected."""
        bob = self.h.login("bob")
        page = self.w.login("alice")
        self.h.read(bob)
        self.w.send(page, {"type": "say", "room": "testroom", "text": "é" * 1100})
        self.assertEqual(self.w.read(page), [
            {"kind": "error", "text": "line too long (max 2048 bytes): dropped"}])
        self.w.send(page, {"type": "say", "room": "testroom", "text": "short"})
        self.assertEqual(self.h.read(bob), ["<alice> short"])

    def test_invalid_messages_get_an_error(self):
        """Invalid JSON, a non-object, an unknown type or a wrong field type:
        an error each, and the connection carries on."""
        page = self.w.login("alice")
        self.w.send(page, "[" * 2000)
        self.assertEqual(self.w.read(page), [
            {"kind": "error", "text": "invalid JSON: message dropped"}])
        self.w.send(page, "{nope", "[1]", {"type": "dance"},
                    {"type": "say", "room": "testroom", "text": 3})
        self.assertEqual(self.w.read(page), [
            {"kind": "error", "text": "invalid JSON: message dropped"},
            {"kind": "error", "text": "unknown message type"},
            {"kind": "error", "text": "unknown message type"},
            {"kind": "error", "text": '"text" must be a string'}])
        self.h.clock.advance(10)  # the flood bucket refills
        self.w.send(page, {"type": "ping"})
        self.assertEqual(self.w.read(page), [{"kind": "pong"}])

    def test_flooding_is_slowed_then_kicked(self):
        """Past the flood limit each message gets `slow down`; past flood_kick
        refusals the user is kicked off the server."""
        bob = self.h.login("bob")
        page = self.w.login("alice")
        self.h.read(bob)
        self.w.send(page, *[{"type": "say", "room": "testroom", "text": f"m{i}"}
                            for i in range(5 + 10 + 1)])
        messages = self.w.read(page)
        self.assertEqual(messages.count({"kind": "error", "text": "slow down"}), 10)
        self.assertEqual(messages[-2]["kind"], "kicked")
        self.assertTrue(page.transport.disconnecting)
        self.assertIsNone(self.h.server.get("alice"))

    def test_login_timeout(self):
        """A page that never logs in is closed after login_timeout."""
        page = self.w.connect()
        self.w.read(page)
        self.h.clock.advance(self.h.gate.limits.login_timeout + 1)
        self.assertEqual(self.w.read(page), [{"kind": "error", "text": "login timed out"},
                                             {"kind": "(close)"}])

    def test_a_page_that_does_not_read_is_cut_off(self):
        """What waits for a page is bounded by sendq: past it the page is
        disconnected and its rooms are told, like any other client."""
        self.h.login("bob")
        bob, room = self.h.server.get("bob"), self.h.room
        page = self.w.login("alice")
        page.outbox.pauseProducing()  # the transport says its buffer is full
        for i in range(self.h.gate.limits.sendq // 50):  # 50 bytes: less than a frame
            self.h.server.say(bob, room, f"message number {i} for a page that does not read")
            self.h.clock.advance(0)
            if self.h.server.get("alice") is None:
                break
        self.assertIsNone(self.h.server.get("alice"))
        self.assertEqual(self.h.server.stats.sendq_disconnects, 1)

    def test_register_asks_passwords_as_password_messages(self):
        """/register's two passwords come as `password` messages, never as
        text said in the room; then the name needs that password."""
        bob = self.h.login("bob")
        page = self.w.login("alice")
        self.h.read(bob)
        self.w.send(page, {"type": "say", "room": "testroom", "text": "/register"})
        self.assertEqual(self.w.read(page)[-1], {"kind": "password"})
        self.w.send(page, {"type": "password", "password": "a long secret"},
                    {"type": "password", "password": "a long secret"})
        self.assertIn("alice is registered", self.w.read(page)[-1]["text"])
        self.assertEqual(self.h.read(bob), [])
        self.assertTrue(self.h.server.is_registered_name("alice"))

    def test_admission_is_the_shared_gate(self):
        """Pages count against max_per_ip with every other connection."""
        h = ProtocolHarness(Path(self.mktemp()), max_per_ip=1)
        w = WebHarness(h)
        h.login("bob")
        page = w.connect()
        self.assertEqual(w.read(page), [
            {"kind": "error", "text": "too many connections from your address"},
            {"kind": "(close)"}])

    def test_frames_are_rendered_once_for_all_pages(self):
        """Every page in a room is written the same frame (the shared fan-out bytes)."""
        pages = [self.w.login(name) for name in ("a1", "a2")]
        bob = self.h.login("bob")
        for page in pages:
            page.transport.clear()
        self.h.send(bob, "x" * 200)
        self.assertEqual(pages[0].transport.value(), pages[1].transport.value())
        self.assertEqual(len(frame(b"x" * 70000)), 70000 + 10)


class ConfigTests(unittest.TestCase):
    def test_web_keys(self):
        """--web (repeatable) and [web] listen and origins; bad origins are refused."""
        path = Path(self.mktemp())
        path.write_text('[web]\nlisten = ["tcp:8080"]\norigins = ["https://chat.example.org"]\n')
        options = Options()
        options.parseOptions(["--config", str(path)])
        self.assertEqual((options.settings.web, options.settings.web_origins),
                         (["tcp:8080"], ["https://chat.example.org"]))
        options = Options()
        options.parseOptions(["--web", "tcp:1", "--web", "tcp:2"])
        self.assertEqual(options.settings.web, ["tcp:1", "tcp:2"])
        path.write_text('[web]\norigins = ["chat.example.org/x"]\n')
        self.assertRaises(config.ConfigError, config.load, path)
        self.assertRaises(usage.UsageError, Options().parseOptions, ["--config", str(path)])


    def test_make_service_serves_the_site(self):
        """Each --web endpoint is a listener serving the page's Site, next to --listen's."""
        options = Options()
        options.parseOptions(["--data-dir", str(Path(self.mktemp())), "--listen", "tcp:4001",
                              "--web", "tcp:8081:interface=127.0.0.1"])
        memory = MemoryReactorClock()
        svc = makeService(options, memory)
        svc.privilegedStartService()
        svc.startService()
        self.addCleanup(svc.stopService)
        [(port, factory, _, iface)] = [s for s in memory.tcpServers if s[0] == 8081]
        self.assertEqual((port, iface), (8081, "127.0.0.1"))
        self.assertIsInstance(factory, Site)


class LoopbackTests(unittest.TestCase):
    """The page and the WebSocket over a real loopback port."""

    def setUp(self):
        self.h = ProtocolHarness(Path(self.mktemp()))
        self.w = WebHarness(self.h, origins=["https://chat.example.org"])
        # The rooms run on the harness's Clock: let it keep up with the reactor.
        pump = task.LoopingCall(self.h.clock.advance, 0)
        pump.start(0.005)
        self.addCleanup(pump.stop)
        self.port = reactor.listenTCP(0, self.w.factory.site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.base = f"127.0.0.1:{self.port.getHost().port}"
        self.clients = []

    @defer.inlineCallbacks
    def tearDown(self):
        for client in self.clients:
            client.transport.loseConnection()
        yield defer.DeferredList([c.closed for c in self.clients])

    @defer.inlineCallbacks
    def ws(self, origin):
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port.getHost().port)
        client = yield connectProtocol(endpoint, WsClient(self.base, origin))
        self.clients.append(client)
        yield client.answered
        return client

    @defer.inlineCallbacks
    def test_page_and_headers(self):
        """/ is the page itself (no redirect), with a strict CSP, nosniff and no-referrer."""
        response = yield Agent(reactor).request(b"GET", f"http://{self.base}/".encode())
        body = yield readBody(response)
        self.assertEqual(response.code, 200)
        self.assertIn(b'<script src="/static/app.js"', body)
        script = yield Agent(reactor).request(
            b"GET", f"http://{self.base}/static/app.js".encode())
        self.assertEqual(script.code, 200)
        self.assertIn("javascript", script.headers.getRawHeaders("content-type")[0])
        yield readBody(script)
        headers = response.headers
        csp = headers.getRawHeaders("content-security-policy")[0]
        for part in ("default-src 'none'", "script-src 'self'",
                     f"connect-src 'self' ws://{self.base}", "frame-ancestors 'none'",
                     "base-uri 'none'", "form-action 'none'"):
            self.assertIn(part, csp)
        self.assertEqual(headers.getRawHeaders("x-content-type-options"), ["nosniff"])
        self.assertEqual(headers.getRawHeaders("referrer-policy"), ["no-referrer"])

    @defer.inlineCallbacks
    def test_foreign_origin_is_refused(self):
        """A handshake from another site's page (or with no Origin) is
        refused with 403 before any chat; the configured origin is let in."""
        for origin in ("http://evil.example", None, f"https://{self.base}"):
            client = yield self.ws(origin)
            self.assertEqual(client.status, 403, origin)
            self.assertIn("frame-ancestors", client.header("content-security-policy"))
        client = yield self.ws("https://chat.example.org")
        self.assertEqual(client.status, 101)

    @defer.inlineCallbacks
    def test_chat_over_a_real_websocket(self):
        """A browser-like client on the page's own origin logs in and talks to a line user."""
        bob = self.h.login("bob")
        client = yield self.ws(f"http://{self.base}")
        self.assertEqual(client.status, 101)
        yield client.expect("username")
        client.send({"type": "login", "name": "alice"})
        yield client.expect("welcome")
        client.send({"type": "say", "room": "testroom", "text": "over the wire"})
        client.send({"type": "ping"})
        yield client.expect("pong")
        self.assertIn("<alice> over the wire", self.h.read(bob))
        self.h.send(bob, "back")
        message = yield client.expect("message")
        self.assertEqual(message["text"], "back")

    @defer.inlineCallbacks
    def test_many_small_messages_in_one_read_are_not_too_big(self):
        """A page that sends many whole messages at once (more bytes in one
        read than the endless-message limit) is served, not closed."""
        limits = self.h.gate.limits
        limits.flood_burst, limits.flood_rate = 1000, 1000.0
        client = yield self.ws(f"http://{self.base}")
        yield client.expect("username")
        client.send({"type": "login", "name": "carol"})
        yield client.expect("welcome")
        frames = [client_frame(json.dumps({"type": "ping", "pad": "x" * 400}).encode())
                  for _ in range(40)]  # 16 KiB > 4 x 2048 + 4096
        client.transport.write(b"".join(frames))
        for _ in range(40):
            yield client.expect("pong")

    @defer.inlineCallbacks
    def test_endless_message_closes(self):
        """A message that keeps coming past several times max_line is not
        buffered: the connection is closed."""
        client = yield self.ws(f"http://{self.base}")
        yield client.expect("username")
        chunk = client_frame(b"x" * 4096, opcode=1, fin=False)
        more = client_frame(b"x" * 4096, opcode=0, fin=False)
        client.transport.write(chunk + more * 4)
        yield client.expect("error", text="message too big")
        yield client.closed
        self.assertEqual(self.w.factory.connections, set())


def test_wire_renders_every_event_kind():
    """Every core event kind has a JSON rendering (none crashes the fan-out)."""
    import chatd.core.events as ev
    for kind in (ev.Notice(1, 0.0, "r", "hi"), ev.Unbanned(2, 0.0, "r", "a", "b"),
                 ev.Muted(3, 0.0, "r", "a", "b", 60.0), ev.Unmuted(4, 0.0, "r", "a", "b"),
                 ev.Topic(5, 0.0, "r", "b", "t"), ev.Replaced(6, 0.0, "", "a"),
                 ev.Banned(7, 0.0, "r", "a", "b", "", None)):
        data = WEB.render_for(kind, "a")
        obj = json.loads(data[2:])
        assert obj["id"] == kind.id


def test_message_fast_path_is_the_same_json():
    """A message renders to the same JSON as every other event's path would
    give it, whatever its text (quotes, backslashes, controls, non-ASCII)."""
    import chatd.core.events as ev
    from chatd.web.wire import _RENDER, encode
    for text in ('plain', 'quo"te \\ back', "tab\tand\u2028line", "héllo 🎉", XSS):
        e = ev.Message(12, 1795635898.5007303, "chatd", "alice", text)
        assert WEB.render(e) == encode(_RENDER[ev.Message](e))
        assert json.loads(WEB.render(e)[2:].decode())["text"] == text
