"""What chatd-client adds to prompt_toolkit's line editing.

prompt_toolkit's emacs keys are kept (Ctrl-A/E/U/K/W, arrows, Up/Down
history, Ctrl-R search).  Added here: Enter sends (a pasted block is one
edit and is sent line by line), Ctrl-D on an empty line and Ctrl-C leave,
Ctrl-L clears the screen, Tab completes (ChatCompleter), y/n answer the
question a long paste asks, a password is drawn as nothing and kept out of
the history, and the cursor moves over a whole grapheme cluster (👍🏽,
👨‍👩‍👧, decomposed Hangul) rather than into one.
"""

from __future__ import annotations

from typing import Protocol

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition, is_searching
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.key_binding.bindings.completion import display_completions_like_readline
from prompt_toolkit.keys import Keys
from prompt_toolkit.layout.processors import (
    ConditionalProcessor,
    Processor,
    Transformation,
    TransformationInput,
)
from wcwidth import grapheme_boundary_before, iter_graphemes

from chatd.client.widths import GraphemeWidths

COMMANDS = ["/help", "/who", "/rooms", "/join", "/part", "/topic", "/register",
            "/limits", "/me", "/msg", "/quit"]
ADMIN_COMMANDS = ["/kick", "/ban", "/unban", "/bans", "/mute", "/unmute", "/modlog",
                  "/stats"]
TAKES_ARGUMENTS = {"/join", "/me", "/msg", "/kick", "/ban", "/unban", "/mute", "/unmute"}
TAKES_A_NAME = {"/msg", "/kick", "/ban", "/unban", "/mute", "/unmute"}


class TerminalFrontEnd(Protocol):
    """What the keys and the completer use of chatd.client.tui's front end."""

    client: object  # the session.Client: .session, its RoomView and name
    purpose: str | None  # "username", "password", "chat"
    confirming: list[str] | None  # a long paste waiting for y or n

    @property
    def secret(self) -> bool: ...
    def enter(self) -> None: ...
    def confirmed(self, yes: bool) -> None: ...
    def quit(self) -> None: ...


class ChatCompleter(Completer):
    """/commands at the start of a line, rooms after /join, names elsewhere."""

    def __init__(self, front: TerminalFrontEnd):
        self.front = front

    def get_completions(self, document: Document, complete_event: CompleteEvent):
        session = self.front.client.session
        if self.front.purpose != "chat" or session is None:
            return
        line = document.current_line_before_cursor
        word = document.get_word_before_cursor(WORD=True)
        head = line[:len(line) - len(word)].split()
        view = session.room
        if not head and word.startswith("/"):
            known = COMMANDS + (ADMIN_COMMANDS if view.admin else [])
            for command in known:
                if command.startswith(word.lower()):
                    space = " " if command in TAKES_ARGUMENTS else ""
                    yield Completion(command + space, -len(word), display=command)
            return
        command = head[0].lower() if head and head[0].startswith("/") else None
        if command == "/join" and len(head) == 1:
            candidates = sorted(view.rooms - {view.room}, key=str.lower)
        elif command is None or command == "/me" or (
                command in TAKES_A_NAME and len(head) == 1):
            candidates = [name for name in view.people() if name != session.name]
        else:
            return
        for candidate in candidates:
            if candidate.lower().startswith(word.lower()):
                yield Completion(candidate, -len(word))


class HideAll(Processor):
    """A password is drawn as nothing: the cursor stays after the prompt."""

    def apply_transformation(self, ti: TransformationInput) -> Transformation:
        return Transformation([], source_to_display=lambda i: 0,
                              display_to_source=lambda i: 0)


def input_processors(front: TerminalFrontEnd) -> list[Processor]:
    return [ConditionalProcessor(HideAll(), Condition(lambda: front.secret)),
            GraphemeWidths()]


def _cluster_start(text: str, pos: int) -> int:
    return grapheme_boundary_before(text, pos) if pos > 0 else 0


def _cluster_end(text: str, pos: int) -> int:
    for cluster in iter_graphemes(text, pos):
        return pos + len(cluster)
    return pos


def key_bindings(front: TerminalFrontEnd) -> KeyBindings:
    kb = KeyBindings()
    confirming = Condition(lambda: front.confirming is not None)
    secret = Condition(lambda: front.secret)
    editing = ~is_searching & ~confirming

    @kb.add("enter", filter=editing)
    def _enter(event) -> None:
        front.enter()

    @kb.add(Keys.Any, filter=confirming)
    @kb.add("enter", filter=confirming)
    def _ignore(event) -> None:
        """Only y or n answer the question; other keys do nothing meanwhile."""

    @kb.add("y", filter=confirming)
    @kb.add("Y", filter=confirming)
    def _yes(event) -> None:
        front.confirmed(True)

    @kb.add("n", filter=confirming)
    @kb.add("N", filter=confirming)
    def _no(event) -> None:
        front.confirmed(False)

    @kb.add("c-c")
    def _quit(event) -> None:
        front.quit()

    @kb.add("c-d", filter=editing)
    def _eof_or_delete(event) -> None:
        buffer = event.current_buffer
        if buffer.text:
            _delete(event)
        else:
            front.quit()

    @kb.add("c-l")
    def _clear(event) -> None:
        event.app.renderer.clear()

    @kb.add("tab", filter=editing & ~secret)
    def _complete(event) -> None:
        display_completions_like_readline(event)

    for key in ("up", "down", "c-p", "c-n", "c-r", "c-s", "tab"):
        kb.add(key, filter=secret)(lambda event: None)  # a password has no history

    @kb.add("left", filter=editing)
    @kb.add("c-b", filter=editing)
    def _left(event) -> None:
        buffer = event.current_buffer
        buffer.cursor_position = _cluster_start(buffer.text, buffer.cursor_position)

    @kb.add("right", filter=editing)
    @kb.add("c-f", filter=editing)
    def _right(event) -> None:
        buffer = event.current_buffer
        buffer.cursor_position = _cluster_end(buffer.text, buffer.cursor_position)

    @kb.add("backspace", filter=editing)
    @kb.add("c-h", filter=editing)
    def _backspace(event) -> None:
        buffer = event.current_buffer
        start = _cluster_start(buffer.text, buffer.cursor_position)
        buffer.delete_before_cursor(buffer.cursor_position - start)

    @kb.add("delete", filter=editing)
    def _delete(event) -> None:
        buffer = event.current_buffer
        end = _cluster_end(buffer.text, buffer.cursor_position)
        buffer.delete(end - buffer.cursor_position)

    return kb
