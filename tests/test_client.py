"""chatd-client: the pieces without I/O, then pipe mode against a real chatd.

The pipe-mode tests run `python -m chatd.client` as a subprocess against
`twistd -n chatd` on loopback, with plain sockets for the other people.
"""

from __future__ import annotations

import argparse
import ast
import re
import socket
import threading
from itertools import count
from pathlib import Path

import pytest
from twisted.internet import task
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from chatd.client.session import Exit, Session, printable
from chatd.client.style import Style
from chatd.line.codec import kind_of
from tests.helpers_client import (
    ADMIN_PASSWORD,
    ClientProc,
    LineConn,
    Server,
    admin,
    client_env,
    free_port,
    run_client,
)

DOCS = Path(__file__).resolve().parent.parent / "README.md"
CLIENT_DIR = DOCS.parent / "chatd" / "client"
_names = count(1)


def fresh(prefix: str) -> str:
    """A username no other test in this module uses."""
    return f"{prefix}{next(_names)}"


# -- no I/O -------------------------------------------------------------


def test_printable_removes_what_acts_on_a_terminal():
    """A hostile server cannot move the cursor, retitle the window or hide text."""
    hostile = "a\x1b[2Jb\x1b]0;owned\x07c\x9b31md\x07e\x7ff\u202eg\u200bh\ti"
    assert printable(hostile) == "a[2Jb]0;ownedc31mdefgh i"
    assert printable("caf\u00e9 \u4f60\u597d \U0001f600") == "caf\u00e9 \u4f60\u597d \U0001f600"
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"
    assert printable(f"{family} \u200d\u200d") == f"{family} "  # joiners only where they join


@pytest.mark.parametrize("line, kind, name, text", [
    ("<alice> hi <bob>", "message", "alice", "hi <bob>"),
    ("+ alice waves", "action", "alice", "waves"),
    ("[alice] psst", "private", "alice", "psst"),
    ("[->bob] psst", "sent", "bob", "psst"),
    ("* bob joined", "notice", "", "bob joined"),
    ("! permission denied", "error", "", "permission denied"),
    ("? username", "prompt", "", "username"),
    ("= 2026-11-25 15:00:00Z <bob> hi", "history", "2026-11-25 15:00:00Z", "<bob> hi"),
    ("<not a name> x", "other", "", "<not a name> x"),
])
def test_kinds_of_server_line(line, kind, name, text):
    """Each kind of line in docs/protocol.md is told apart for colouring."""
    assert kind_of(line) == (kind, name, text)


class FakeFront:
    retry_username = False

    def __init__(self):
        self.shown, self.asked = [], []

    def show(self, line):
        self.shown.append(line)

    def ask_username(self):
        self.asked.append("username")

    def ask_password(self, name):
        self.asked.append("password")

    def logged_in(self, name):
        self.asked.append(f"in as {name}")


class FakeClient:
    def __init__(self, user=None):
        self.reactor = task.Clock()
        self.args = argparse.Namespace(user=user, tls=False)
        self.front = FakeFront()
        self.address = "example:4000"
        self.session = None
        self.quitting = False
        self.ended = None

    def finish(self, code, message):
        self.ended = (code, message)


def session_after(lines: list[str], user: str | None = "zoe") -> tuple:
    client = FakeClient(user)
    session = Session(client)
    transport = StringTransport()
    session.makeConnection(transport)
    session.dataReceived(b"".join(line.encode() + b"\r\n" for line in lines))
    session.connectionLost(Failure(ConnectionDone()))
    return client, transport


def test_kicked_out_of_another_room_is_not_the_end():
    """Kicked out of a room other than the landing one, the user is shown the
    landing room again; if the connection then just drops, that is not a kick."""
    client, _ = session_after(["* welcome to chatd", "? username",
                               "* logged in as zoe in chatd",
                               "! you were kicked from games by boss",
                               "* you are in chatd", "<amy> hi"])
    assert client.ended[0] == Exit.CONNECTION


def test_register_in_the_room_never_sends_the_login_password(monkeypatch):
    """/register's `? password` in the room asks the person for a new one;
    CHATD_PASSWORD (this login's password) is never sent for it."""
    monkeypatch.setenv("CHATD_PASSWORD", "login-password")
    client, transport = session_after(["* welcome to chatd", "? username",
                                       "* logged in as zoe in chatd", "? password"])
    assert b"login-password" not in transport.value()
    assert client.front.asked == ["in as zoe", "password"]


