"""What an operator expects of any daemon: --version, python -m, a licence, the sample config."""

import configparser
import subprocess
import sys
from pathlib import Path

from twisted.trial import unittest

import chatd
from chatd.tap import SAMPLE_CONFIG, Options
from tests.helpers_daemon import spawn
from tests.test_twistd import DEADLINE, TWISTD, free_port, login

ROOT = Path(__file__).resolve().parent.parent


class ConventionTests(unittest.TestCase):
    def test_version(self):
        """`twistd chatd --version` prints chatd's version, the one setup.cfg builds."""
        result = subprocess.run([TWISTD, "chatd", "--version"], capture_output=True,
                                text=True, timeout=DEADLINE)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.startswith(f"chatd {chatd.__version__} "),
                        result.stdout)
        setup = configparser.ConfigParser()
        setup.read(ROOT / "setup.cfg")
        self.assertEqual(setup["metadata"]["version"], "attr: chatd.__version__")

    def test_help_names_an_installed_sample_config(self):
        """--help points at the sample config inside the package, which is
        etc/chatd.toml; the web page's files ship with it too."""
        self.assertIn(f"see {SAMPLE_CONFIG} for every key", Options.longdesc)
        self.assertEqual(SAMPLE_CONFIG.resolve(), ROOT / "etc" / "chatd.toml")
        setup = configparser.ConfigParser()
        setup.read(ROOT / "setup.cfg")
        self.assertEqual(setup["options.package_data"]["chatd"].split(),
                         ["etc/chatd.toml", "web/static/*"])

    def test_licence_matches_setup(self):
        """setup.cfg declares MIT, and LICENSE is the MIT licence."""
        setup = configparser.ConfigParser()
        setup.read(ROOT / "setup.cfg")
        self.assertEqual(setup["metadata"]["license"], "MIT")
        text = (ROOT / "LICENSE").read_text()
        self.assertTrue(text.startswith("MIT License\n\nCopyright (c) 2026 the chatd authors"))

    def test_python_m_chatd_short_help(self):
        """`python -m chatd -h` is --help: chatd's usage, not twistd's."""
        result = subprocess.run([sys.executable, "-m", "chatd", "-h"],
                                capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.startswith("Usage: python -m chatd [--listen"),
                        result.stdout)

    def test_python_m_chatd(self):
        """`python -m chatd --help` helps; `python -m chatd OPTIONS` serves in the foreground."""
        result = subprocess.run([sys.executable, "-m", "chatd", "--help"],
                                capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.startswith("Usage: python -m chatd [--listen"))
        self.assertIn("--data-dir", result.stdout)

        directory = Path(self.mktemp()).resolve()
        directory.mkdir(parents=True)
        out, port = directory / "out.log", free_port()
        spawn(self, [sys.executable, "-m", "chatd", "--data-dir", str(directory / "var"),
                     "--listen", f"tcp:{port}:interface=127.0.0.1"],
              out, "chatd room", cwd=directory)
        login(port, "alice").close()
        self.assertFalse((directory / "twistd.pid").exists(), "no pidfile in the foreground")


class LayerTests(unittest.TestCase):
    """The rule that lets several front ends share one core (docs/architecture.md)."""

    def test_core_imports_no_front_end(self):
        """Nothing in chatd/core imports chatd.line, chatd.client, the wiring or
        anything else outside the core but settings and file safety: a new front
        end (IRC, web) gets the core as it is."""
        import ast

        allowed = ("chatd.core", "chatd.config", "chatd.safefile")
        core = ROOT / "chatd" / "core"
        for path in sorted(core.glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module] if node.module != "chatd" else [
                        f"chatd.{alias.name}" for alias in node.names]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                else:
                    continue
                for name in names:
                    if name == "chatd" or name.startswith("chatd."):
                        self.assertTrue(name.startswith(allowed),
                                        f"{path.name} imports {name}")

    def test_modules_stay_small(self):
        """No module grows past about 400 lines (STYLE.md: split it by what it holds)."""
        for path in sorted((ROOT / "chatd").rglob("*.py")):
            lines = len(path.read_text().splitlines())
            self.assertLessEqual(lines, 420, f"{path.relative_to(ROOT)} has {lines} lines")
