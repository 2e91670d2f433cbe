"""The first-run admin password reaches the operator, and never a log file."""

import os
import select
import signal
import stat
import subprocess
import sys
from pathlib import Path

from twisted.trial import unittest

from tests.helpers_daemon import spawn
from tests.helpers_hostile import wait_for
from tests.test_twistd import DEADLINE, TWISTD, free_port, login

CHATD_ADMIN = str(Path(sys.executable).parent / "chatd-admin")


class FirstPasswordTests(unittest.TestCase):
    def setUp(self):
        self.dir = Path(self.mktemp()).resolve()
        self.dir.mkdir(parents=True)
        self.data = self.dir / "var"
        self.port = free_port()
        self.chatd = ["chatd", "--listen", f"tcp:{self.port}:interface=127.0.0.1",
                      "--data-dir", str(self.data)]

    def test_daemon_mode(self):
        """Daemonized with --logfile: the password is in a 0600 file, not in the log.

        Changing it with chatd-admin deletes the file.
        """
        pidfile, logfile = self.dir / "chatd.pid", self.dir / "chatd.log"
        subprocess.run([TWISTD, "--pidfile", str(pidfile), "--logfile", str(logfile),
                        *self.chatd], check=True, timeout=DEADLINE, cwd=self.dir)
        pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), "pidfile"))
        self.addCleanup(lambda: os.kill(pid, signal.SIGTERM) if pidfile.exists() else None)
        wait_for(lambda: logfile.exists() and "chatd room" in logfile.read_text(), "the log")
        path = self.data / "initial-admin-password"
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        password = path.read_text().strip()
        login(self.port, "admin", password).close()
        self.assertNotIn(password, logfile.read_text())
        self.assertIn(f"its password is in {path}", logfile.read_text())

        subprocess.run([CHATD_ADMIN, "--data-dir", str(self.data), "add", "admin"],
                       input="a brand new password\n", text=True, check=True,
                       capture_output=True, timeout=DEADLINE)
        self.assertFalse(path.exists(), "the spent password's file is deleted")
        login(self.port, "admin", "a brand new password").close()
        self.assertNotIn(password, logfile.read_text())

    def test_foreground_on_a_terminal(self):
        """`twistd -n` on a terminal shows the password there once; the log has it not."""
        controller, terminal = os.openpty()
        self.addCleanup(os.close, controller)
        logfile = self.dir / "out.log"
        spawn(self, [TWISTD, "--pidfile=", "-n", *self.chatd], logfile, "chatd room",
              stderr=terminal, cwd=self.dir)
        os.close(terminal)
        shown = b""

        def read_terminal():
            nonlocal shown
            if select.select([controller], [], [], 0.1)[0]:
                shown += os.read(controller, 4096)
            return b"Change it with" in shown

        wait_for(read_terminal, "the password on the terminal")
        password = shown.split(b"password: ")[1].split()[0].decode()
        login(self.port, "admin", password).close()
        log = logfile.read_text()
        self.assertNotIn(password, log)
        self.assertIn("showed its password on the terminal", log)
        self.assertFalse((self.data / "initial-admin-password").exists())


