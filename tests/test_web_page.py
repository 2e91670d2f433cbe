"""The browser page's files: safe under a strict CSP, and its script checked in node."""

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from twisted.trial import unittest

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "chatd" / "web" / "static"
NODE_TEST = ROOT / "tests" / "js" / "page_test.mjs"
DEADLINE = 60


class _Tags(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags() -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed((STATIC / "index.html").read_text())
    return parser.tags


class StaticFilesTests(unittest.TestCase):
    def test_only_the_three_files(self):
        """The page is index.html, app.js and app.css: nothing to build, nothing else served."""
        self.assertEqual(sorted(p.name for p in STATIC.iterdir()),
                         ["app.css", "app.js", "index.html"])

    def test_no_inline_script_or_style(self):
        """Under script-src 'self' and style-src 'self' nothing inline would run or apply:
        no <style>, no <script> without src, no style= or on...= attribute."""
        tags = _tags()
        self.assertNotIn("style", [tag for tag, _ in tags])
        scripts = [attrs for tag, attrs in tags if tag == "script"]
        self.assertEqual(scripts, [{"src": "/static/app.js", "defer": None}])
        self.assertIn(("link", {"rel": "stylesheet", "href": "/static/app.css"}), tags)
        for tag, attrs in tags:
            for name in attrs:
                self.assertFalse(name == "style" or name.startswith("on"), (tag, name))

    def test_script_never_parses_html(self):
        """User text goes in as text: app.js has no innerHTML or other HTML-parsing call,
        and never sets a style attribute (the CSP would refuse it)."""
        script = (STATIC / "app.js").read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                     "eval(", "Function(", 'setAttribute("style"', ".style."):
            self.assertNotIn(sink, script)

    def test_nothing_fetched_from_elsewhere(self):
        """No CDN or other site: no http(s) URL in any of the files, no fetch at all."""
        for path in STATIC.iterdir():
            text = path.read_text()
            self.assertIsNone(re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I),
                              path.name)
        script = (STATIC / "app.js").read_text()
        self.assertNotIn("fetch(", script)
        self.assertNotIn("XMLHttpRequest", script)
        self.assertIn('location.host + "/ws"', script)

    def test_ids_for_browser_tests(self):
        """The elements browser tests find by id exist, and the message list is a live log."""
        ids = {attrs.get("id"): (tag, attrs) for tag, attrs in _tags() if attrs.get("id")}
        for name in ("login-form", "login-name", "login-password", "message-input", "messages",
                     "rooms", "members", "status", "room-title"):
            self.assertIn(name, ids)
        messages = ids["messages"][1]
        self.assertEqual((messages["role"], messages["aria-live"]), ("log", "polite"))
        self.assertEqual(ids["login-password"][1]["type"], "password")


class ScriptTests(unittest.TestCase):
    def test_page_script_in_node(self):
        """app.js renders markup in messages as text, styles each kind, backs off on
        reconnect, walks input history, and logs in, asks the password, switches rooms
        and logs in again after a drop (tests/js/page_test.mjs, with a DOM stub)."""
        node = shutil.which("node")
        if node is None:
            raise unittest.SkipTest("node is not installed")
        result = subprocess.run([node, "--test", str(NODE_TEST)], capture_output=True,
                                text=True, timeout=DEADLINE, cwd=ROOT)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("# fail 0", result.stdout)
