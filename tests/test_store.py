"""Bans on disk: schema versions, and a ban outliving the process."""

import sqlite3
from pathlib import Path

from twisted.trial import unittest

from chatd.store import MIGRATIONS, Ban, BanStore, SchemaTooNew, migrate


class StoreTests(unittest.TestCase):
    def setUp(self):
        self.path = Path(self.mktemp())
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def test_ban_survives_reopen(self):
        """A committed ban is there when the daemon starts again."""
        store = BanStore.open(self.path)
        d = store.add(Ban("Mallory", "boss", "spam", 1700000000.0))
        d.addCallback(lambda _: store.close())

        def reopened(_):
            again = BanStore.open(self.path)
            self.addCleanup(again.close)
            self.assertEqual(again.get("mallory"),
                             Ban("Mallory", "boss", "spam", 1700000000.0))
            return again.remove("MALLORY").addCallback(lambda _: again)

        def removed(again):
            again.close()
            self.assertIsNone(BanStore.open(self.path).get("mallory"))

        return d.addCallback(reopened).addCallback(removed)

    def test_schema_versioned(self):
        """A new database is stamped with the current schema version."""
        conn = sqlite3.connect(self.path)
        migrate(conn)
        self.assertEqual(conn.execute("PRAGMA user_version").fetchone()[0],
                         len(MIGRATIONS))
        migrate(conn)  # running it again changes nothing
        conn.close()

    def test_newer_schema_refused(self):
        """A database from a newer chatd is refused rather than misread."""
        conn = sqlite3.connect(self.path)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
        conn.close()
        self.assertRaises(SchemaTooNew, BanStore.open, self.path)

    def test_failed_write_leaves_no_ban(self):
        """If the database write fails, the ban is not in force."""
        from twisted.internet import defer

        store = BanStore(lambda fn: defer.fail(sqlite3.OperationalError("disk full")), {})
        self.failureResultOf(store.add(Ban("x", "boss", "", 0.0)), sqlite3.OperationalError)
        self.assertIsNone(store.get("x"))
