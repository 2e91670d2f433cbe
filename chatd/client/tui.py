"""The terminal front end of chatd-client: an input line that stays put.

Incoming lines are printed above the line being typed: the input line is
erased, the server line written, and prompt, text and cursor drawn again,
so whatever is half typed stays intact and is sent whole on Enter.

twisted.conch.insults decodes the keys (arrows, Home, End, Delete) from
stdin in raw mode, as under twisted.conch.recvline.  The editing itself is
LineEditor here rather than recvline.HistoricRecvLine because RecvLine keeps
a list of bytes and accepts only ASCII printable keys (typed UTF-8 such as
"é" is dropped), and it draws by moving the cursor one cell per byte, which
breaks as soon as the line is wider than the terminal.  LineEditor holds
str, knows the width of wide characters, and the input line is redrawn
whole, scrolled sideways around the cursor, after every key.

The terminal is put back (termios and the non-blocking flag StandardIO sets)
in a `finally`, whatever ends the session: /quit, Ctrl-D, a kick, a lost
connection, a signal (SIGTERM, SIGHUP are caught) or an exception.
"""

from __future__ import annotations

import codecs
import os
import re
import signal
import termios
import tty
import unicodedata
import zlib

from twisted.conch.insults import insults
from twisted.internet import defer

from chatd.client.session import (
    Client,
    catch_signals,
    printable,
    restore_fd_flags,
    save_fd_flags,
)
from chatd.line.codec import kind_of

RESET = "\x1b[0m"
DIM, BOLD, RED, OWN = "\x1b[2m", "\x1b[1m", "\x1b[31m", "\x1b[1;33m"
# Name colours: no red (errors) and no yellow (your own name).
PALETTE = ["32", "34", "35", "36", "92", "94", "95", "96"]


