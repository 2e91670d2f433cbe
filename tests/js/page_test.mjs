// chatd/web/static/app.js in node: its pure functions, then the page itself
// driven through a DOM stub and a fake WebSocket. Run by tests/test_web_page.py
// (`node --test tests/js/page_test.mjs`).
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { test } from "node:test";

import { Document } from "./dom_stub.mjs";

const require = createRequire(import.meta.url);
const page = require("../../chatd/web/static/app.js");

const XSS = "<img src=x onerror=alert(1)>";
const AT = 1795000000;

test("a message with markup in it is text: no element but the line's own", () => {
  const doc = new Document();
  const node = page.renderEvent(doc, { kind: "message", room: "chatd", name: "bob", text: XSS, at: AT });
  assert.equal(node.className, "msg msg-message");
  assert.ok(node.textContent.endsWith("bob " + XSS), node.textContent);
  assert.deepEqual([...new Set(doc.created.map((e) => e.tagName))].sort(), ["DIV", "SPAN", "TIME"]);
});

test("each kind is a .msg with its own kind class", () => {
  const doc = new Document();
  const cls = (ev) => page.renderEvent(doc, { at: AT, room: "chatd", ...ev }).className;
  assert.equal(cls({ kind: "action", name: "bob", text: "waves" }), "msg msg-action");
  assert.equal(cls({ kind: "private", from: "bob", to: "alice", text: "psst" }), "msg msg-private");
  assert.equal(cls({ kind: "notice", text: "bans: none" }), "msg msg-notice");
  assert.equal(cls({ kind: "error", text: "no such user: carol" }), "msg msg-error");
  for (const kind of ["joined", "left", "kicked", "banned", "unbanned", "muted", "unmuted", "topic"]) {
    assert.equal(cls({ kind, name: "bob", by: "alice", text: "t", reason: "" }), "msg msg-notice", kind);
  }
  for (const kind of ["username", "password", "rooms", "pong", "welcome"]) {
    assert.equal(page.renderEvent(doc, { kind, room: "chatd" }), null, kind);
  }
});

test("history lines are marked earlier and carry their date", () => {
  const doc = new Document();
  const node = page.renderHistory(doc, { kind: "message", name: "bob", text: XSS, at: AT });
  assert.equal(node.className, "msg msg-history");
  const time = node.children[0];
  assert.equal(time.getAttribute("datetime"), new Date(AT * 1000).toISOString());
  assert.match(time.textContent, /^\d{4}-\d\d-\d\d \d\d:\d\d$/);
  assert.ok(node.textContent.endsWith(XSS));
});

test("moderation reads as sentences, to the target as 'you'", () => {
  const ev = { kind: "banned", room: "games", name: "bob", by: "alice", reason: "spam", duration: 600 };
  assert.equal(page.noticeText(ev, "carol"), "bob was banned by alice for 10m (spam)");
  assert.equal(page.noticeText({ ...ev, room: "", you: true }, "bob"),
    "you were banned by alice for 10m (spam)");
  // Off the server (a line-style /kick), and out of one room (IRC's KICK).
  assert.equal(page.noticeText({ ...ev, kind: "kicked", duration: null, reason: "" }, "carol"),
    "bob was kicked by alice");
  assert.equal(page.noticeText({ ...ev, kind: "kicked", room_only: true, duration: null,
    reason: "" }, "carol"), "bob was kicked from games by alice");
  assert.equal(page.noticeText({ kind: "left", room: "games", name: "bob", reason: "bye", quit: true }, "x"),
    "bob quit (bye)");
  assert.equal(page.formatDuration(7200), "2h");
  assert.equal(page.formatDuration(90), "90s");
});

test("the reconnect delay doubles from 1 s to a 30 s cap, spread by a quarter", () => {
  const mid = () => 0.5;
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 50].map((n) => page.backoffDelay(n, mid)),
    [1, 2, 4, 8, 16, 30, 30, 30]);
  assert.equal(page.backoffDelay(3, () => 0), 6);
  assert.equal(page.backoffDelay(3, () => 0.999), 10);
  assert.equal(page.backoffDelay(0, () => 0), 1);
});

test("Up and Down walk the input history and give the draft back", () => {
  const h = new page.InputHistory(3);
  h.push("one");
  h.push("two");
  h.push("two");
  h.push("");
  assert.equal(h.up("dra"), "two");
  assert.equal(h.up("two"), "one");
  assert.equal(h.up("one"), "one");
  assert.equal(h.down("one"), "two");
  assert.equal(h.down("two"), "dra");
  assert.equal(h.down("dra"), "dra");
  for (const t of ["a", "b", "c"]) h.push(t);
  assert.deepEqual(h.entries, ["a", "b", "c"]);
  assert.equal(new page.InputHistory().up("typed"), "typed");
});

