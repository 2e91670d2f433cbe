"""The terminal front end of chatd-client, on prompt_toolkit.

The screen keeps the terminal's own scrollback: incoming lines are printed
above a small live area at the bottom (prompt_toolkit's run_in_terminal),
which holds, from the top, the lines you said that still wait for the
flood limit ("waiting"), a status line (the room, how many are in it) and
the input line, which stays as it was, cursor included.

prompt_toolkit does the editing (emacs keys, history, Ctrl-R search, Tab
completion, bracketed paste as one edit, widths by wcwidth; see
chatd.client.editing for what is added to it).  It runs on asyncio, so the
client runs on Twisted's asyncio reactor (cli.main installs it before the
reactor is imported): one loop drives the socket, the terminal and the
signals.

The terminal is put back by prompt_toolkit when the application ends, and
again from a saved copy in a `finally`, whatever ends the session: /quit,
Ctrl-D, Ctrl-C, a kick, a lost connection, a signal or an exception.
"""

from __future__ import annotations

import asyncio
import os
import signal
import termios
import tty

from prompt_toolkit.application import Application, create_app_session
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.layout import ConditionalContainer, HSplit, Layout, VSplit, Window
from prompt_toolkit.layout.controls import BufferControl, FormattedTextControl
from prompt_toolkit.layout.dimension import Dimension
from prompt_toolkit.shortcuts import print_formatted_text
from prompt_toolkit.styles import Style as Theme
from prompt_toolkit.widgets import SearchToolbar
from twisted.internet import defer
from twisted.logger import Logger

from chatd.client import widths
from chatd.client.editing import ChatCompleter, input_processors, key_bindings
from chatd.client.session import Client, restore_fd_flags, save_fd_flags
from chatd.client.style import Style

log = Logger()

PASTE_CONFIRM = 20  # more lines than this at once are sent only when confirmed
PENDING_SHOWN = 5  # waiting lines listed in the live area; more are counted
THEME = Theme.from_dict({"status": "reverse", "prompt": "bold", "waiting": "italic"})


