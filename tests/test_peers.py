"""People on other nodes of a cluster, as one node's core lists them (chatd.core.peers).

No Redis and no sockets: the tests play the networked bus's part by
calling Peers the way chatd.cluster.bus does when a presence message
arrives, and read what this node's own (line-protocol) users are shown.
"""

from __future__ import annotations

from chatd.cluster import codec
from chatd.cluster.url import parse
from chatd.core import events as ev
from chatd.core.errors import NameTaken
from tests.test_rooms import CoreTestCase


class PeersTests(CoreTestCase):
    def test_who_lists_people_on_other_nodes(self):
        """/who and /rooms count someone connected to another node, sorted
        among this node's own members, admins marked."""
        self.login("ann")
        self.server.peers.entered("b", "chatd", "Zed", admin=True)
        self.server.peers.entered("b", "chatd", "bob")
        self.assertEqual(self.server.landing.who(), (("ann", "bob", "@Zed"), 3))
        self.assertEqual(len(self.server.landing), 3)
        self.assertEqual(self.server.get("BOB").node, "b")

    def test_not_written_to(self):
        """What is said in a room is written to this node's members only:
        the other node delivers to its own (a remote member is never a
        client here)."""
        ann, ann_client = self.login("ann")
        self.server.peers.entered("b", "chatd", "bob")
        self.server.say(ann, self.server.landing, "hi")
        self.clock.advance(0)
        self.assertEqual(self.server.landing.local, 1)
        self.assertEqual(self.heard(ann_client), [[]])

    def test_name_on_other_node_is_taken(self):
        """A guest cannot take a name someone on another node holds."""
        self.server.peers.entered("b", "chatd", "bob")
        with self.assertRaises(NameTaken):
            self.server.check_name("Bob")

    def test_room_exists_while_someone_elsewhere_is_in_it(self):
        """A room opened on another node is listed here, and goes when its
        last member there leaves it."""
        self.server.peers.entered("b", "games", "bob")
        self.assertIn("games", self.names())
        self.server.peers.left("b", "games", "bob")
        self.assertNotIn("games", self.names())

    def test_lost_node_users_leave_with_a_word(self):
        """When a node dies, its users leave this node's rooms, and the
        people here read `* NAME left (node lost)`."""
        _, ann_client = self.login("ann")
        self.server.peers.entered("b", "chatd", "bob")
        self.server.peers.entered("c", "chatd", "cy")
        self.server.peers.lost("b")
        self.assertEqual(self.heard(ann_client), [["* bob left (node lost)"]])
        self.assertEqual(self.server.landing.who(), (("ann", "cy"), 2))
        self.assertIsNone(self.server.get("bob"))

    def test_state_after_an_outage_announces_the_difference(self):
        """After the link comes back, a node's list of its users replaces what
        this node had: who went meanwhile leaves, who came joins, the rest
        are not announced again."""
        _, ann_client = self.login("ann")
        self.server.peers.entered("b", "chatd", "bob")
        self.server.peers.entered("b", "chatd", "cy")
        self.server.peers.replace("b", [("cy", False, None, ["chatd"]),
                                        ("dee", False, None, ["chatd"])])
        self.assertEqual(self.heard(ann_client),
                         [["* bob left (connection lost)", "* dee joined"]])
        self.assertEqual(self.server.landing.who(), (("ann", "cy", "dee"), 3))

    def test_name_moving_here_replaces_the_stale_entry(self):
        """A registered name taking over here while the other node still
        lists it: the room lists it once, as this node's user."""
        self.server.peers.entered("b", "chatd", "ann")
        self.login("ann", registered=True)
        self.assertEqual(self.server.landing.who(), (("ann",), 1))
        self.assertEqual(self.server.get("ann").node, "")


class CodecTests(CoreTestCase):
    def test_events_round_trip(self):
        """Every event a room broadcasts arrives on another node as the same
        event (with an id of that node's)."""
        for event in (ev.Message(1, 2.5, "chatd", "ann", "hi", "\x02hi"),
                      ev.Left(1, 2.5, "chatd", "ann", "bye", "node lost", False),
                      ev.Banned(1, 2.5, "chatd", "ann", "boss", "spam", 60.0),
                      ev.Private(1, 2.5, "", "ann", "bob", "psst")):
            back = codec.decode(codec.encode(event))
            self.assertEqual((type(back), back.at, back.room), (type(event), 2.5, "chatd"
                             if event.room else ""))
            self.assertEqual(codec.encode(back), codec.encode(event))

    def test_unknown_kind_is_refused(self):
        """A message that describes no event is an error, not a crash."""
        with self.assertRaises(ValueError):
            codec.decode(["Welcome", 1])


    def test_history_lines_from_redis(self):
        """A room's history as Redis holds it reaches a node that starts
        later with its times (milliseconds, or an older node's seconds) and
        with nothing in it that acts on a terminal; a line that is no line
        is left out instead of stopping the start, and so is one whose time
        no clock can show (it would break every later replay of the room)."""
        from chatd.cluster.sync import _said
        said = _said('[1733550000123,"message","ann","hi\\u001b[2J there"]')
        self.assertEqual((said.at, said.kind, said.name, said.text),
                         (1733550000.123, "message", "ann", "hi[2J there"))
        self.assertEqual(_said('[1733550000.5,"action","ann","waves"]').at, 1733550000.5)
        for row in ('[1,"private","ann","psst"]', '{"at": 1}', "not json", "[1,2,3,4]",
                    '["x","message","ann","hi"]', '[NaN,"message","ann","hi"]',
                    '[true,"message","ann","hi"]', '[1e300,"message","ann","hi"]',
                    '[-5,"message","ann","hi"]'):
            self.assertIsNone(_said(row))


class AddressTests(CoreTestCase):
    def test_password_never_shown(self):
        """The URL's password is used but never shown in the log's form of it."""
        address = parse("rediss://:s3cret@redis.example:6380/2")
        self.assertEqual((address.host, address.port, address.db, address.tls,
                          address.password), ("redis.example", 6380, 2, True, "s3cret"))
        self.assertEqual(str(address), "rediss://redis.example:6380/2")
        self.assertNotIn("s3cret", repr(address))

    def test_bad_urls(self):
        """A mistyped --cluster is a clear error, not a traceback."""
        for url in ("http://x", "redis://", "redis://h:port/0", "redis://h/zero"):
            with self.assertRaises(ValueError):
                parse(url)