test("typed lines: /join and /part are requests, other commands are said as typed", () => {
  assert.deepEqual(page.requestFor("/join games", "chatd"), { type: "join", room: "games" });
  assert.deepEqual(page.requestFor("/part", "games"), { type: "part", room: "games" });
  assert.deepEqual(page.requestFor("/leave chatd", "games"), { type: "part", room: "chatd" });
  assert.deepEqual(page.requestFor("/kick bob spam", "chatd"), { type: "say", room: "chatd", text: "/kick bob spam" });
  assert.deepEqual(page.requestFor("//join x", "chatd"), { type: "say", room: "chatd", text: "//join x" });
});

test("the socket is the page's own origin, wss under https", () => {
  assert.equal(page.wsUrl({ protocol: "http:", host: "127.0.0.1:8080" }), "ws://127.0.0.1:8080/ws");
  assert.equal(page.wsUrl({ protocol: "https:", host: "chat.example" }), "wss://chat.example/ws");
});

// ------------------------------------------------------------- the page

const IDS = ["status", "me", "login-view", "chat-view", "login-form", "login-name", "login-password",
  "login-password-row", "login-error", "room-title", "room-topic", "messages", "say-form",
  "message-input", "rooms", "join-form", "join-room", "rooms-refresh", "members", "member-count",
  "rooms-box", "members-box"];

