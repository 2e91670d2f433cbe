"""The test helper that runs a real redis-server: it comes back empty after a restart."""

from pathlib import Path

from twisted.trial import unittest

from tests.helpers_redis import RedisServer, inline, ping


class RedisServerTests(unittest.TestCase):
    def test_start_stop_restart_empty(self):
        """The server answers on its port; stopped, nothing answers; started
        again on the same port it answers with nothing kept, which is what
        the cluster tests rely on to show a Redis that lost everything."""
        redis = RedisServer(self, Path(self.mktemp()).resolve()).start()
        port = redis.port
        self.assertEqual(redis.url, f"redis://127.0.0.1:{port}/0")
        self.assertEqual(inline(port, "SET chatd:probe kept"), b"+OK\r\n")
        self.assertEqual(inline(port, "GET chatd:probe"), b"$4\r\nkept\r\n")
        redis.stop()
        self.assertFalse(ping(port))
        redis.start()
        self.assertEqual(redis.port, port)
        self.assertEqual(inline(port, "GET chatd:probe"), b"$-1\r\n")
        self.assertEqual(inline(port, "DBSIZE"), b":0\r\n")
