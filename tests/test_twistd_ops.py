"""The real daemon's metrics endpoint and JSON logs, as an operator uses them."""

import json
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from twisted.trial import unittest

from chatd.core.auth import AdminFile
from tests.helpers_hostile import wait_for
from tests.test_metrics import metric
from tests.test_twistd import DEADLINE, TWISTD, Client, free_port, login


class TwistdOpsTests(unittest.TestCase):
    def setUp(self):
        self.dir = Path(self.mktemp()).resolve()
        self.dir.mkdir(parents=True)
        self.data = self.dir / "var"
        AdminFile(self.data / "admins").set_password("boss", "boss-password")
        self.port = free_port()
        self.proc = None

    def tearDown(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(DEADLINE)

    def start(self, *twistd_args: str, chatd_args=(), ready: str = "chatd room"):
        """Run `twistd ARGS -n chatd ...`; wait until stdout shows ready."""
        self.out, self.err = self.dir / "stdout", self.dir / "stderr"
        self.proc = subprocess.Popen(
            [TWISTD, "--pidfile", "", "-n", *twistd_args, "chatd",
             "--listen", f"tcp:{self.port}:interface=127.0.0.1",
             "--data-dir", str(self.data), *chatd_args],
            stdout=self.out.open("w"), stderr=self.err.open("w"), cwd=self.dir,
        )
        wait_for(lambda: ready in self.out.read_text() or self.proc.poll() is not None,
                 "chatd to start")
        self.assertIsNone(self.proc.poll(), self.out.read_text() + self.err.read_text())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(DEADLINE)

    def fetch(self, url: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, timeout=DEADLINE) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, ""

    def test_metrics_move_when_users_chat(self):
        """curl /metrics with --metrics tcp:PORT:interface=127.0.0.1 shows chat moving counters."""
        metrics_port = free_port()
        self.start(chatd_args=["--metrics", f"tcp:{metrics_port}:interface=127.0.0.1"],
                   ready="chatd metrics on")
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        status, before = self.fetch(url)
        self.assertEqual(status, 200)
        alice, bob = login(self.port, "alice"), login(self.port, "bob")
        alice.until("* bob joined")
        alice.say("hello bob")
        self.assertEqual(bob.until("<"), "<alice> hello bob")
        _, after = self.fetch(url)
        self.assertEqual(metric(before, "chatd_logins_total"), 0)
        self.assertEqual(metric(after, "chatd_logins_total"), 2)
        self.assertEqual(metric(after, "chatd_members"), 2)
        for name in ("chatd_lines_received_total", "chatd_lines_delivered_total",
                     "chatd_bytes_sent_total"):
            self.assertGreater(metric(after, name), metric(before, name), name)
        self.assertEqual(self.fetch(f"http://127.0.0.1:{metrics_port}/")[0], 404)
        alice.close()
        bob.close()
        self.stop()

    def test_json_logs(self):
        """--logger chatd.logs.json_observer: every stdout line is a JSON event, no password."""
        self.start("--logger", "chatd.logs.json_observer")
        boss = login(self.port, "boss", "boss-password")
        guesser = Client(self.port)
        guesser.until("? username")
        guesser.say("boss2")
        guesser.close()
        boss.say("/quit")
        wait_for(lambda: "boss left" in self.out.read_text(), "the leave event")
        self.stop()
        text = self.out.read_text()
        events = [json.loads(line) for line in text.splitlines()]
        listening = [e for e in events if e["text"].startswith("chatd listening on")]
        self.assertEqual(len(listening), 1, text)
        self.assertEqual(listening[0]["namespace"], "chatd.tap")
        self.assertEqual(listening[0]["level"], "info")
        self.assertEqual(listening[0]["endpoint"], f"tcp:{self.port}:interface=127.0.0.1")
        joined = next(e for e in events if e["text"] == "boss joined from 127.0.0.1")
        self.assertEqual((joined["name"], joined["address"]), ("boss", "127.0.0.1"))
        self.assertNotIn("boss-password", text)
        self.assertEqual(self.err.read_text(), "")
