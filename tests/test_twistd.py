"""The real daemon: `twistd chatd` as a subprocess, driven over loopback."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from twisted.trial import unittest

from tests.helpers_hostile import wait_for

TWISTD = str(Path(sys.executable).parent / "twistd")
DEADLINE = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A blocking line client with a deadline on every read."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.buf = b""

    def say(self, *lines: str) -> None:
        self.sock.sendall(b"".join(line.encode() + b"\n" for line in lines))

    def line(self) -> str:
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(f"connection closed; unread: {self.buf!r}")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def until(self, prefix: str) -> str:
        """Skip lines until one starting with prefix; return it."""
        while True:
            line = self.line()
            if line.startswith(prefix):
                return line

    def closed(self) -> bool:
        """True once the server has closed the connection (after what is unread)."""
        while True:
            data = self.sock.recv(65536)
            if not data:
                return True
            self.buf += data

    def close(self) -> None:
        self.sock.close()


def login(port: int, name: str, password: str | None = None) -> Client:
    client = Client(port)
    client.until("? username")
    client.say(name)
    if password is not None:
        client.until("? password")
        client.say(password)
    client.until("* online")
    return client


class TwistdTests(unittest.TestCase):
    def setUp(self):
        self.dir = Path(self.mktemp()).resolve()
        self.dir.mkdir(parents=True)
        self.data = self.dir / "var"
        self.port = free_port()
        self.procs: list[subprocess.Popen] = []

    def tearDown(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(DEADLINE)

    def start(self, *extra: str, log: str = "out.log") -> tuple[subprocess.Popen, Path]:
        out = self.dir / log
        proc = subprocess.Popen(
            [TWISTD, "--pidfile", str(self.dir / "twistd.pid"), "-n", "chatd",
             "--listen", f"tcp:{self.port}:interface=127.0.0.1",
             "--data-dir", str(self.data), *extra],
            stdout=out.open("w"), stderr=subprocess.STDOUT, cwd=self.dir,
        )
        self.procs.append(proc)
        wait_for(lambda: "chatd listening on" in out.read_text() or proc.poll() is not None,
                 "chatd to listen")
        self.assertIsNone(proc.poll(), out.read_text())
        return proc, out

    def stop(self, proc: subprocess.Popen) -> int:
        proc.send_signal(signal.SIGTERM)
        return proc.wait(DEADLINE)

    def test_whole_story_and_restart(self):
        """join, chat, leave, kick and rejoin, ban, refusals; the ban outlives a restart."""
        proc, out = self.start()
        initial = self.data / "initial-admin-password"
        password = wait_for(lambda: initial.exists() and initial.read_text().strip(),
                            "the first-run password")

        intruder = Client(self.port)
        intruder.until("? username")
        intruder.say("admin")
        intruder.until("? password")
        intruder.say("guess")
        self.assertEqual(intruder.until("!"), "! wrong password")
        self.assertTrue(intruder.closed())
        admin = login(self.port, "admin", password)
        alice = login(self.port, "alice")
        bob = login(self.port, "bob")
        alice.until("* bob joined")
        alice.say("hello bob")
        self.assertEqual(bob.until("<"), "<alice> hello bob")
        bob.say("/kick alice")
        self.assertEqual(bob.until("!"), "! permission denied")

        admin.say("/kick bob be nice")
        self.assertEqual(bob.until("!"), "! you were kicked by admin: be nice")
        self.assertTrue(bob.closed())
        self.assertEqual(alice.until("* bob"), "* bob was kicked by admin: be nice")
        bob = login(self.port, "bob")
        admin.say("/ban bob spam")
        self.assertEqual(bob.until("!"), "! you were banned by admin: spam")
        self.assertEqual(alice.until("* bob was"), "* bob was banned by admin: spam")

        carol = login(self.port, "carol")
        carol.say("/quit bye all")
        self.assertEqual(alice.until("* carol left"), "* carol left: bye all")

        self.stop(proc)
        self.assertEqual(alice.until("*"), "* server shutting down")
        self.assertTrue(alice.closed())
        log = out.read_text()
        self.assertNotIn("Traceback", log)
        self.assertIn("failed admin login for admin from 127.0.0.1", log)
        self.assertNotIn(password, log)
        self.assertNotIn("guess", log)

        proc, out = self.start(log="second.log")
        self.assertNotIn("No admin accounts", out.read_text(), "no new admin on the second start")
        again = Client(self.port)
        again.until("? username")
        again.say("BOB")
        self.assertEqual(again.until("!"), "! you are banned: spam")
        self.assertTrue(again.closed())
        self.stop(proc)

    def test_modlog_survives_restart(self):
        """An admin's ban and kick are listed by /modlog after the daemon restarts."""
        proc, out = self.start()
        initial = self.data / "initial-admin-password"
        password = wait_for(lambda: initial.exists() and initial.read_text().strip(),
                            "the first-run password")
        admin = login(self.port, "admin", password)
        bob, carol = login(self.port, "bob"), login(self.port, "carol")
        admin.say("/kick bob be nice")
        self.assertEqual(bob.until("!"), "! you were kicked by admin: be nice")
        admin.say("/ban carol 2h spam")
        self.assertEqual(carol.until("!"), "! you were banned by admin for 2h: spam")
        admin.say("/modlog")
        before = [admin.until("* 2"), admin.until("* 2")]
        self.stop(proc)

        proc, _ = self.start(log="second.log")
        admin = login(self.port, "admin", password)
        admin.say("/modlog 5")
        after = [admin.until("* 2"), admin.until("* 2")]
        self.assertEqual(after, before)
        self.assertRegex(after[0], r"^\* [-0-9]{10} [:0-9]{8}Z kick bob by admin: be nice$")
        self.assertRegex(after[1], r"^\* \S+ \S+ ban carol by admin until \S+ \S+: spam$")
        self.stop(proc)

    def test_port_in_use(self):
        """A port that cannot be bound stops startup with one clear line and exit 1."""
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", self.port))
        blocker.listen()
        self.addCleanup(blocker.close)
        result = subprocess.run(
            [TWISTD, "--pidfile", "", "-n", "chatd", "--listen",
             f"tcp:{self.port}:interface=127.0.0.1", "--data-dir", str(self.data)],
            capture_output=True, text=True, timeout=DEADLINE, cwd=self.dir,
        )
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"chatd: cannot listen on tcp:{self.port}:interface=127.0.0.1: "
                      "Address already in use", result.stdout + result.stderr)
        self.assertNotIn("Traceback", result.stdout + result.stderr)

    def test_daemon_pidfile_and_logfile(self):
        """Without -n chatd daemonizes; --pidfile is written and removed, events go to --logfile."""
        pidfile, logfile = self.dir / "chatd.pid", self.dir / "chatd.log"
        subprocess.run(
            [TWISTD, "--pidfile", str(pidfile), "--logfile", str(logfile), "chatd",
             "--listen", f"tcp:{self.port}:interface=127.0.0.1", "--data-dir", str(self.data)],
            check=True, timeout=DEADLINE, cwd=self.dir,
        )
        pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), "pidfile"))
        try:
            wait_for(lambda: logfile.exists() and "chatd listening on" in logfile.read_text(),
                     "the log file")
            alice = login(self.port, "alice")
            alice.close()
        finally:
            os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not pidfile.exists(), "the pidfile to be removed")
        log = logfile.read_text()
        self.assertIn("alice joined", log)
        self.assertIn("chatd shutting down", log)
