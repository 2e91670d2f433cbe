"""What may go over the wire: names, cleaned text, and the kinds of line.

Every line the server sends starts with its kind, so that no input from one
user can pass for another user's message or for a server notice:

    ? prompt      <name> message     [name] private     [->name] private sent
    + name action     * notice       ! error
"""

import re
import unicodedata

NAME_MAX = 24
_NAME = re.compile(rf"[A-Za-z0-9_.\-]{{1,{NAME_MAX}}}\Z")
NAME_RULE = f"1-{NAME_MAX} letters, digits, '_', '-' or '.'"

# Categories that never reach another user's terminal: controls (C0, C1,
# DEL), format characters (bidi embeddings, overrides, isolates and marks,
# zero-width space, word joiner, soft hyphen, BOM), line and paragraph
# separators, surrogates.
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# Format characters that writing needs, so they stay inside a message: the
# zero-width non-joiner and joiner (Persian and Indic words, emoji
# sequences such as a family) and the emoji tag characters (subdivision
# flags).  None of them moves text or hides it.  Variation selectors are
# marks (Mn), not format characters, so they stay anyway.
_JOINERS = "\u200c\u200d"
_KEEP = frozenset(_JOINERS) | frozenset(map(chr, range(0xE0020, 0xE0080)))
# At the start of a line these join or modify nothing, and a line of them
# alone would be an invisible message: they go there, and joiners at the end.
_LEADING = re.compile("\\A[\u200c\u200d\ufe00-\ufe0f\U000e0020-\U000e007f\U000e0100-\U000e01ef]+")
_TRAILING = re.compile("[\u200c\u200d]+\\Z")
_ASCII_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")


def valid_name(name: str) -> bool:
    """True if name is a well-formed username (ASCII, so casefolding is lower())."""
    return _NAME.match(name) is not None


def name_key(name: str) -> str:
    """The key under which a name is unique: names differ only beyond case."""
    return name.lower()


def clean(text: str) -> str:
    """Remove every character that could act on a terminal or hide text.

    A tab becomes a space (it separates words); the rest of the text is
    kept as it was typed, joiners and emoji tags included.
    """
    if "\t" in text:
        text = text.replace("\t", " ")
    if text.isascii():
        if text.isprintable():
            return text
        return _ASCII_CONTROLS.sub("", text)
    text = "".join(
        ch for ch in text
        if ch in _KEEP or unicodedata.category(ch) not in _DROP_CATEGORIES
    )
    return _TRAILING.sub("", _LEADING.sub("", text))


def encode(line: str) -> bytes:
    """One server line on the wire: UTF-8, ended by CRLF."""
    return (line + "\r\n").encode("utf-8")


def notice(text: str) -> str:
    return "* " + text


def error(text: str) -> str:
    return "! " + text


def prompt(text: str) -> str:
    return "? " + text