@pytest.mark.parametrize("last, code", [
    ("* bye", Exit.OK),
    ("! you were kicked by boss: flooding", Exit.KICKED),
    ("! you were banned by boss", Exit.BANNED),
    ("! you were kicked from chatd by boss", Exit.KICKED),
    ("* server shutting down", Exit.CONNECTION),
    ("<amy> the server just closes after this", Exit.CONNECTION),
])
def test_how_a_session_in_the_room_ends(last, code):
    """The last words of the server decide the exit status."""
    client, _ = session_after(["* welcome to chatd", "? username",
                               "* logged in as zoe in chatd", last])
    assert client.ended[0] == code
    assert client.front.asked == ["in as zoe"]


@pytest.mark.parametrize("lines, code", [
    (["! you are banned: spam"], Exit.BANNED),
    (["? password", "! wrong password"], Exit.PASSWORD),
    (["! username zoe is taken", "? username"], Exit.USERNAME),
    (["! username zoe is taken", "! too many attempts, goodbye"], Exit.USERNAME),
])
def test_how_a_login_ends(lines, code):
    """Refusals at login map to their own exit status, with the server's words."""
    client, transport = session_after(["* welcome to chatd", "? username", *lines])
    assert client.ended[0] == code
    assert transport.value().startswith(b"zoe\r\n")
    assert lines[0][2:] in client.ended[1]


def test_session_sends_user_once_then_asks_the_front_end():
    """--user answers the first prompt only; a front end that may retry is asked
    for another name, and without --user it is asked at once."""
    client = FakeClient("zoe")
    client.front.retry_username = True
    session = Session(client)
    transport = StringTransport()
    session.makeConnection(transport)
    session.dataReceived(b"? username\r\n! username zoe is taken\r\n? username\r\n")
    assert transport.value() == b"zoe\r\n" and client.front.asked == ["username"]
    client, transport = session_after(["? username"], user=None)
    assert client.front.asked == ["username"] and transport.value() == b""


def test_colours_are_stable_and_mentions_highlighted(monkeypatch):
    """Each name keeps its colour; your name in others' text stands out."""
    style = Style(colour=True, me="alice")
    assert style.name("bob") == style.name("bob") == Style(True).name("bob")
    line = style.line("<bob> hi Alice, and alice.b is someone else")
    assert line.count("\x1b[1;33m") == 1 and "Alice" in line
    assert style.line("! nope").startswith("\x1b[31m")
    plain = Style(colour=False, me="alice")
    assert plain.line("<bob> hi alice") == "<bob> hi alice"


def test_private_lines_are_marked():
    """A private message, said to you from wherever, is marked as such; so is
    your own to someone else."""
    plain = Style(colour=False, me="alice")
    assert plain.line("[bob] psst") == "(private) [bob] psst"
    assert plain.line("[->bob] psst") == "(private) [->bob] psst"


def test_exit_codes_are_documented():
    """The README lists every exit status the client uses, with its number."""
    table = dict(re.findall(r"^\| (\d+) \| `(\w+)`", DOCS.read_text(), re.MULTILINE))
    assert table == {str(int(code)): code.name for code in Exit}


