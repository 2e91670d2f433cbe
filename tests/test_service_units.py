"""etc/chatd.service and etc/chatd.socket: valid units, and chatd serving on systemd's socket.

No systemd runs as PID 1 here, so the units are checked with
`systemd-analyze verify`, and socket activation with
`systemd-socket-activate`, which hands a listening socket to a program as
systemd does (tests/ensure-tools.sh installs both).
"""

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from twisted.trial import unittest

from tests.helpers_daemon import spawn
from tests.test_twistd import free_port, login

ROOT = Path(__file__).resolve().parent.parent
ETC = ROOT / "etc"
VENV_BIN = Path(sys.executable).parent
INSTALLED_BIN = "/opt/chatd/bin/"  # where the README installs chatd


def unit_setting(unit: Path, key: str) -> str:
    """The value of key in a unit file, continuation lines joined."""
    text = unit.read_text().replace("\\\n", " ")
    values = [line.split("=", 1)[1].strip() for line in text.splitlines()
              if line.startswith(f"{key}=")]
    if len(values) != 1:
        raise AssertionError(f"{unit.name} has {len(values)} {key}= lines")
    return values[0]


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise unittest.SkipTest(f"{tool} is not installed (tests/ensure-tools.sh installs it)")
    return path


class ServiceUnitTests(unittest.TestCase):
    def test_units_verify(self):
        """systemd-analyze verify accepts both units without a warning.

        verify insists that ExecStart's program exists, so it checks a copy
        of chatd.service whose twistd is this venv's.
        """
        analyze = need("systemd-analyze")
        directory = Path(self.mktemp())
        directory.mkdir()
        service = (ETC / "chatd.service").read_text()
        self.assertIn(INSTALLED_BIN + "twistd", service)
        (directory / "chatd.service").write_text(
            service.replace(INSTALLED_BIN, f"{VENV_BIN}/"))
        shutil.copy(ETC / "chatd.socket", directory)
        result = subprocess.run([analyze, "verify", "chatd.socket", "chatd.service"],
                                capture_output=True, text=True, timeout=60, cwd=directory)
        self.assertEqual((result.returncode, result.stderr.strip()), (0, ""),
                         result.stdout + result.stderr)

    def test_service_serves_on_the_socket(self):
        """ExecStart of chatd.service, handed a socket as chatd.socket would, serves clients."""
        activate = need("systemd-socket-activate")
        exec_start = shlex.split(unit_setting(ETC / "chatd.service", "ExecStart"))
        self.assertEqual(unit_setting(ETC / "chatd.socket", "ListenStream"), "0.0.0.0:4000")
        self.assertIn("--pidfile=", exec_start)
        directory = Path(self.mktemp()).resolve()
        directory.mkdir(parents=True)
        data = directory / "var"
        paths = {INSTALLED_BIN + "twistd": str(VENV_BIN / "twistd"),
                 "/etc/chatd/chatd.toml": str(ETC / "chatd.toml"),
                 "/var/lib/chatd": str(data)}
        argv = [paths.get(arg, arg) for arg in exec_start]
        port = free_port()
        out = directory / "out.log"
        # systemd names every socket it passes (LISTEN_FDNAMES, by default
        # the socket unit's name); Twisted adopts nothing without the names.
        spawn(self, [activate, "--fdname=chatd.socket", "-l", f"127.0.0.1:{port}", *argv],
              out, "Listening on", cwd=directory)
        # The socket is listening before chatd runs: the first client starts it.
        alice = login(port, "alice")
        bob = login(port, "bob")
        alice.until("* bob joined")
        alice.say("hello bob")
        self.assertEqual(bob.until("<"), "<alice> hello bob")
        password = (data / "initial-admin-password").read_text().strip()
        admin = login(port, "admin", password)
        admin.say("/kick bob bye")
        self.assertEqual(bob.until("!"), "! you were kicked by admin: bye")
        log = out.read_text()
        self.assertIn("chatd listening on systemd:domain=INET:index=0", log)
        self.assertIn(f"(127.0.0.1:{port})", log)
        for client in (alice, bob, admin):
            client.close()
