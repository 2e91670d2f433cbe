/* chatd's page: one WebSocket at /ws speaking the JSON of docs/web.md.
 *
 * Every piece of text from the server or another user goes into the page
 * through textContent or createTextNode, never as HTML, so a message such as
 * <img src=x onerror=alert(1)> shows literally. No inline script or style:
 * the page runs under a CSP of script-src 'self' and style-src 'self', so
 * looks change through classes and the hidden attribute only.
 *
 * The top half is pure functions (rendering an event to a node, the
 * reconnect backoff, the input history) that tests/js/page_test.mjs loads in
 * node with a small DOM stub; start() wires them to the real page.
 */
"use strict";

const ChatPage = (function () {
  const MAX_LINES = 500;        // per room: what a long-open tab keeps
  const PING_EVERY = 30000;     // ms between keepalive pings
  const SILENT_LIMIT = 95000;   // ms without a word from the server: reconnect

  /** The WebSocket URL of the page's own origin: ws:// or wss:// as the page. */
  function wsUrl(location) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + location.host + "/ws";
  }

  /** Seconds to wait before reconnect attempt number `attempt` (0, 1, ...):
   * doubling from 1 s up to `cap`, spread by +-25% so that the browsers of a
   * restarted server do not all come back in the same second. */
  function backoffDelay(attempt, random, cap) {
    const limit = cap === undefined ? 30 : cap;
    const base = Math.min(limit, Math.pow(2, Math.min(attempt, 16)));
    const rnd = random ? random() : Math.random();
    return Math.max(1, Math.round(base * (0.75 + 0.5 * rnd)));
  }

  /** What was typed before, walked with Up and Down as in a shell: Up from
   * the draft saves it, Down past the newest entry gives it back. */
  class InputHistory {
    constructor(limit) {
      this.limit = limit || 100;
      this.entries = [];
      this.index = 0;
      this.draft = "";
    }

    push(text) {
      if (text && this.entries[this.entries.length - 1] !== text) {
        this.entries.push(text);
        if (this.entries.length > this.limit) this.entries.shift();
      }
      this.index = this.entries.length;
      this.draft = "";
    }

    up(current) {
      if (this.index === this.entries.length) this.draft = current;
      if (this.index > 0) this.index -= 1;
      return this.entries.length ? this.entries[this.index] : current;
    }

    down(current) {
      if (this.index >= this.entries.length) return current;
      this.index += 1;
      return this.index === this.entries.length ? this.draft : this.entries[this.index];
    }
  }

  /** The request a line typed in the message box makes: /join and /part
   * are the page's own (a browser user may be in several rooms); anything
   * else, commands included, is said in the current room as typed. */
  function requestFor(text, room) {
    const m = /^\/(join|part|leave)(?:\s+(\S+))?\s*$/.exec(text);
    if (m && m[1] === "join" && m[2]) return { type: "join", room: m[2] };
    if (m && m[1] !== "join") return { type: "part", room: m[2] || room };
    return { type: "say", room: room, text: text };
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  /** "5m", "2h", "3d": a ban or mute duration in seconds, as people say it. */
  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const units = [[86400, "d"], [3600, "h"], [60, "m"]];
    for (const [size, unit] of units) {
      if (seconds >= size && seconds % size === 0) return seconds / size + unit;
    }
    return seconds + "s";
  }

  /** A <time> for `at` (seconds since the epoch): HH:MM, with the date too
   * for history, whose lines may be from another day. */
  function timeNode(doc, at, withDate) {
    const node = doc.createElement("time");
    const when = new Date((at || 0) * 1000);
    node.setAttribute("datetime", when.toISOString());
    let text = pad(when.getHours()) + ":" + pad(when.getMinutes());
    if (withDate) {
      text = when.getFullYear() + "-" + pad(when.getMonth() + 1) + "-" +
        pad(when.getDate()) + " " + text;
    }
    node.className = "msg-time";
    node.textContent = text;
    return node;
  }

  function span(doc, cls, text) {
    const node = doc.createElement("span");
    node.className = cls;
    node.textContent = text;
    return node;
  }

  /** A line of the message list: a .msg with one kind class, its time,
   * and its parts, every one of them set as text. */
  function line(doc, kind, at, parts, withDate) {
    const node = doc.createElement("div");
    node.className = "msg msg-" + kind;
    node.appendChild(timeNode(doc, at, withDate));
    for (const part of parts) {
      node.appendChild(doc.createTextNode(" "));
      node.appendChild(typeof part === "string" ? doc.createTextNode(part) : part);
    }
    return node;
  }

  function withReason(text, reason) {
    return reason ? text + " (" + reason + ")" : text;
  }

  /** The sentence a notice-like event says, or null for the kinds that are
   * not lines at all (password, username, rooms, pong, welcome, ...). */
  function noticeText(ev, me) {
    const dur = formatDuration(ev.duration);
    const forDur = dur ? " for " + dur : "";
    const who = ev.you ? "you were" : ev.name + " was";
    switch (ev.kind) {
      case "notice": return ev.text;
      case "joined": return ev.name + " joined";
      case "left":
        if (ev.name === me) return withReason("you left " + ev.room, ev.reason);
        return withReason(ev.name + (ev.quit ? " quit" : " left"), ev.reason);
      // A kick out of one room names it; a kick or ban off the server does not.
      case "kicked":
        return withReason(who + " kicked" + (ev.room_only ? " from " + ev.room : "") +
                          " by " + ev.by, ev.reason);
      case "banned": return withReason(who + " banned by " + ev.by + forDur, ev.reason);
      case "unbanned": return ev.name + " was unbanned by " + ev.by;
      case "muted":
        return (ev.name === me ? "you were" : ev.name + " was") + " muted by " + ev.by + forDur;
      case "unmuted": return (ev.name === me ? "you were" : ev.name + " was") + " unmuted by " + ev.by;
      case "topic": return ev.by + " set the topic: " + ev.text;
      case "replaced": return "you logged in from elsewhere; this page is disconnected";
      default: return null;
    }
  }

  /** The node an event shows as in the message list, or null. */
  function renderEvent(doc, ev, me) {
    switch (ev.kind) {
      case "message":
        return line(doc, "message", ev.at, [span(doc, "msg-name", ev.name),
          span(doc, "msg-text", ev.text)]);
      case "action":
        return line(doc, "action", ev.at, ["*", span(doc, "msg-name", ev.name),
          span(doc, "msg-text", ev.text)]);
      case "private": {
        const head = ev.from === me ? "you → " + ev.to : ev.from + " → you";
        return line(doc, "private", ev.at, [span(doc, "msg-name", head),
          span(doc, "msg-text", ev.text)]);
      }
      case "error":
        return line(doc, "error", ev.at, [span(doc, "msg-text", ev.text)]);
      default: {
        const text = noticeText(ev, me);
        if (text === null) return null;
        return line(doc, "notice", ev.at, [span(doc, "msg-text", text)]);
      }
    }
  }

  /** A line of a room's history, marked as earlier and dated. */
  function renderHistory(doc, item) {
    const parts = item.kind === "action"
      ? ["*", span(doc, "msg-name", item.name), span(doc, "msg-text", item.text)]
      : [span(doc, "msg-name", item.name), span(doc, "msg-text", item.text)];
    const node = line(doc, "history", item.at, parts, true);
    if (item.kind === "action") node.className += " history-action";
    node.setAttribute("title", "earlier");
    return node;
  }

  /** The member list's entries, admins first, then by name. */
  function sortMembers(members) {
    return Array.from(members.entries())
      .sort((a, b) => (b[1] - a[1]) || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  // ---------------------------------------------------------------- the page

  function start(win) {
    const doc = win.document;
    const $ = (id) => doc.getElementById(id);
    const ui = {
      status: $("status"), me: $("me"), loginView: $("login-view"), chatView: $("chat-view"),
      loginForm: $("login-form"), loginName: $("login-name"), loginPassword: $("login-password"),
      passwordRow: $("login-password-row"), loginError: $("login-error"),
      title: $("room-title"), topic: $("room-topic"), messages: $("messages"),
      sayForm: $("say-form"), input: $("message-input"), rooms: $("rooms"),
      joinForm: $("join-form"), joinRoom: $("join-room"), refresh: $("rooms-refresh"),
      members: $("members"), memberCount: $("member-count"),
    };
    const history = new InputHistory(100);
    const state = {
      ws: null, attempt: 0, timer: null, pinger: null, heard: 0, stop: false,
      name: "", asked: "", loggedIn: false, autoLogin: false, loginErrorText: "",
      rooms: new Map(),   // name -> {members: Map name->admin, count, topic, lines, unread}
      current: "", list: [], rejoin: [],
    };

    function setStatus(text, cls) {
      ui.status.textContent = text;
      ui.status.className = "status status-" + cls;
    }

    function send(obj) {
      if (state.ws && state.ws.readyState === 1) {
        state.ws.send(JSON.stringify(obj));
        return true;
      }
      return false;
    }

    function roomState(name) {
      let room = state.rooms.get(name);
      if (!room) {
        room = { members: new Map(), count: 0, topic: "", lines: [], unread: false };
        state.rooms.set(name, room);
      }
      return room;
    }

    function addLine(roomName, node) {
      if (!node) return;
      const name = state.rooms.has(roomName) ? roomName : state.current;
      const room = state.rooms.get(name);
      if (!room) {   // in no room at all: show it anyway
        ui.messages.appendChild(node);
        return;
      }
      room.lines.push(node);
      if (room.lines.length > MAX_LINES) {
        const old = room.lines.shift();
        if (name === state.current && old.parentNode) old.parentNode.removeChild(old);
      }
      if (name === state.current) {
        ui.messages.appendChild(node);
        ui.messages.scrollTop = ui.messages.scrollHeight;
      } else if (!room.unread) {
        room.unread = true;
        drawRooms();
      }
    }

    function say(roomName, kind, text) {
      addLine(roomName, renderEvent(doc, { kind: kind, text: text, at: Date.now() / 1000 },
        state.name));
    }

    function drawMembers() {
      const room = state.rooms.get(state.current);
      const items = [];
      if (room) {
        for (const [name, admin] of sortMembers(room.members)) {
          const li = doc.createElement("li");
          li.className = admin ? "member member-admin" : "member";
          li.setAttribute("data-name", name);
          li.textContent = name;   // the admin's "@" is the stylesheet's
          if (admin) li.setAttribute("title", "admin");
          items.push(li);
        }
        const more = room.count - room.members.size;
        if (more > 0) {
          const li = doc.createElement("li");
          li.className = "member-more";
          li.textContent = "and " + more + " more";
          items.push(li);
        }
      }
      ui.members.replaceChildren(...items);
      ui.memberCount.textContent = room ? "(" + Math.max(room.count, room.members.size) + ")" : "";
    }

    function drawRooms() {
      const counts = new Map(state.list.map((r) => [r.name, r.count]));
      for (const [name, room] of state.rooms) counts.set(name, Math.max(room.count, room.members.size));
      const names = Array.from(counts.keys()).sort();
      const items = names.map((name) => {
        const joined = state.rooms.has(name);
        const li = doc.createElement("li");
        li.className = "room" + (joined ? " room-joined" : "") +
          (name === state.current ? " room-current" : "") +
          (joined && state.rooms.get(name).unread ? " room-unread" : "");
        li.setAttribute("data-room", name);
        const open = doc.createElement("button");
        open.type = "button";
        open.className = "room-open";
        open.appendChild(span(doc, "room-name", name));
        open.appendChild(span(doc, "room-count", String(counts.get(name))));
        open.setAttribute("aria-label", (joined ? "Show " : "Join ") + name + ", " +
          counts.get(name) + " online");
        if (name === state.current) open.setAttribute("aria-current", "true");
        li.appendChild(open);
        if (joined) {
          const leave = doc.createElement("button");
          leave.type = "button";
          leave.className = "room-leave";
          leave.textContent = "×";
          leave.setAttribute("aria-label", "Leave " + name);
          li.appendChild(leave);
        }
        return li;
      });
      ui.rooms.replaceChildren(...items);
    }

    function show(name) {
      state.current = name;
      const room = state.rooms.get(name);
      ui.title.textContent = room ? name : "no room: join one";
      ui.topic.textContent = room ? room.topic : "";
      ui.messages.replaceChildren(...(room ? room.lines : []));
      ui.messages.scrollTop = ui.messages.scrollHeight;
      if (room) room.unread = false;
      drawRooms();
      drawMembers();
    }

    function forget(name) {
      if (!state.rooms.delete(name)) return;
      if (state.current === name) show(state.rooms.keys().next().value || "");
      else drawRooms();
      send({ type: "rooms" });
    }

    function showLogin(error, needPassword) {
      ui.chatView.hidden = true;
      ui.loginView.hidden = false;
      ui.passwordRow.hidden = !needPassword;
      ui.loginName.readOnly = !!needPassword;
      ui.loginError.textContent = error || "";
      if (!ui.loginName.value && state.name) ui.loginName.value = state.name;
      (needPassword ? ui.loginPassword : ui.loginName).focus();
    }

    function onWelcome(ev) {
      if (ev.login) state.rooms = new Map();   // rooms of a lost connection: rejoined below
      const room = roomState(ev.room);
      room.members = new Map((ev.members || []).map((m) => [m.name, !!m.admin]));
      room.count = ev.count || room.members.size;
      room.topic = ev.topic || "";
      room.lines = [];
      room.unread = false;
      if (ev.login) {
        state.loggedIn = true;
        state.name = ev.name;
        state.attempt = 0;
        ui.me.textContent = ev.name + (ev.admin ? " (admin)" : "");
        ui.loginView.hidden = true;
        ui.chatView.hidden = false;
        ui.loginError.textContent = "";
        ui.loginPassword.value = "";
        ui.loginName.readOnly = false;
        for (const name of state.rejoin) if (name !== ev.room) send({ type: "join", room: name });
        state.rejoin = [];
        send({ type: "rooms" });
      }
      show(ev.room);
      if (ev.login && ev.motd) say(ev.room, "notice", ev.motd);
      say(ev.room, "notice", "you are in " + ev.room);
      if (room.topic) say(ev.room, "notice", "topic: " + room.topic);
      const earlier = ev.history || [];
      if (earlier.length) {
        const mark = doc.createElement("div");
        mark.className = "history-mark";
        mark.setAttribute("role", "separator");
        mark.textContent = "earlier messages";
        addLine(ev.room, mark);
        for (const item of earlier) addLine(ev.room, renderHistory(doc, item));
        const end = doc.createElement("div");
        end.className = "history-mark history-end";
        end.setAttribute("role", "separator");
        end.textContent = "now";
        addLine(ev.room, end);
      }
      if (ev.login) ui.input.focus();
    }

    function onMembers(ev) {
      const room = state.rooms.get(ev.room);
      if (!room) return;
      if (ev.kind === "joined") {
        if (!room.members.has(ev.name)) room.count += 1;
        room.members.set(ev.name, !!ev.admin);
      } else if (room.members.delete(ev.name) || room.count > room.members.size) {
        room.count = Math.max(room.members.size, room.count - 1);
      }
      if (ev.room === state.current) drawMembers();
      drawRooms();
    }

    function onEvent(ev) {
      state.heard = Date.now();
      switch (ev.kind) {
        case "username":
          if (state.autoLogin && state.name) {
            state.autoLogin = false;
            state.asked = state.name;
            send({ type: "login", name: state.name });
          } else {
            showLogin(state.loginErrorText, false);
          }
          state.loginErrorText = "";
          return;
        case "password":
          showLogin(state.loginErrorText ||
            (state.loggedIn ? "" : "enter the password for " + state.asked), true);
          state.loginErrorText = "";
          return;
        case "welcome": onWelcome(ev); return;
        case "rooms": state.list = ev.rooms || []; drawRooms(); return;
        case "pong": return;
        case "replaced": state.stop = true; break;
        // Kicked or banned off the server: no reconnecting by itself.
        case "kicked": case "banned":
          if (ev.you && !ev.room_only) state.stop = true;
          if (ev.name !== state.name) onMembers(ev);
          break;
        case "error":
          if (!state.loggedIn) { state.loginErrorText = ev.text; ui.loginError.textContent = ev.text; return; }
          break;
        case "topic": {
          const room = state.rooms.get(ev.room);
          if (room) room.topic = ev.text;
          if (ev.room === state.current) ui.topic.textContent = ev.text;
          break;
        }
        case "joined": case "left":
          if (ev.name !== state.name) onMembers(ev);
          break;
        default: break;
      }
      // Put out of a room: say so in the room shown next, not in the one gone.
      if ((ev.kind === "kicked" || ev.kind === "banned") && ev.you) forget(ev.room);
      else if (ev.kind === "left" && ev.name === state.name && !ev.quit) forget(ev.room);
      addLine(ev.room, renderEvent(doc, ev, state.name));
    }

    function connect() {
      win.clearTimeout(state.timer);
      setStatus("connecting", "connecting");
      state.autoLogin = !!state.name;
      state.rejoin = Array.from(state.rooms.keys());
      let ws;
      try {
        ws = new win.WebSocket(wsUrl(win.location));
      } catch (err) {
        retry();
        return;
      }
      state.ws = ws;
      ws.onopen = () => {
        setStatus("connected", "connected");
        state.heard = Date.now();
        state.pinger = win.setInterval(() => {
          if (Date.now() - state.heard > SILENT_LIMIT) ws.close();
          else send({ type: "ping" });
        }, PING_EVERY);
      };
      ws.onmessage = (msg) => {
        let ev;
        try { ev = JSON.parse(msg.data); } catch (err) { return; }
        if (ev && typeof ev.kind === "string") onEvent(ev);
      };
      ws.onclose = () => {
        win.clearInterval(state.pinger);
        if (state.ws !== ws) return;
        state.ws = null;
        state.loggedIn = false;
        if (state.stop) setStatus("disconnected", "disconnected");
        else {
          if (state.rooms.size) say(state.current, "notice", "connection lost");
          retry();
        }
      };
    }

    function retry() {
      let left = backoffDelay(state.attempt);
      state.attempt += 1;
      const tick = () => {
        if (left <= 0) { connect(); return; }
        setStatus("reconnecting in " + left + "s", "reconnecting");
        left -= 1;
        state.timer = win.setTimeout(tick, 1000);
      };
      tick();
    }

    ui.loginForm.addEventListener("submit", (e) => {
      e.preventDefault();
      ui.loginError.textContent = "";
      if (!ui.passwordRow.hidden) {
        if (send({ type: "password", password: ui.loginPassword.value })) {
          ui.loginPassword.value = "";
        }
        return;
      }
      const name = ui.loginName.value.trim();
      if (!name) return;
      state.asked = name;
      state.name = "";
      if (!send({ type: "login", name: name })) ui.loginError.textContent = "not connected yet";
    });

    ui.sayForm.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = ui.input.value;
      if (!text) return;
      const req = requestFor(text, state.current);
      if (req.type !== "join" && !req.room) {
        say("", "error", "you are in no room: /join ROOM first");
        return;
      }
      if (!send(req)) {
        say(state.current, "error", "not connected: try again when connected");
        return;
      }
      history.push(text);
      ui.input.value = "";
      if (req.type === "part") forget(req.room);
    });

    ui.input.addEventListener("keydown", (e) => {
      if (e.key !== "ArrowUp" && e.key !== "ArrowDown") return;
      e.preventDefault();
      ui.input.value = e.key === "ArrowUp" ? history.up(ui.input.value) : history.down(ui.input.value);
    });

    ui.joinForm.addEventListener("submit", (e) => {
      e.preventDefault();
      const name = ui.joinRoom.value.trim();
      if (!name) return;
      if (state.rooms.has(name)) show(name);
      else send({ type: "join", room: name });
      ui.joinRoom.value = "";
    });

    ui.refresh.addEventListener("click", () => send({ type: "rooms" }));

    ui.rooms.addEventListener("click", (e) => {
      const item = e.target.closest(".room");
      if (!item) return;
      const name = item.getAttribute("data-room");
      if (e.target.closest(".room-leave")) {
        if (send({ type: "part", room: name })) forget(name);
      } else if (state.rooms.has(name)) {
        show(name);
        ui.input.focus();
      } else {
        send({ type: "join", room: name });
      }
    });

    if (win.matchMedia && win.matchMedia("(max-width: 600px)").matches) {
      $("rooms-box").open = false;
      $("members-box").open = false;
    }
    ui.loginName.focus();
    connect();
  }

  return {
    wsUrl, backoffDelay, InputHistory, requestFor, formatDuration, noticeText,
    renderEvent, renderHistory, sortMembers, start,
  };
})();

if (typeof module === "object" && module.exports) {
  module.exports = ChatPage;
} else {
  ChatPage.start(window);
}
