"""Rooms, history and registered names end to end: a real `twistd -n chatd` on loopback.

The scenario of issue 9's "Done when", as two netcat users would live it,
then once more after the server restarts on the same data directory.
"""

from __future__ import annotations

import re
from pathlib import Path

from twisted.trial import unittest

from tests.helpers_hostile import Client, Server

PASSWORD = "alice's long password"
HISTORY = re.compile(r"= \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ (.*)\Z")


class RoomsEndToEndTests(unittest.TestCase):
    def setUp(self):
        self.server = Server(Path(self.mktemp()).resolve(), history=50).start()
        self.addCleanup(self.server.kill)
        self.clients: list[Client] = []
        self.addCleanup(lambda: [client.close() for client in self.clients])

    def login(self, name: str, password: str | None = None) -> Client:
        client = self.server.login(name, password)
        self.clients.append(client)
        return client

    def connect_as(self, name: str) -> tuple[Client, str]:
        """A new connection that gave name; the line it was answered."""
        client = self.server.connect()
        self.clients.append(client)
        client.until("? username")
        client.say(name)
        return client, client.line()

    def pending(self, client: Client) -> list[str]:
        """Every line the server sent client before its answer to a /rooms sent now."""
        client.say("/rooms")
        return client.upto("* rooms (")[:-1]

    def replayed(self, lines: list[str]) -> list[str]:
        """The history lines among lines, without their `= TIME ` mark."""
        return [m.group(1) for m in map(HISTORY.match, lines) if m]

    def test_rooms_history_register_takeover_and_restart(self):
        """Two users land in chatd; one /joins games and the other sees them leave;
        /rooms lists both rooms; a late joiner gets the earlier lines marked `= `;
        /register, then logging in again asks `? password`: a wrong one closes the
        connection, the right one takes over the stale session; after a restart the
        history and the registered name are still there, and the password was
        never written to the log."""
        alice, bob = self.login("alice"), self.login("bob")
        alice.until("* bob joined")
        alice.say("anyone here?")
        self.assertEqual(bob.line(), "<alice> anyone here?")
        bob.say("/me waves", "/msg alice a secret", "/join games")
        self.assertEqual(bob.upto("* online ("),
                         ["[->alice] a secret", "* you are in games", "* online (1): bob"])
        self.assertEqual([alice.line() for _ in range(3)],
                         ["+ bob waves", "[bob] a secret", "* bob left (joined games)"])
        alice.say("/rooms")
        self.assertEqual(alice.line(), "* rooms (2): chatd (1), games (1)")

        carol, logged_in = self.connect_as("carol")
        self.assertEqual(logged_in, "* logged in as carol in chatd")
        greeting = self.pending(carol)
        self.assertEqual(greeting[0], "* online (2): alice, carol")
        self.assertEqual(self.replayed(greeting), ["<alice> anyone here?", "+ bob waves"])
        self.assertEqual(len(greeting), 3, greeting)
        alice.until("* carol joined")

        alice.say("/register")
        alice.until("? password")
        alice.say(PASSWORD)
        self.assertEqual(alice.line(), "? password")
        alice.say(PASSWORD)
        self.assertEqual(alice.line(),
                         "* alice is registered: logging in as alice asks for this password")

        wrong, asked = self.connect_as("alice")
        self.assertEqual(asked, "? password")
        wrong.say("not it at all")
        self.assertEqual(wrong.rest(), ["! wrong password"])
        self.assertEqual(alice.sync(), [])  # the one online was not disturbed

        new, asked = self.connect_as("alice")
        self.assertEqual(asked, "? password")
        new.say(PASSWORD)
        self.assertEqual(new.upto("* online (")[-2:], ["* logged in as alice in chatd",
                                                       "* online (2): alice, carol"])
        self.assertEqual(alice.rest(), ["! logged in from elsewhere"])
        self.assertEqual(carol.upto("* alice joined"),
                         ["* alice left (logged in from elsewhere)", "* alice joined"])
        new.say("back again")
        self.assertEqual(carol.line(), "<alice> back again")

        self.server.kill()
        self.server.start()
        dave = self.login("dave")
        greeting = self.pending(dave)
        self.assertEqual(self.replayed(greeting),
                         ["<alice> anyone here?", "+ bob waves", "<alice> back again"])
        again, asked = self.connect_as("alice")
        self.assertEqual(asked, "? password")
        again.say(PASSWORD)
        self.assertEqual(again.until("* logged in as"), "* logged in as alice in chatd")
        self.assertNotIn(PASSWORD, self.server.logs())
