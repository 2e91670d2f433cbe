"""How server lines look at a terminal: colours by kind of line, names in
colours of their own, your own name highlighted, private messages marked.

Plain ANSI SGR strings, so this needs no terminal library; the terminal
front end (chatd.client.tui) hands them to prompt_toolkit's ANSI().  The
text was made safe by session.printable() first, so these are the only
escapes in it.
"""

from __future__ import annotations

import re
import zlib

from chatd.line.codec import kind_of

RESET = "\x1b[0m"
DIM, BOLD, RED, OWN = "\x1b[2m", "\x1b[1m", "\x1b[31m", "\x1b[1;33m"
# Name colours: no red (errors) and no yellow (your own name).
PALETTE = ["32", "34", "35", "36", "92", "94", "95", "96"]
# A private message was said to you wherever you are, not in the room you
# are looking at: it says so.
PRIVATE_MARK = "(private)"


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
        if kind in ("private", "sent"):
            arrow = "->" if kind == "sent" else ""
            return f"{self.paint(BOLD, PRIVATE_MARK)} {self.paint(BOLD, '[' + arrow)}" \
                   f"{self.name(name)}{self.paint(BOLD, ']')} " \
                   f"{self.paint(BOLD, text) if kind == 'private' else text}"
        if kind in ("notice", "history"):
            return self.paint(DIM, line)
        if kind == "error":
            return self.paint(RED, line)
        return line