def _chatd_imports(path: Path) -> set[str]:
    """The chatd modules a file imports anywhere, lazy imports in functions too."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import tui, from .session import Exit
                base = f"chatd.client.{base}".rstrip(".")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names
                         if (CLIENT_DIR / f"{alias.name}.py").exists()
                         and base == "chatd.client")
    return {name for name in found
            if name.startswith("chatd.") and name != "chatd.client"}


def test_client_imports_go_one_way_and_not_into_the_server():
    """chatd-client's modules import each other one way, none of the server's.

    The command line picks a front end, each front end drives the session,
    and the session knows neither: so a front end can be added or changed
    without an import cycle, and the client runs without the daemon's code
    beyond the line codec both sides share (chatd.line.codec, with the
    core's events and text that it renders and parses).
    """
    allowed = {
        "__init__": set(), "pacing": set(), "roomview": set(), "style": set(),
        "widths": set(), "session": {"pacing", "roomview"},
        "editing": {"widths"}, "tui": {"session", "style", "editing", "widths"},
        "pipe": {"session"}, "cli": {"session", "tui", "pipe"}, "__main__": {"cli"},
    }
    modules = {path.stem: path for path in CLIENT_DIR.glob("*.py")}
    assert set(modules) == set(allowed)
    for stem, path in modules.items():
        may = {f"chatd.client.{name}" for name in allowed[stem]} | {"chatd.line.codec"}
        if stem == "session":
            may.add("chatd.core.text")  # printable() is the server's clean()
        assert _chatd_imports(path) <= may, stem
    codec = {"chatd.core.events", "chatd.core.text"}
    assert _chatd_imports(CLIENT_DIR.parent / "line" / "codec.py") <= codec
    for name in codec:
        assert _chatd_imports(CLIENT_DIR.parent / "core" / f"{name.split('.')[-1]}.py") == set()


# -- pipe mode against a real server ----------------------------------




def test_pipe_sends_lines_and_quits_at_end_of_input(port):
    """`printf ... | chatd-client --user bot` says each line, then /quit, status 0."""
    watcher = LineConn(port).login(fresh("w"))
    bot = fresh("bot")
    result = run_client(["--user", bot, "127.0.0.1", str(port)],
                        b"hello room\n/me beeps\r\nno newline at the end")
    assert result.returncode == Exit.OK, result.stderr
    assert watcher.expect(f"<{bot}>") == f"<{bot}> hello room"
    watcher.expect(f"+ {bot} beeps")
    watcher.expect(f"<{bot}> no newline at the end")
    watcher.expect(f"* {bot} left")
    out = result.stdout.decode().splitlines()
    assert out[:3] == ["* welcome to chatd", "? username", f"* logged in as {bot} in chatd"]
    assert out[-1] == "* bye" and result.stderr == b""


@pytest.mark.slow  # make test runs it beside the rest of the suite
def test_a_long_file_piped_in_arrives_whole_under_the_default_limits(port):
    """`chatd-client --user bot < notes.txt` with 500 lines: every line reaches
    the room, in order, and the bot is never told to slow down nor kicked.

    The client paces itself at 90% of the server's default 2 lines a second,
    so this takes about 4.5 minutes: one server, one reader and nothing else.
    """
    reader, bot = LineConn(port).login(fresh("r")), fresh("bot")
    notes = "".join(f"note {i}\n" for i in range(1, 501)).encode()
    result = run_client(["--user", bot, "127.0.0.1", str(port)], notes, timeout=400)
    assert result.returncode == Exit.OK, result.stderr
    assert b"\n! " not in result.stdout, result.stdout.decode()[-500:]
    for i in range(1, 501):
        assert reader.expect(f"<{bot}>") == f"<{bot}> note {i}"
    reader.expect(f"* {bot} left")


def test_pipe_prints_every_line_as_it_came(port):
    """A bot reads what others say on stdout, one line each, without CR."""
    bot, amy = fresh("bot"), fresh("amy")
    proc = ClientProc(["--user", bot, "127.0.0.1", str(port)])
    proc.expect(f"* logged in as {bot}")
    other = LineConn(port).login(amy)
    proc.expect(f"* {amy} joined")
    other.send("hi bot, caf\u00e9")
    other.send(f"/msg {bot} psst")
    proc.expect(f"[{amy}] psst")
    proc.send("hi amy")
    other.expect(f"<{bot}> hi amy")
    proc.end_input()
    code, stderr = proc.wait()
    assert code == Exit.OK, stderr
    assert f"<{amy}> hi bot, caf\u00e9" in proc.lines
    assert not any("\r" in line for line in proc.lines)


def test_pipe_without_user_takes_the_first_line_as_username(port):
    """With no --user, the first stdin line answers `? username`."""
    watcher = LineConn(port).login(fresh("w"))
    bot = fresh("bot")
    result = run_client(["127.0.0.1", str(port)], f"{bot}\nhello\n".encode())
    assert result.returncode == Exit.OK, result.stderr
    assert watcher.expect(f"<{bot}>") == f"<{bot}> hello"


def test_admin_password_from_environment_is_never_echoed(port):
    """CHATD_PASSWORD answers `? password`; it appears nowhere in the output."""
    result = run_client(["--user", "boss", "127.0.0.1", str(port)], b"/who\n",
                        env=client_env(CHATD_PASSWORD=ADMIN_PASSWORD))
    assert result.returncode == Exit.OK, result.stderr
    assert b"* logged in as boss (admin)" in result.stdout
    assert ADMIN_PASSWORD.encode() not in result.stdout + result.stderr


def test_wrong_password(port):
    """A wrong password ends with status 6 and one line on stderr."""
    result = run_client(["--user", "boss", "127.0.0.1", str(port)], b"hi\n",
                        env=client_env(CHATD_PASSWORD="not-it"))
    assert result.returncode == Exit.PASSWORD
    assert result.stderr == b"chatd-client: wrong password\n"
    assert b"not-it" not in result.stdout + result.stderr


def test_no_way_to_ask_a_password(port):
    """An admin name with no CHATD_PASSWORD and no terminal is a usage error."""
    result = subprocess_without_tty(["--user", "boss", "127.0.0.1", str(port)])
    assert result.returncode == Exit.USAGE
    assert b"set CHATD_PASSWORD" in result.stderr


def subprocess_without_tty(args):
    import subprocess

    from tests.helpers_client import CLIENT, ROOT
    return subprocess.run(CLIENT + args, input=b"", capture_output=True, timeout=10,
                          check=False, env=client_env(), cwd=ROOT,
                          start_new_session=True)


@pytest.mark.parametrize("name", ["bad name!", "taken"])
def test_username_refused(port, name):
    """An invalid or taken name ends with status 5 and the server's reason."""
    holder = None
    if name == "taken":
        name = fresh("taken")
        holder = LineConn(port).login(name)
    result = run_client(["--user", name.upper() if holder else name,
                         "127.0.0.1", str(port)], b"hi\n")
    assert result.returncode == Exit.USERNAME
    err = result.stderr.decode()
    assert err.startswith("chatd-client: username refused: ") and err.count("\n") == 1
    assert ("is taken" if holder else "invalid username") in err


def test_banned_at_login(port):
    """A banned name is refused at login with status 7."""
    boss, name = admin(port), fresh("spammer")
    boss.send(f"/ban {name} spam")
    boss.expect(f"* {name} was banned by boss: spam")
    result = run_client(["--user", name, "127.0.0.1", str(port)], b"hi\n")
    assert result.returncode == Exit.BANNED
    assert result.stderr == b"chatd-client: you are banned: spam\n"


@pytest.mark.parametrize("verb, code", [("kick", Exit.KICKED), ("ban", Exit.BANNED)])
def test_kicked_or_banned_in_the_room(port, verb, code):
    """Being kicked (8) or banned (7) while in the room ends the client at once."""
    boss, name = admin(port), fresh(verb)
    proc = ClientProc(["--user", name, "127.0.0.1", str(port)])
    boss.expect(f"* {name} joined")
    boss.send(f"/{verb} {name} calm down")
    code_, stderr = proc.wait()
    assert code_ == code
    assert stderr == f"chatd-client: you were {verb}ed by boss: calm down\n".replace(
        "baned", "banned")
    assert proc.lines[-1] == f"! you were {verb}ed by boss: calm down".replace(
        "baned", "banned")


def test_connection_refused():
    """Nothing listening: status 3 and why."""
    port = free_port()
    result = run_client(["127.0.0.1", str(port)])
    assert result.returncode == Exit.CONNECTION
    assert result.stderr.decode() == \
        f"chatd-client: cannot connect to 127.0.0.1:{port}: connection refused\n"


def test_server_shutdown_is_a_lost_connection(tmp_path):
    """The server going away (`* server shutting down`) ends with status 3."""
    port = free_port()
    server = Server(tmp_path, [f"tcp:{port}:interface=127.0.0.1"]).start(port)
    try:
        watcher = LineConn(port).login("watcher")
        proc = ClientProc(["--user", "stayer", "127.0.0.1", str(port)])
        watcher.expect("* stayer joined")
    finally:
        server.stop()
    code, stderr = proc.wait()
    assert code == Exit.CONNECTION
    assert stderr == "chatd-client: the server shut down\n"
    assert proc.lines[-1] == "* server shutting down"


def test_connection_lost_and_hostile_bytes():
    """A server that sends terminal escapes then hangs up: escapes removed, status 3."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.sendall("* welcome\x1b]0;owned\x07 \x1b[2J\u009b31mto evil\x07\r\n"
                         "<x> \x1b[1Ahi\r\n".encode("utf-8") + b"! bad \xff utf-8\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        result = run_client(["--user", "me", "127.0.0.1", str(port)])
    finally:
        thread.join(5)
        listener.close()
    assert result.returncode == Exit.CONNECTION
    assert result.stdout.decode() == \
        "* welcome]0;owned [2J31mto evil\n<x> [1Ahi\n! bad \ufffd utf-8\n"
    assert result.stderr.decode().startswith("chatd-client: connection to 127.0.0.1:")


@pytest.mark.parametrize("args", [["localhost", "99999"], ["--cafile", "x.pem"],
                                  ["--tls", "--cafile", "/nonexistent.pem"]])
def test_usage_errors(args):
    """Bad arguments end with status 2 before connecting anywhere."""
    result = run_client(args)
    assert result.returncode == Exit.USAGE
    assert result.stderr.decode().splitlines()[-1].startswith("chatd-client: ")