def cell_width(text: str) -> int:
    """Columns text takes on a terminal: wide East Asian characters take two."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in "WF" else 1
    return width


class Style:
    """Colours by kind of line; plain text when colour is off (NO_COLOR)."""

    def __init__(self, colour: bool, me: str = ""):
        self.colour = colour
        self.me = me

    def paint(self, code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if self.colour and text else text

    def name(self, name: str) -> str:
        """A name in a colour that stays the same for that name, everywhere."""
        if self.me and name.lower() == self.me.lower():
            return self.paint(OWN, name)
        colour = PALETTE[zlib.crc32(name.lower().encode()) % len(PALETTE)]
        return self.paint(f"\x1b[{colour}m", name)

    def mentions(self, text: str) -> str:
        """text with each mention of your own name (any case) highlighted."""
        if not (self.me and self.colour):
            return text
        pattern = rf"(?<![A-Za-z0-9_.\-]){re.escape(self.me)}(?![A-Za-z0-9_\-]|\.[A-Za-z0-9_\-])"
        return re.sub(pattern, lambda m: self.paint(OWN, m.group(0)), text,
                      flags=re.IGNORECASE)

    def line(self, line: str) -> str:
        kind, name, text = kind_of(line)
        if kind == "message":
            return f"<{self.name(name)}> {self.mentions(text)}"
        if kind == "action":
            return f"{self.paint(DIM, '+')} {self.name(name)} {self.mentions(text)}"
        if kind == "private":
            return f"{self.paint(BOLD, '[')}{self.name(name)}{self.paint(BOLD, ']')} " \
                   f"{self.paint(BOLD, text)}"
        if kind == "sent":
            return f"{self.paint(DIM, '[->')}{self.name(name)}{self.paint(DIM, ']')} {text}"
        if kind == "notice":
            return self.paint(DIM, line)
        if kind == "error":
            return self.paint(RED, line)
        if kind == "history":
            return self.paint(DIM, line)
        return line


class LineEditor:
    """The line being typed, its cursor and the history; no terminal here."""

    def __init__(self):
        self.text = ""
        self.cursor = 0
        self.secret = False
        self.history: list[str] = []
        self._position = 0
        self._draft = ""

    def insert(self, chars: str) -> None:
        chars = printable(chars)
        self.text = self.text[:self.cursor] + chars + self.text[self.cursor:]
        self.cursor += len(chars)

    def left(self) -> None:
        self.cursor = max(0, self.cursor - 1)

    def right(self) -> None:
        self.cursor = min(len(self.text), self.cursor + 1)

    def home(self) -> None:
        self.cursor = 0

    def end(self) -> None:
        self.cursor = len(self.text)

    def backspace(self) -> None:
        if self.cursor:
            self.text = self.text[:self.cursor - 1] + self.text[self.cursor:]
            self.cursor -= 1

    def delete(self) -> None:
        self.text = self.text[:self.cursor] + self.text[self.cursor + 1:]

    def kill_to_start(self) -> None:
        """Ctrl-U: delete from the start of the line to the cursor."""
        self.text, self.cursor = self.text[self.cursor:], 0

    def kill_to_end(self) -> None:
        """Ctrl-K: delete from the cursor to the end of the line."""
        self.text = self.text[:self.cursor]

    def kill_word(self) -> None:
        """Ctrl-W: delete the word before the cursor, and the spaces after it."""
        head = self.text[:self.cursor].rstrip(" ")
        head = head[:len(head) - len(head.split(" ")[-1])]
        self.text, self.cursor = head + self.text[self.cursor:], len(head)

    def up(self) -> None:
        if self.secret or self._position == 0:
            return
        if self._position == len(self.history):
            self._draft = self.text
        self._position -= 1
        self._recall(self.history[self._position])

    def down(self) -> None:
        if self.secret or self._position >= len(self.history):
            return
        self._position += 1
        recalled = self._draft if self._position == len(self.history) else \
            self.history[self._position]
        self._recall(recalled)

    def _recall(self, text: str) -> None:
        self.text, self.cursor = text, len(text)

    def submit(self) -> str:
        """The whole line; it goes into the history unless it is a secret."""
        text, self.text, self.cursor = self.text, "", 0
        if text.strip() and not self.secret and (
                not self.history or self.history[-1] != text):
            self.history.append(text)
        self._position, self._draft = len(self.history), ""
        return text

    def view(self, prompt: str, width: int) -> tuple[str, int]:
        """(what to draw after the prompt, cursor column) for a terminal width.

        A line wider than the terminal scrolls sideways to keep the cursor in
        view; the last column is left free so the terminal never wraps.
        """
        if self.secret:
            return "", cell_width(prompt)
        usable = max(1, width - 1 - cell_width(prompt))
        widths = [cell_width(ch) for ch in self.text]
        start, before = 0, sum(widths[:self.cursor])
        under = widths[self.cursor] if self.cursor < len(widths) else 0
        while before + under > usable:
            before -= widths[start]
            start += 1
        end, used = start, 0
        while end < len(widths) and used + widths[end] <= usable:
            used += widths[end]
            end += 1
        return self.text[start:end], cell_width(prompt) + before


_CONTROL_KEYS = {
    b"\r": "enter", b"\n": "enter", b"\x7f": "backspace", b"\x08": "backspace",
    b"\x01": "home", b"\x05": "end", b"\x02": "left", b"\x06": "right",
    b"\x15": "kill_to_start", b"\x0b": "kill_to_end", b"\x17": "kill_word",
    b"\x10": "up", b"\x0e": "down", b"\x04": "ctrl_d", b"\x03": "ctrl_c",
    b"\x0c": "redraw",
}
_SS3_KEYS = {b"A": "up", b"B": "down", b"C": "right", b"D": "left",
             b"H": "home", b"F": "end"}


class TerminalFrontEnd(insults.TerminalProtocol):
    """Keys to the editor and the session; server lines above the input line."""

    retry_username = True

    def __init__(self, client: Client, colour: bool, width: int = 80):
        self.client = client
        self.editor = LineEditor()
        self.style = Style(colour)
        self.width = width
        self.prompt = ""
        self.purpose: str | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._closed = defer.Deferred()
        self._closing = False

    def connectionMade(self) -> None:
        t = self.terminal
        self._keys = {t.UP_ARROW: "up", t.DOWN_ARROW: "down", t.LEFT_ARROW: "left",
                      t.RIGHT_ARROW: "right", t.HOME: "home", t.END: "end",
                      t.DELETE: "delete"}
        self.redraw()

    # -- output -------------------------------------------------------

    def _write(self, text: str) -> None:
        if not self._closing:
            self.terminal.transport.write(text.encode("utf-8", "replace"))

    def _input_line(self) -> str:
        shown, column = self.editor.view(self.prompt, self.width)
        prompt = self.style.paint(BOLD, self.prompt)
        back = f"\r\x1b[{column}C" if column else "\r"
        return f"\r{prompt}{shown}\x1b[K{back}"

    def redraw(self) -> None:
        self._write(self._input_line())

    def show(self, line: str) -> None:
        if line in ("? username", "? password"):
            return
        self._write(f"\r\x1b[K{self.style.line(line)}\r\n{self._input_line()}")

    def resized(self) -> None:
        try:
            self.width = os.get_terminal_size(1).columns
        except OSError:
            return
        self.redraw()

    # -- session events -----------------------------------------------

    def _set(self, purpose: str | None, prompt: str, secret: bool = False) -> None:
        self.purpose, self.prompt, self.editor.secret = purpose, prompt, secret
        self.redraw()

    def ask_username(self) -> None:
        self._set("username", "username: ")

    def ask_password(self, name: str) -> None:
        self._set("password", f"password for {name}: ", secret=True)

    def logged_in(self, name: str) -> None:
        self.style.me = name
        self._set("chat", f"{name}> ")

    def close(self) -> defer.Deferred:
        """Erase the input line, flush the screen, let go of the terminal."""
        self._write(f"\r\x1b[K{RESET}")
        self._closing = True
        self.terminal.transport.loseConnection()
        return self._closed

    def connectionLost(self, reason=None) -> None:
        if not self._closed.called:
            self._closed.callback(None)
        if not self._closing:
            self.client.quit()

    # -- keys ---------------------------------------------------------

    def unhandledControlSequence(self, seq: bytes) -> None:
        if seq[:3] == b"\x1b[O" and seq[3:] in _SS3_KEYS:
            self._key(_SS3_KEYS[seq[3:]])

    def keystrokeReceived(self, keyID, modifier) -> None:
        if modifier is not None:
            return
        action = self._keys.get(keyID) or _CONTROL_KEYS.get(keyID)
        if action:
            self._key(action)
        elif len(keyID) == 1 and keyID >= b" ":  # keys are b"[UP_ARROW]" etc.
            chars = self._decoder.decode(keyID)
            if chars:
                self.editor.insert(chars)
                self.redraw()

    def _key(self, action: str) -> None:
        if action == "enter":
            self._enter()
        elif action == "ctrl_c" or (action == "ctrl_d" and not self.editor.text):
            self.client.quit()
        elif action == "redraw":
            self._write("\x1b[H\x1b[2J")
        else:
            getattr(self.editor, "delete" if action == "ctrl_d" else action)()
        self.redraw()

    def _enter(self) -> None:
        session = self.client.session
        if self.purpose is None or session is None:
            return
        text = self.editor.submit()
        purpose = self.purpose
        if purpose == "chat":
            self._echo(text)
            session.send_line(text)
            return
        if purpose == "username" and not text.strip():
            return
        if session.in_room:  # /register's password: then back to chatting
            self._set("chat", f"{session.name}> ")
        else:
            self._set(None, "")
        if purpose == "username":
            session.send_username(text.strip())
        else:
            session.send_line(text)

    def _echo(self, text: str) -> None:
        """Your own messages, which the server does not send back to you."""
        me = self.client.session.name
        if text.startswith("//"):
            self.show(f"<{me}> {text[1:]}")
        elif text[:4].lower() == "/me " and text[4:].strip():
            self.show(f"+ {me} {text[4:].strip()}")
        elif text.strip() and not text.startswith("/"):
            self.show(f"<{me}> {text}")


def run(reactor, client: Client) -> None:
    """Run the session on this terminal in raw mode; always restore it."""
    from twisted.internet import stdio

    fd = 0
    saved = termios.tcgetattr(fd)
    flags = save_fd_flags((0, 1))
    try:
        tty.setraw(fd)
        try:
            width = os.get_terminal_size(1).columns
        except OSError:
            width = 80
        colour = not os.environ.get("NO_COLOR")
        front = client.front = TerminalFrontEnd(client, colour, width)
        stdio.StandardIO(insults.ServerProtocol(lambda: front), reactor=reactor)
        catch_signals(reactor, client, (signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
        signal.signal(signal.SIGWINCH,
                      lambda n, frame: reactor.callFromThread(front.resized))
        reactor.callWhenRunning(client.start)
        reactor.run(installSignalHandlers=False)
    finally:
        restore_fd_flags(flags)
        try:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        except termios.error:
            pass  # the terminal is gone (hung up): nothing left to restore
        signal.signal(signal.SIGWINCH, signal.SIG_DFL)
