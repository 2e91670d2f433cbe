"""Names and text as every front end needs them: the name rule, and text
cleaned of whatever could act on a terminal or hide text.

The kinds of line belong to the line protocol (chatd.line.codec).
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
# Format characters that writing needs: the zero-width non-joiner and
# joiner (Persian and Indic words, emoji sequences such as a family) and the
# emoji tag characters (subdivision flags).  Variation selectors are marks
# (Mn), so the category filter keeps them anyway.
_KEEP = frozenset("\u200c\u200d") | frozenset(map(chr, range(0xE0020, 0xE0080)))
# Invisible characters that are not format characters, so the category
# filter misses them: the rest of Unicode's Default_Ignorable_Code_Point
# (combining grapheme joiner, Hangul fillers, Khmer inherent vowels,
# Mongolian selectors, unassigned ignorables...).  They go, like Cf.
_IGNORABLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2065\u3164\uffa0"
    "\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0080-\U000e00ff"
    "\U000e01f0-\U000e0fff]")
# The characters writing needs are each kept only where they do their job,
# so that none can make an invisible line or carry hidden text (tags spell
# ASCII; runs of selectors or joiners can encode bytes):
_SPECIAL = re.compile("[\u200c\u200d\ufe00-\ufe0f\U000e0000-\U000e007f\U000e0100-\U000e01ef]")
# tags only inside a subdivision flag: black flag, 2-6 tag letters or digits,
# cancel tag (as in the flag of Scotland, "gbsct");
_TAGS = re.compile("(\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{2,6}\U000e007f)"
                   "|[\U000e0000-\U000e007f]")
_VS = "\ufe00-\ufe0f\U000e0100-\U000e01ef"
# A visible character: not a space, joiner, selector or tag.
_BASE = f"[^\\s\u200c\u200d{_VS}\U000e0000-\U000e007f]"
# one joiner after a visible character (or its selector) and before a
# visible character, none anywhere else;
_JOINERS = re.compile(f"(?<=[^\\s\u200c\u200d\U000e0000-\U000e007f])"
                      f"([\u200c\u200d])[\u200c\u200d]*+(?={_BASE})|[\u200c\u200d]+")
# one variation selector right after a visible character, none anywhere else.
_SELECTORS = re.compile(f"(?<={_BASE})([{_VS}])[{_VS}]*|[{_VS}]+")
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
    text = _IGNORABLE.sub("", text)
    if _SPECIAL.search(text) is None:
        return text
    first = lambda match: match.group(1) or ""  # noqa: E731
    text = _TAGS.sub(first, text)
    text = _JOINERS.sub(first, text)
    return _SELECTORS.sub(first, text)


# IRC's formatting codes: bold, colour, hex colour, reset, monospace,
# reverse, italic, strikethrough, underline.  Colour takes up to two
# digits, a comma and two more (hex colour: six hex digits, twice).
_FORMATTING = re.compile("([\x02\x03\x04\x0f\x11\x16\x1d\x1e\x1f])")
_FORMATTING_WITH_ARGS = re.compile(
    "\x03(?:[0-9]{1,2}(?:,[0-9]{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?"
    "|[\x02\x0f\x11\x16\x1d\x1e\x1f]")


def clean_keeping_formatting(text: str) -> str:
    """clean(text), except that IRC's formatting codes stay (they change how
    text looks in an IRC client, and do nothing else there).  Only for IRC
    clients: anyone else gets strip_formatting() of it."""
    if text.isascii() and text.isprintable():
        return text
    parts = _FORMATTING.split(text)
    parts[::2] = [clean(part) for part in parts[::2]]
    return "".join(parts)


def strip_formatting(text: str) -> str:
    """text without IRC's formatting codes, colour numbers included."""
    return _FORMATTING_WITH_ARGS.sub("", text)


def with_reason(text: str, reason: str) -> str:
    """`text: reason`, or text alone when there is no reason."""
    return f"{text}: {reason}" if reason else text


def format_duration(seconds: float) -> str:
    """30 -> 30s, 7200 -> 2h: the largest unit that divides it exactly."""
    seconds = int(seconds)
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def plain(text: str) -> str:
    """text as everyone may see it: clean(), and IRC formatting codes
    removed with their colour numbers (a topic, a reason typed on IRC)."""
    return strip_formatting(clean_keeping_formatting(text))