class TerminalFrontEnd:
    """Server lines above the live area; the input line to the session."""

    retry_username = True

    def __init__(self, client: Client, colour: bool):
        self.client = client
        self.style = Style(colour)
        self.purpose: str | None = None  # "username", "password", "chat"
        self.prompt = ""
        self.pending: list[str] = []  # said, not yet written (the flood limit)
        self.confirming: list[str] | None = None  # a long paste, until y or n
        self._out: list[str] = []
        self._flushing = False
        self._closing = False
        self._done = defer.Deferred()
        self.search = SearchToolbar()
        self.buffer = Buffer(history=InMemoryHistory(), completer=ChatCompleter(self),
                             multiline=True)
        self.app = Application(
            layout=self._layout(), key_bindings=key_bindings(self), style=THEME,
            full_screen=False, erase_when_done=True, include_default_pygments_style=False)

    @property
    def secret(self) -> bool:
        return self.purpose == "password"

    # -- the live area ------------------------------------------------

    def _layout(self) -> Layout:
        waiting = Window(FormattedTextControl(self._waiting_text), style="class:waiting",
                         dont_extend_height=True, wrap_lines=False)
        status = Window(FormattedTextControl(self._status_text), height=1,
                        style="class:status")
        prompt = Window(FormattedTextControl(lambda: [("class:prompt", self._prompt())]),
                        dont_extend_width=True, dont_extend_height=True)
        editor = Window(
            BufferControl(self.buffer, input_processors=input_processors(self),
                          search_buffer_control=self.search.control),
            height=Dimension(min=1, max=5), wrap_lines=False, dont_extend_height=True)
        return Layout(HSplit([
            ConditionalContainer(waiting, filter=Condition(lambda: bool(self.pending))),
            ConditionalContainer(status, filter=Condition(lambda: self.purpose == "chat")),
            VSplit([prompt, editor]),
            self.search,
        ]), focused_element=editor)

    def _prompt(self) -> str:
        if self.confirming is not None:
            return f"send these {len(self.confirming)} lines, paced? (y/n) "
        return self.prompt

    def _waiting_text(self) -> list[tuple]:
        me = self.client.session.name if self.client.session else ""
        shown = [f"waiting: <{me}> {text}" if not text.startswith("/") else f"waiting: {text}"
                 for text in self.pending[:PENDING_SHOWN]]
        if len(self.pending) > PENDING_SHOWN:
            shown.append(f"waiting: and {len(self.pending) - PENDING_SHOWN} more")
        return widths.mark_clusters([("", "\n".join(shown))])

    def _status_text(self) -> str:
        session = self.client.session
        if session is None:
            return ""
        view = session.room
        people = f"{view.count} {'person' if view.count == 1 else 'people'}"
        waiting = f" | {len(self.pending)} waiting (flood limit)" if self.pending else ""
        return f" {view.room} | {people}{waiting} "

    def refresh(self) -> None:
        self.app.invalidate()

    # -- output -------------------------------------------------------

    def show(self, line: str) -> None:
        if line in ("? username", "? password"):
            return
        self._print(self.style.line(line))
        self.refresh()

    def _print(self, text: str) -> None:
        """Queue a line to print above the live area, once per reactor turn."""
        self._out.append(text)
        if not self._flushing:
            self._flushing = True
            self.client.reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        self._flushing = False
        if self._closing or not self._out:
            return
        text, self._out = "\n".join(self._out), []
        app = self.app
        if app.is_running:
            # What run_in_terminal does, without its switch to cooked mode:
            # keys typed meanwhile would be echoed by the terminal, and an
            # Enter turned into a newline.
            app.renderer.erase()
            self._write(text)
            app.renderer.request_absolute_cursor_position()
            app.invalidate()
        else:
            self._write(text)

    def _write(self, text: str) -> None:
        print_formatted_text(ANSI(text), output=self.app.output)

    # -- session events -----------------------------------------------

    def _set(self, purpose: str | None, prompt: str) -> None:
        self.purpose, self.prompt = purpose, prompt
        self.refresh()

    def ask_username(self) -> None:
        self._set("username", "username: ")

    def ask_password(self, name: str) -> None:
        self._set("password", f"password for {name}: ")

    def logged_in(self, name: str) -> None:
        self.style.me = name
        self._set("chat", f"{name}> ")

    def close(self) -> defer.Deferred:
        """Let go of the terminal; then print what is left and stop."""
        if not self._closing:
            self._closing = True
            if self.app.is_running:
                self.app.exit()
            else:
                self._ended(None)
        return self._done

    def _ended(self, result):
        """The application is over and the terminal back as it was."""
        if self._out:
            self._write("\n".join(self._out))
            self._out = []
        if not self._done.called:
            self._done.callback(None)
        return result

    # -- what the input line does -------------------------------------

    def enter(self) -> None:
        """Enter: the line (or pasted lines) to the session, by purpose."""
        session, purpose, text = self.client.session, self.purpose, self.buffer.text
        if purpose is None or session is None:
            return
        if purpose == "chat":
            lines = [line for line in text.split("\n") if line.strip()]
            if len(lines) > PASTE_CONFIRM:
                self.confirming = lines
                self.refresh()
                return
            self.buffer.reset(append_to_history=bool(lines))
            self.say(lines)
            return
        if purpose == "username" and not text.strip():
            return
        self.buffer.reset(append_to_history=False)  # never a name or password
        if session.in_room:  # /register's password: then back to chatting
            self._set("chat", f"{session.name}> ")
            session.say(text)
        else:
            self._set(None, "")
            if purpose == "username":
                session.send_username(text.strip())
            else:
                session.send_line(text)

    def confirmed(self, yes: bool) -> None:
        """The answer to "send these N lines?": y sends them, n edits them again."""
        lines, self.confirming = self.confirming, None
        if yes and lines:
            self.buffer.reset(append_to_history=True)
            self.say(lines)
        self.refresh()

    def say(self, lines: list[str]) -> None:
        """Lines wait (shown as waiting) until the flood limit lets them out."""
        session = self.client.session
        for text in lines:
            self.pending.append(text)
            session.say(text, sent=lambda text=text: self._sent(text))
        self.refresh()

    def _sent(self, text: str) -> None:
        self.pending.remove(text)
        self._echo(text)
        self.refresh()

    def _echo(self, text: str) -> None:
        """Your own messages, which the server does not send back to you."""
        me = self.client.session.name
        if text.startswith("//"):
            self.show(f"<{me}> {text[1:]}")
        elif text[:4].lower() == "/me " and text[4:].strip():
            self.show(f"+ {me} {text[4:].strip()}")
        elif text.strip() and not text.startswith("/"):
            self.show(f"<{me}> {text}")

    def quit(self) -> None:
        """Ctrl-C, or Ctrl-D on an empty line: leave now, waiting lines dropped."""
        self.pending.clear()
        self.client.quit(drop=True)
        self.refresh()


def _loop_error(loop, context: dict) -> None:
    """An exception nothing caught in the loop is a bug: status 1, via the log."""
    error = context.get("exception")
    log.error("{message}: {error!r}", message=context.get("message", "error"), error=error)


def run(reactor, client: Client) -> None:
    """Run the session at this terminal; always put the terminal back."""
    fd = 0
    saved = termios.tcgetattr(fd)
    flags = save_fd_flags((0, 1))
    loop = asyncio.get_event_loop()
    loop.set_exception_handler(_loop_error)
    try:
        tty.setraw(fd)
        widths.probe(fd, 1)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        widths.use_grapheme_widths()
        with create_app_session():
            front = client.front = TerminalFrontEnd(client, not os.environ.get("NO_COLOR"))
            for signum in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(signum, client.interrupted, signum)

            def start() -> None:
                task = asyncio.ensure_future(front.app.run_async(
                    set_exception_handler=False, handle_sigint=False))
                done = defer.Deferred.fromFuture(task)
                done.addErrback(lambda f: log.failure("the terminal failed", f))
                done.addBoth(front._ended)
                done.addBoth(lambda _: client.finish(client.code, client.message)
                             if not client.finishing else None)
                client.start()

            reactor.callWhenRunning(start)
            reactor.run(installSignalHandlers=False)
    finally:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        restore_fd_flags(flags)
        try:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        except termios.error:
            pass  # the terminal is gone (hung up): nothing left to restore
