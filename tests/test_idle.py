"""[limits] idle_timeout on the protocol with a Clock, and the new keys' checks."""

from pathlib import Path

from twisted.trial import unittest

from chatd import config
from tests.helpers import ProtocolHarness


class IdleTimeoutTests(unittest.TestCase):
    def harness(self, **limits) -> ProtocolHarness:
        path = Path(self.mktemp())
        path.mkdir(parents=True)
        return ProtocolHarness(path, **limits)

    def test_idle_user_disconnected(self):
        """A user who sends nothing for idle_timeout seconds gets `! idle timeout`
        and is closed; the room sees `* NAME left (idle timeout)`."""
        h = self.harness(idle_timeout=300)
        alice, bob = h.login("alice"), h.login("bob")
        h.read(alice)
        h.clock.advance(200)
        h.send(bob, "still here")
        h.clock.advance(99)
        self.assertFalse(h.closed(alice))
        h.clock.advance(1)
        self.assertEqual(h.read(alice), ["<bob> still here", "! idle timeout"])
        self.assertTrue(h.closed(alice))
        self.assertEqual(h.read(bob), ["* alice left (idle timeout)"])
        self.assertFalse(h.closed(bob))
        h.close(alice)
        self.assertEqual(h.read(bob), [], "the room is told once")

    def test_anything_sent_keeps_a_user_in(self):
        """Each line, blank ones too, restarts the count: a user who speaks
        more often than idle_timeout stays, and goes idle_timeout after the last."""
        h = self.harness(idle_timeout=300)
        alice = h.login("alice")
        for i in range(10):
            h.clock.advance(250)
            h.send(alice, f"line {i}" if i % 2 else "")
        h.clock.advance(299)
        self.assertFalse(h.closed(alice))
        h.clock.advance(1)
        self.assertEqual(h.read(alice)[-1], "! idle timeout")

    def test_off_by_default(self):
        """With idle_timeout 0 (the default) a silent user is never disconnected."""
        h = self.harness()
        alice = h.login("alice")
        h.clock.advance(30 * 24 * 3600)
        self.assertFalse(h.closed(alice))
        self.assertEqual(h.read(alice), [])

    def test_before_login_the_login_timeout_applies(self):
        """idle_timeout is for users in the room; an unfinished login still
        gets `! login timed out`."""
        h = self.harness(idle_timeout=5, login_timeout=30)
        proto = h.connect()
        h.read(proto)
        h.clock.advance(29)
        self.assertFalse(h.closed(proto))
        h.clock.advance(1)
        self.assertEqual(h.read(proto), ["! login timed out"])


class NewKeysTests(unittest.TestCase):
    def load(self, text: str) -> config.Settings:
        path = Path(self.mktemp())
        path.write_text("[limits]\n" + text + "\n")
        return config.load(path)

    def test_values_accepted(self):
        """idle_timeout may be 0 (off) or seconds; keepalive takes whole seconds."""
        limits = self.load("idle_timeout = 0\nkeepalive_idle = 30\n"
                           "keepalive_interval = 5\nkeepalive_count = 3").limits
        self.assertEqual((limits.idle_timeout, limits.keepalive_idle,
                          limits.keepalive_interval, limits.keepalive_count), (0, 30, 5, 3))
        self.assertEqual(self.load("idle_timeout = 900").limits.idle_timeout, 900.0)

    def test_bad_values_refused(self):
        """A value the kernel or the timer could not use is a clear config error."""
        for text, expected in [
            ("idle_timeout = -1", "limits.idle_timeout must be at least 0 (off)"),
            ("idle_timeout = nan", "limits.idle_timeout must be at least 0 (off)"),
            ("keepalive_idle = 0", "limits.keepalive_idle must be more than 0"),
            ("keepalive_idle = 40000", "limits.keepalive_idle must be at most 32767"),
            ("keepalive_interval = 32768", "limits.keepalive_interval must be at most 32767"),
            ("keepalive_count = 128", "limits.keepalive_count must be at most 127"),
            ("keepalive_interval = 1.5", "limits.keepalive_interval must be a int"),
            ("login_timeout = 0", "limits.login_timeout must be more than 0"),
        ]:
            error = self.assertRaises(config.ConfigError, self.load, text)
            self.assertIn(expected, str(error))
