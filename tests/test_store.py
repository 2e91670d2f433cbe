"""Bans on disk: schema versions, and a ban outliving the process."""

import sqlite3
from pathlib import Path

from twisted.trial import unittest

from chatd.core.store import MIGRATIONS, Ban, BanStore, SchemaTooNew, migrate


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
            self.assertEqual(again.get("mallory", 1700000001.0),
                             Ban("Mallory", "boss", "spam", 1700000000.0))
            return again.remove("MALLORY").addCallback(lambda _: again)

        def removed(again):
            again.close()
            third = BanStore.open(self.path)
            self.addCleanup(third.close)
            self.assertIsNone(third.get("mallory", 1700000001.0))

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
        self.assertIsNone(store.get("x", 1.0))

    def test_version_1_database_upgraded(self):
        """A database written by the first schema keeps its bans after the upgrade."""
        conn = sqlite3.connect(self.path)
        conn.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
        conn.execute("INSERT INTO bans VALUES ('bob', 'Bob', 'boss', 'spam', 5.0, NULL)")
        conn.commit()
        conn.close()
        store = BanStore.open(self.path, now=10.0)
        self.addCleanup(store.close)
        self.assertEqual(store.get("bob", 10.0), Ban("Bob", "boss", "spam", 5.0))

    def test_timed_ban_expires(self):
        """A timed ban is in force until it expires, and is gone from disk after."""
        store = BanStore.in_memory()
        self.successResultOf(store.add(Ban("eve", "boss", "", 100.0, expires=160.0)))
        self.assertIsNotNone(store.get("EVE", 159.0))
        self.assertIsNone(store.get("eve", 160.0))
        self.assertEqual(store.all(159.0), [Ban("eve", "boss", "", 100.0, 160.0)])
        self.assertEqual(store.all(160.0), [])

    def test_expired_bans_purged_at_open(self):
        """Starting after a timed ban ended leaves no trace of it."""
        store = BanStore.open(self.path, now=0.0)
        d = store.add(Ban("eve", "boss", "", 0.0, expires=50.0))
        d.addCallback(lambda _: store.close())

        def reopen(_):
            again = BanStore.open(self.path, now=60.0)
            again.close()
            conn = sqlite3.connect(self.path)
            self.addCleanup(conn.close)
            self.assertEqual(conn.execute("SELECT COUNT(*) FROM bans").fetchone(), (0,))

        return d.addCallback(reopen)

    def test_address_ban(self):
        """A ban made with an address covers that address until it is lifted."""
        store = BanStore.in_memory()
        self.successResultOf(store.add(Ban("bob", "boss", "", 0.0, address="10.9.8.7")))
        self.assertEqual(store.for_address("10.9.8.7", 1.0).name, "bob")
        self.assertIsNone(store.for_address("10.9.8.6", 1.0))
        self.successResultOf(store.remove("bob"))
        self.assertIsNone(store.for_address("10.9.8.7", 1.0))