function fakeWindow() {
  const doc = new Document(IDS);
  const sockets = [];
  const timers = new Map();
  let now = 0;
  let next = 1;
  class FakeSocket {
    constructor(url) { this.url = url; this.readyState = 0; this.sent = []; sockets.push(this); }
    send(text) { this.sent.push(JSON.parse(text)); }
    close() { this.readyState = 3; this.onclose({}); }
    open() { this.readyState = 1; this.onopen({}); }
    recv(obj) { this.onmessage({ data: JSON.stringify({ at: AT, ...obj }) }); }
    take() { const s = this.sent; this.sent = []; return s; }
  }
  const add = (fn, ms, every) => { timers.set(next, { at: now + ms, fn, every }); return next++; };
  const win = {
    document: doc,
    WebSocket: FakeSocket,
    location: { protocol: "http:", host: "127.0.0.1:8080" },
    matchMedia: () => ({ matches: false }),
    setTimeout: (fn, ms) => add(fn, ms, 0),
    setInterval: (fn, ms) => add(fn, ms, ms),
    clearTimeout: (id) => timers.delete(id),
    clearInterval: (id) => timers.delete(id),
  };
  const advance = (ms) => {
    const end = now + ms;
    for (;;) {
      const due = [...timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      const [id, t] = due;
      now = t.at;
      if (t.every) t.at += t.every; else timers.delete(id);
      t.fn();
    }
    now = end;
  };
  const $ = (id) => doc.getElementById(id);
  const submit = (id) => $(id).dispatch("submit");
  return { win, doc, sockets, advance, $, submit };
}

test("log in, password, rooms, members, commands, reconnect and re-login", () => {
  const { win, doc, sockets, advance, $, submit } = fakeWindow();
  page.start(win);
  assert.equal(sockets.length, 1);
  const ws = sockets[0];
  assert.equal(ws.url, "ws://127.0.0.1:8080/ws");
  assert.equal($("status").textContent, "connecting");
  ws.open();
  assert.equal($("status").textContent, "connected");

  // A refused name: the error, then the name again.
  ws.recv({ kind: "username", room: "chatd" });
  assert.equal(doc.activeElement, $("login-name"));
  $("login-name").value = "alice";
  submit("login-form");
  assert.deepEqual(ws.take(), [{ type: "login", name: "alice" }]);
  ws.recv({ kind: "error", text: "username alice is taken" });
  ws.recv({ kind: "username", room: "chatd" });
  assert.equal($("login-error").textContent, "username alice is taken");
  assert.equal($("login-view").hidden, false);

  // An admin's name: the password field, sent and cleared.
  submit("login-form");
  ws.take();
  ws.recv({ kind: "password" });
  assert.equal($("login-password-row").hidden, false);
  assert.equal(doc.activeElement, $("login-password"));
  $("login-password").value = "s3cret";
  submit("login-form");
  assert.deepEqual(ws.take(), [{ type: "password", password: "s3cret" }]);
  assert.equal($("login-password").value, "");

  ws.recv({
    kind: "welcome", room: "chatd", name: "alice", admin: true, login: true, topic: "hello",
    members: [{ name: "bob", admin: false }, { name: "alice", admin: true }], count: 3,
    history: [{ kind: "message", name: "bob", text: "earlier hi", at: AT - 60 }], motd: "",
  });
  assert.equal($("chat-view").hidden, false);
  assert.equal($("login-view").hidden, true);
  assert.equal(doc.activeElement, $("message-input"));
  assert.equal($("room-title").textContent, "chatd");
  assert.equal($("room-topic").textContent, "hello");
  assert.deepEqual(ws.take(), [{ type: "rooms" }]);
  const members = $("members").byClass("member");
  assert.deepEqual(members.map((m) => m.getAttribute("data-name")), ["alice", "bob"]);
  assert.deepEqual(members.map((m) => [m.textContent, m.className]),
    [["alice", "member member-admin"], ["bob", "member"]]);
  assert.equal($("member-count").textContent, "(3)");
  const earlier = $("messages").byClass("msg-history");
  assert.equal(earlier.length, 1);
  assert.ok(earlier[0].textContent.endsWith("bob earlier hi"));

  // A live message with markup shows literally.
  ws.recv({ kind: "message", room: "chatd", name: "bob", text: XSS });
  const live = $("messages").byClass("msg-message");
  assert.ok(live[live.length - 1].textContent.endsWith(XSS));
  assert.ok(!doc.created.some((e) => e.tagName === "IMG"));

  // Commands are said as typed; Up brings the last line back.
  $("message-input").value = "/kick bob";
  submit("say-form");
  assert.deepEqual(ws.take(), [{ type: "say", room: "chatd", text: "/kick bob" }]);
  assert.equal($("message-input").value, "");
  $("message-input").dispatch("keydown", { key: "ArrowUp" });
  assert.equal($("message-input").value, "/kick bob");
  ws.recv({ kind: "kicked", room: "chatd", name: "bob", by: "alice", reason: "", duration: null, you: false });
  assert.deepEqual($("members").byClass("member").map((m) => m.getAttribute("data-name")), ["alice"]);

  // A second room: its own tab; a line in the other marks it unread.
  $("message-input").value = "/join games";
  submit("say-form");
  assert.deepEqual(ws.take(), [{ type: "join", room: "games" }]);
  ws.recv({ kind: "welcome", room: "games", name: "alice", admin: true, login: false, topic: "",
    members: [{ name: "alice", admin: true }, { name: "carol", admin: false }], count: 2, history: [] });
  assert.equal($("room-title").textContent, "games");
  ws.recv({ kind: "rooms", rooms: [{ name: "chatd", count: 2, topic: "" }, { name: "games", count: 2, topic: "" },
    { name: "quiet", count: 0, topic: "" }] });
  ws.recv({ kind: "message", room: "chatd", name: "dave", text: "over here" });
  const rooms = () => Object.fromEntries($("rooms").byClass("room").map((r) => [r.getAttribute("data-room"), r.className]));
  assert.deepEqual(rooms(), { chatd: "room room-joined room-unread", games: "room room-joined room-current",
    quiet: "room" });
  $("rooms").byClass("room")[0].byClass("room-open")[0].click();
  assert.equal($("room-title").textContent, "chatd");
  assert.equal(rooms().chatd, "room room-joined room-current");
  $("rooms").byClass("room")[2].click();
  assert.deepEqual(ws.take(), [{ type: "join", room: "quiet" }]);

  // The connection drops: reconnecting, then the same name and the password asked again.
  ws.close();
  assert.match($("status").textContent, /^reconnecting in \d+s$/);
  advance(60000);
  assert.equal(sockets.length, 2);
  const again = sockets[1];
  again.open();
  again.recv({ kind: "username", room: "chatd" });
  assert.deepEqual(again.take(), [{ type: "login", name: "alice" }]);
  again.recv({ kind: "password" });
  assert.equal($("login-view").hidden, false);
  assert.equal(doc.activeElement, $("login-password"));
  $("login-password").value = "s3cret";
  submit("login-form");
  assert.deepEqual(again.take(), [{ type: "password", password: "s3cret" }]);
  again.recv({ kind: "welcome", room: "chatd", name: "alice", admin: true, login: true, topic: "",
    members: [{ name: "alice", admin: true }], count: 1, history: [] });
  assert.deepEqual(again.take(), [{ type: "join", room: "games" }, { type: "rooms" }]);
  assert.equal($("status").textContent, "connected");

  // Logged in elsewhere: no reconnect.
  again.recv({ kind: "replaced" });
  again.close();
  advance(120000);
  assert.equal(sockets.length, 2);
  assert.equal($("status").textContent, "disconnected");
});
