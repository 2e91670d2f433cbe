"""chatd-client at a real terminal: tmux panes, keys sent with send-keys,
the screen read with capture-pane, against `twistd -n chatd` on loopback.

Each pane runs a small shell script that records the terminal settings
(`stty -g`) before and after the client, and whether stdin was left
non-blocking, so a test can prove the terminal was put back.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from itertools import count
from pathlib import Path

import pytest

from chatd.client.session import Exit
from tests.helpers_client import (
    ADMIN_PASSWORD,
    ROOT,
    LineConn,
    Server,
    admin,
    free_port,
    wait_for,
)

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="needs tmux (tests/ensure-tools.sh tmux)")
_names = count(1)

SCRIPT = """\
unset CHATD_PASSWORD
cd {root}
stty -g > {dir}/before
{env} {command}
code=$?
stty -g > {dir}/after
{python} -c 'import fcntl, os; print(fcntl.fcntl(0, fcntl.F_GETFL) & os.O_NONBLOCK)' \\
    > {dir}/nonblock
echo $code > {dir}/code.tmp && mv {dir}/code.tmp {dir}/code
"""


class Pane:
    """A tmux server of our own (own socket), one pane running the client."""

    def __init__(self, command: list[str], env: str = "", width: int = 80):
        self.dir = Path(tempfile.mkdtemp(prefix="chatd-tty-"))
        self.sock = self.dir / "sock"
        conf = self.dir / "tmux.conf"
        conf.write_text("set -g remain-on-exit on\nset -g status off\n")
        script = self.dir / "run.sh"
        script.write_text(SCRIPT.format(
            root=shlex.quote(str(ROOT)), dir=shlex.quote(str(self.dir)), env=env,
            command=shlex.join(command), python=shlex.quote(sys.executable)))
        self.tmux("-f", str(conf), "new-session", "-d", "-x", str(width), "-y", "24",
                  "sh", str(script))

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", str(self.sock), *args], check=True,
                              capture_output=True, timeout=10, text=True).stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-l", text)

    def lines(self) -> list[str]:
        """The screen, trailing blank lines dropped."""
        lines = [line.rstrip() for line in self.tmux("capture-pane", "-p").splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def wait(self, check, what: str) -> list[str]:
        """Wait until check(lines) is true; return the screen then."""
        def screen_if_ready():
            screen = self.lines()
            return screen if check(screen) else None

        return wait_for(screen_if_ready, timeout=10,
                        what=lambda: f"{what}; screen: {self.lines()!r}")

    def wait_last(self, text: str) -> list[str]:
        return self.wait(lambda s: s and s[-1] == text, f"last line {text!r}")

    def cursor(self) -> tuple[int, int]:
        x, y = self.tmux("display", "-p", "#{cursor_x} #{cursor_y}").split()
        return int(x), int(y)

    def exit_code(self) -> int:
        code = self.dir / "code"
        wait_for(code.exists, timeout=10,
                 what=lambda: f"the client to exit; screen: {self.lines()!r}")
        return int(code.read_text())

    def assert_terminal_restored(self) -> None:
        before = (self.dir / "before").read_text()
        assert (self.dir / "after").read_text() == before, "stty settings changed"
        assert (self.dir / "nonblock").read_text().strip() == "0", "stdin non-blocking"

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.sock), "kill-server"],
                       capture_output=True, timeout=10, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)




@pytest.fixture
def panes():
    made: list[Pane] = []

    def make(*args: str, env: str = "", program: list[str] | None = None) -> Pane:
        pane = Pane((program or [sys.executable, "-m", "chatd.client"]) + list(args),
                    env=env)
        made.append(pane)
        return pane

    yield make
    for pane in made:
        pane.close()


def test_incoming_line_leaves_half_typed_text_intact(port, panes):
    """A message arrives above the half-typed line; the line is sent whole on Enter."""
    me, other = f"ann{next(_names)}", f"ben{next(_names)}"
    pane = panes("--user", me, "127.0.0.1", str(port))
    pane.wait_last(f"{me}>")
    pane.type("half typed caf\u00e9")
    pane.wait_last(f"{me}> half typed caf\u00e9")
    ben = LineConn(port).login(other)
    ben.send("first from ben")
    ben.send("second, " + "long " * 30)
    screen = pane.wait(lambda s: any("second, long" in line for line in s)
                       and s[-1] == f"{me}> half typed caf\u00e9",
                       "ben's second line above the line being typed")
    assert f"<{other}> first from ben" in screen
    assert pane.cursor() == (len(f"{me}> half typed caf\u00e9"), len(screen) - 1)
    pane.type(" and done")
    pane.keys("Enter")
    assert ben.expect(f"<{me}>") == f"<{me}> half typed caf\u00e9 and done"
    said = [f"<{me}> half typed caf\u00e9 and done", " chatd | 2 people", f"{me}>"]
    pane.wait(lambda s: s[-3:] == said, "the line said, above an empty input line")


def with_someone(port, panes, mine: str, theirs: str) -> tuple[str, LineConn, Pane]:
    """(my name, another person in the room, my client's pane at its prompt)."""
    me, other = f"{mine}{next(_names)}", f"{theirs}{next(_names)}"
    conn = LineConn(port).login(other)
    pane = panes("--user", me, "127.0.0.1", str(port))
    pane.wait_last(f"{me}>")
    return me, conn, pane


def test_line_editing_keys_and_history(port, panes):
    """Ctrl-W/A/E/U, arrows and history edit the line before it is sent."""
    me, dee, pane = with_someone(port, panes, "cal", "dee")
    pane.type("one two three")
    pane.keys("C-w", "C-a")
    pane.type(">")
    pane.keys("C-e", "Left", "BSpace", "Enter")
    assert dee.expect(f"<{me}>") == f"<{me}> >one tw "
    pane.type("discard me")
    pane.keys("C-u")
    pane.type("second")
    pane.keys("Enter")
    dee.expect(f"<{me}> second")
    # prompt_toolkit reloads the history when it redraws the input line,
    # which a person cannot outtype: wait for it as they would.
    pane.wait(lambda s: f"<{me}> second" in s, "the line said")
    pane.keys("Up", "Up", "Home", "Delete", "End")
    pane.type("!")
    pane.keys("Enter")
    assert dee.expect(f"<{me}>") == f"<{me}> one tw !"
    pane.keys("Up", "C-a", "C-k", "Down", "Down")
    pane.wait_last(f"{me}>")
    pane.type("/quit")
    pane.keys("Enter")
    assert pane.exit_code() == Exit.OK
    pane.assert_terminal_restored()


def test_password_prompt_never_echoes_and_ctrl_d_quits(port, panes):
    """An admin's password typed at the prompt never shows; Ctrl-D leaves with 0."""
    pane = panes("--user", "boss", "127.0.0.1", str(port))
    pane.wait_last("password for boss:")
    pane.type(ADMIN_PASSWORD)
    assert pane.cursor()[0] == len("password for boss: ")
    assert not any(ADMIN_PASSWORD in line for line in pane.lines())
    pane.keys("Enter")
    screen = pane.wait_last("boss>")
    assert "* logged in as boss (admin) in chatd" in screen
    assert not any(ADMIN_PASSWORD in line for line in screen)
    pane.keys("Up")
    pane.wait_last("boss>")
    pane.keys("C-d")
    assert pane.exit_code() == Exit.OK
    pane.assert_terminal_restored()


def test_register_hides_the_new_password_and_chat_goes_on(port, panes):
    """/register at the terminal: both passwords are typed unseen, then the
    prompt is the chat prompt again and lines are said as before."""
    me, secret = f"reg{next(_names)}", "a-new-secret-pw"
    pane = panes("--user", me, "127.0.0.1", str(port))
    pane.wait_last(f"{me}>")
    pane.type("/register")
    pane.keys("Enter")
    pane.wait_last(f"password for {me}:")
    for _ in range(2):
        pane.type(secret)
        assert not any(secret in line for line in pane.lines())
        pane.keys("Enter")
    screen = pane.wait(lambda s: any(f"* {me} is registered" in line for line in s),
                       "the registration")
    assert not any(secret in line for line in screen)
    pane.wait_last(f"{me}>")
    pane.type("still here")
    pane.keys("Enter")
    pane.wait(lambda s: any(f"<{me}> still here" in line for line in s), "the line said")
    pane.keys("C-d")
    assert pane.exit_code() == Exit.OK


def test_username_asked_and_asked_again(port, panes):
    """Without --user the name is typed; a taken name can be retried."""
    taken = f"eve{next(_names)}"
    holder = LineConn(port).login(taken)
    pane = panes("127.0.0.1", str(port))
    pane.wait_last("username:")
    pane.type(taken.upper())
    pane.keys("Enter")
    pane.wait(lambda s: f"! username {taken.upper()} is taken" in s
              and s[-1] == "username:", "the refusal, then the prompt again")
    pane.type(taken + "x")
    pane.keys("Enter")
    pane.wait_last(f"{taken}x>")
    pane.keys("C-c")
    assert pane.exit_code() == Exit.OK
    holder.close()


def kick(port, name):
    boss = admin(port)
    boss.send(f"/kick {name} enough")
    boss.expect(f"* {name} was kicked")


def crash(port, name):
    LineConn(port).login(f"x{name}").send("trigger the bug")


@pytest.mark.parametrize("ending, code, message", [
    (kick, Exit.KICKED, "chatd-client: you were kicked by boss: enough"),
    (crash, Exit.INTERNAL, "chatd-client: internal error: RuntimeError: a bug"),
    ("sigterm", 128 + signal.SIGTERM, "chatd-client: interrupted"),
])
def test_terminal_restored_however_it_ends(port, panes, ending, code, message):
    """Kicked, an exception, or killed: exit status, message, terminal as before."""
    me = f"fay{next(_names)}"
    # The "crash" case runs a client whose colouring raises on one line.
    program = [sys.executable, "-c", (
               "import sys, chatd.client.tui as t\n"
               "line = t.Style.line\n"
               "def bad(self, text):\n"
               "    if 'trigger the bug' in text: raise RuntimeError('a bug')\n"
               "    return line(self, text)\n"
               "t.Style.line = bad\n"
               "import chatd.client.cli as c\n"
               "sys.exit(c.main())\n")]
    pane = panes("--user", me, "127.0.0.1", str(port), program=program)
    pane.wait_last(f"{me}>")
    pane.type("half typed")
    pane.wait_last(f"{me}> half typed")
    if ending == "sigterm":
        shell = pane.tmux("display", "-p", "#{pane_pid}").strip()
        pid = subprocess.run(["pgrep", "-P", shell], capture_output=True,
                             text=True, timeout=10, check=False).stdout.split()
        assert len(pid) == 1
        os.kill(int(pid[0]), signal.SIGTERM)
    else:
        ending(port, me)
    assert pane.exit_code() == code
    pane.assert_terminal_restored()
    screen = pane.wait(lambda s: message in s, "the message")
    assert not any("half typed" in line for line in screen)


def test_lost_connection_restores_terminal(tmp_path, panes):
    """The server going away leaves the terminal as it was; status 3."""
    port = free_port()
    server = Server(tmp_path, [f"tcp:{port}:interface=127.0.0.1"]).start(port)
    try:
        pane = panes("--user", "gus", "127.0.0.1", str(port))
        pane.wait_last("gus>")
    finally:
        server.stop()
    assert pane.exit_code() == Exit.CONNECTION
    pane.assert_terminal_restored()
    pane.wait(lambda s: "chatd-client: the server shut down" in s, "the message")


def test_tab_completes_commands_and_names(port, panes):
    """Tab completes /wh to /who, and a partial name to someone in the room."""
    me, zelda, pane = with_someone(port, panes, "tab", "zelda")
    pane.type("/wh")
    pane.keys("Tab")
    pane.wait_last(f"{me}> /who")
    pane.keys("C-u")
    pane.type("hi zel")
    pane.keys("Tab")
    pane.wait_last(f"{me}> hi {zelda.name}")
    pane.keys("C-c")
    assert pane.exit_code() == Exit.OK
    zelda.close()


def test_long_paste_asks_then_is_paced_under_the_flood_limit(port, panes, tmp_path):
    """A bracketed paste of 30 lines is one edit; Enter asks first, then every
    line reaches the room, paced so that the sender is neither told to slow
    down nor kicked; lines not yet sent show as waiting, not as said."""
    me, reader, pane = with_someone(port, panes, "pas", "rea")
    paste = tmp_path / "paste.txt"
    paste.write_text("".join(f"pasted line {i}\n" for i in range(1, 31)))
    pane.tmux("load-buffer", str(paste))
    pane.tmux("paste-buffer", "-p")  # bracketed, as the client asked for
    pane.wait(lambda s: s[-1].strip() == "pasted line 30", "the paste in the input line")
    pane.keys("Enter")
    screen = pane.wait(lambda s: any(line.startswith("send these 30 lines, paced? (y/n) ")
                                     for line in s), "the question")
    assert not any(line.startswith(f"<{me}>") for line in screen)  # nothing said yet
    pane.keys("y")
    screen = pane.wait(lambda s: any(line.startswith("waiting: ") for line in s),
                       "lines waiting")
    assert "waiting (flood limit)" in screen[-2]
    for i in range(1, 31):
        assert reader.expect(f"<{me}>", timeout=30) == f"<{me}> pasted line {i}"
    screen = pane.wait(lambda s: f"<{me}> pasted line 30" in s and
                       not any(line.startswith("waiting") for line in s), "all said")
    assert not any(line.startswith("!") for line in screen)
    pane.type("/quit")
    pane.keys("Enter")
    assert pane.exit_code() == Exit.OK


def terminal_width(text: str) -> int:
    """Columns tmux itself takes to draw text (printed by printf in a pane)."""
    pane = Pane(["sh", "-c", 'printf "%s|" "$1"; sleep 10', "sh", text])
    try:
        pane.wait(lambda s: s and s[0].endswith("|"), "the text printed")
        return pane.cursor()[0] - 1
    finally:
        pane.close()


@pytest.mark.parametrize("cluster", [
    "\U0001F44D\U0001F3FD",  # thumbs up, medium skin tone
    "\U0001F468\u200d\U0001F469\u200d\U0001F467",  # family: man, woman, girl
    "\u1100\u1161",  # the Hangul syllable ga as conjoining jamo
])
def test_cursor_stays_right_after_wide_and_joined_characters(port, panes, cluster):
    """After an emoji with a skin tone, a family emoji or decomposed Hangul, the
    cursor is where the terminal drew the text: at the end, after moving back
    over the cluster (one cluster per key) and once the line is cleared.

    The reference is tmux's own width for the cluster; it agrees with wcwidth
    (2 columns) for the family and the Hangul; tmux 3.3 draws the skin-tone
    emoji in 4 columns where wcwidth and most terminals give 2.
    """
    me = f"wid{next(_names)}"
    columns = terminal_width(cluster)
    pane = panes("--user", me, "127.0.0.1", str(port))
    pane.wait_last(f"{me}>")
    prompt = len(f"{me}> ")
    pane.type(f"x{cluster}ab")
    pane.wait(lambda s: s[-1].startswith(f"{me}> x") and s[-1].endswith("ab"), "the text")
    wait_for(lambda: pane.cursor()[0] == prompt + 1 + columns + 2,
             what=lambda: f"cursor at {prompt + 1 + columns + 2}: {pane.cursor()}")
    pane.keys("Left", "Left", "Left")
    wait_for(lambda: pane.cursor()[0] == prompt + 1,
             what=lambda: f"cursor at {prompt + 1}: {pane.cursor()}")
    pane.keys("End", "C-u")
    pane.wait_last(f"{me}>")
    wait_for(lambda: pane.cursor()[0] == prompt,
             what=lambda: f"cursor at {prompt}: {pane.cursor()}")
    pane.keys("C-c")
    assert pane.exit_code() == Exit.OK


def test_status_line_and_private_messages(port, panes):
    """The status line shows the room you are in and how many are in it as
    you move and people come and go; a private message is marked as one."""
    me, other = f"sta{next(_names)}", f"vis{next(_names)}"
    room = f"side{next(_names)}"
    pane = panes("--user", me, "127.0.0.1", str(port))
    pane.wait_last(f"{me}>")
    assert pane.lines()[-2].startswith(" chatd | ")
    pane.type(f"/join {room}")
    pane.keys("Enter")
    pane.wait(lambda s: s[-2].strip() == f"{room} | 1 person", "the new room")
    visitor = LineConn(port).login(other)
    visitor.send(f"/join {room}")
    pane.wait(lambda s: s[-2].strip() == f"{room} | 2 people", "one more")
    visitor.send(f"/msg {me} psst")
    pane.wait(lambda s: f"(private) [{other}] psst" in s, "the private message")
    visitor.send("/part")
    pane.wait(lambda s: s[-2].strip() == f"{room} | 1 person", "one less")
    pane.keys("C-d")
    assert pane.exit_code() == Exit.OK


def test_without_prompt_toolkit_a_terminal_gets_plain_lines(port, panes):
    """Without the chatd[tui] extra the client says so in one line and works
    as in a pipe, at the terminal too."""
    me = f"pla{next(_names)}"
    program = [sys.executable, "-c",
               "import sys; sys.modules['prompt_toolkit'] = None\n"
               "import chatd.client.cli as c; sys.exit(c.main())"]
    pane = panes("--user", me, "127.0.0.1", str(port), program=program)
    screen = pane.wait(lambda s: f"* logged in as {me} in chatd" in s, "the login")
    assert screen[0] == ("chatd-client: install chatd[tui] for the full-screen "
                         "terminal; using plain lines")
    pane.type("/quit")
    pane.keys("Enter")
    assert pane.exit_code() == Exit.OK
    pane.assert_terminal_restored()
