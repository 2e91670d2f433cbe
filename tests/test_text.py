"""What may reach a terminal, and what a username may be."""

from twisted.trial import unittest

from chatd.core.text import clean, name_key, valid_name


class CleanTests(unittest.TestCase):
    def test_plain_text_untouched(self):
        """Ordinary text, including non-Latin scripts and emoji, arrives as typed."""
        for text in ["hello, world!", "naïve café", "日本語のテキスト", "🙂 ok", "a\u00a0b"]:
            self.assertEqual(clean(text), text)

    def test_escape_sequences_removed(self):
        """An ANSI colour or cursor sequence cannot reach another terminal: ESC goes."""
        self.assertEqual(clean("\x1b[31mred\x1b[0m"), "[31mred[0m")
        self.assertNotIn("\x1b", clean("\x1b]0;title\x07x"))

    def test_c0_c1_and_del_removed(self):
        """NUL, BEL, backspace, DEL and C1 controls are removed; a tab becomes a space."""
        self.assertEqual(clean("a\x00b\x07c\x08d\te\x7ff"), "abcd ef")
        self.assertEqual(clean("x\x85y\x9bz\u0090w"), "xyzw")

    def test_bidi_and_zero_width_removed(self):
        """Direction overrides and invisible characters cannot disguise text."""
        sneaky = "ok\u202eevil\u202c \u2066x\u2069 zero\u200bwidth\u2060\ufeff\u2028end"
        self.assertEqual(clean(sneaky), "okevil x zerowidthend")
        self.assertEqual(clean("soft\u00adhy \u200e\u200f\u061cmarks\u202a\u202d"), "softhy marks")

    def test_joiners_and_emoji_tags_kept(self):
        """Persian with ZWNJ, a ZWJ family emoji, a tag-sequence flag and an
        emoji with a variation selector arrive exactly as typed."""
        for text in [
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian "I want"
            "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # family: man, woman, girl
            "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
            "\u2764\ufe0f thanks",
        ]:
            self.assertEqual(clean(text), text)

    def test_joiners_with_nothing_to_join_removed(self):
        """Joiners at the ends of a line or next to a space join nothing; a
        line of them alone is blank."""
        self.assertEqual(clean("\u200dhi\u200c"), "hi")
        self.assertEqual(clean("\u200d\ufe0f\U000e0067\u200c"), "")
        self.assertEqual(clean("a\u200c b \u200dc"), "a b c")

    def test_invisible_characters_carry_no_hidden_text(self):
        """Tag characters outside a flag (they spell ASCII no one sees), runs
        of variation selectors or joiners (they can encode bytes) and a
        line of nothing else are cut down to what writing needs."""
        tags = "".join(chr(0xE0000 + ord(c)) for c in "secret")
        self.assertEqual(clean("hi" + tags), "hi")
        self.assertEqual(clean(" " + tags).strip(), "")
        self.assertEqual(clean("\U0001f3f4" + tags * 2 + "\U000e007f"), "\U0001f3f4")
        self.assertEqual(clean("a" + "\ufe01\ufe02\U000e0105" * 8), "a\ufe01")
        self.assertEqual(clean(" \ufe0f"), " ")
        self.assertEqual(clean("x\u200c\u200d\u200c\u200dy"), "x\u200cy")
        # Joiners and selectors taking turns: each selector one byte of "secret".
        chain = "".join("\u200d" + chr(0xE0100 + ord(c) - 0x60) for c in "secret")
        self.assertEqual(clean("a" + chain), "a\U000e0113")

    def test_other_invisible_characters_removed(self):
        """Invisible characters that are not format characters (Unicode's other
        default-ignorables: Hangul fillers, combining grapheme joiner, Khmer
        inherent vowels, Mongolian selectors, unassigned ignorables) go too, so
        they cannot make a line that looks empty."""
        for text in ["\u3164", "\u034f\u034f", "\u115f\u1160", "\uffa0", "\u17b4",
                     "\u180b", "\u2065", "\U000e0080\U000e0081", "\U000e01f0"]:
            self.assertEqual(clean("hi" + text), "hi", repr(text))


class NameTests(unittest.TestCase):
    def test_valid_names(self):
        """Names of 1-24 ASCII letters, digits, '_', '-', '.' are accepted."""
        for name in ["a", "Alice", "bob_2", "x-y.z", "A" * 24]:
            self.assertTrue(valid_name(name), name)

    def test_invalid_names(self):
        """Empty, too long, spaces, brackets or non-ASCII names are refused."""
        for name in ["", "A" * 25, "two words", "<bob>", "[x]", "ünï", "a\n", "@op", "*"]:
            self.assertFalse(valid_name(name), name)

    def test_names_unique_ignoring_case(self):
        """Alice and ALICE are the same person as far as uniqueness goes."""
        self.assertEqual(name_key("Alice"), name_key("aLICE"))
