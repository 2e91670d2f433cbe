"""What the other nodes of a cluster say, done here.

ClusterBus (chatd.cluster.bus) reads each batch's header from Redis, and
another node's records come here (read()).  The lines said in rooms (the
hot path) go to the rooms in bulk; every other item comes to its handler,
by its first element: "e" another room event, "in"/"out"/"gone"
presence, "tell"/"expel"/"unroom" for one of this node's users, "replaced" (a
registered name taken over elsewhere), "mod" an admin's change,
"hello"/"state"/"bye" who is on a node.  Each handler is called as
handler(bus, server, node, *rest).
"""

from __future__ import annotations

import json

from twisted.logger import Logger

from chatd.cluster.codec import LINE_KINDS, MAX_TIME, decode
from chatd.core import events as ev
from chatd.core.text import clean, clean_keeping_formatting, valid_name

log = Logger()


def read(bus, node: str, records: list[str]) -> None:
    """The records of another node's batch (chatd.cluster.codec), in order:
    lines said are handed to their rooms together (bus.hand_over), each
    other item to its handler, the lines before it first.  Everything is
    checked and cleaned again (Redis is not trusted to be what a node wrote),
    and one bad record costs only itself."""
    server, next_id = bus.server, ev.next_id
    heard: dict[str, list] = {}  # lines, by room: handed over together
    names: dict[str, str] = {}  # senders' names, each cleaned once a batch
    for record in records:
        if heard and record[:1] == "[":  # the lines before this item first:
            before, heard = heard, {}  # the order is kept
            bus.hand_over(before)
        try:
            if record[:1] != "[":  # most of them: a line said (codec.line)
                code, room, sender, at, name, text, rich = record.split("\x00")
                cls = LINE_KINDS[code]
                # Cleaned on the node it was typed on, and again here: a
                # terminal never gets what Redis holds as it is (printable
                # ASCII, clean()'s first test, spares the call).
                cleaned = names.get(name)
                if cleaned is None:
                    cleaned = names[name] = clean(name)
                at = int(at) / 1000
                if not 0 <= at <= MAX_TIME:
                    raise ValueError(f"not a time: {at}")
                said = cls(next_id(), at, room, cleaned,
                           text if text.isprintable() and text.isascii() else clean(text),
                           clean_keeping_formatting(rich) if rich else "")
                pairs = heard.get(room)
                if pairs is None:
                    heard[room] = [(sender or None, said)]
                else:
                    pairs.append((sender or None, said))
                continue
            item = json.loads(record)
            handler = HANDLERS.get(item[0])
            if handler is None:
                log.warn("cluster: unknown item {kind!r} from {node}", kind=item[0],
                         node=node)
                continue
            handler(bus, server, node, *item[1:])
        except Exception:  # one bad item (a newer node's?) costs only itself
            log.failure("cluster: an item from {node} failed: {item!r:.200}",
                        node=node, item=record)
    bus.hand_over(heard)


def event(bus, server, node, room, sender, data) -> None:
    """A room event other than a line said (ClusterBus.received delivers
    those itself) to this node's members of the room."""
    said = decode(data)
    if said.__class__ is ev.Left:
        holder = server.get(said.name)
        if holder is not None and holder.node != node:
            return  # the name moved to another node (a takeover): it has not left
    elif said.__class__ is ev.Topic:
        here = server.room(said.room)
        if here is not None:  # whoever enters it here is shown the new topic
            here.topic = said.text
    bus.deliver(room, said, sender)


def to_one(bus, server, node, target, key, data, count_as=None) -> None:
    """An event for one of this node's users (a private message, or with
    count_as what an admin elsewhere did to them: they are then logged out
    without a word to their rooms, which the admin's node told, and closed)."""
    if target != bus.node:
        return
    user = server.local(key)
    if user is None:
        return
    server.tell(user, decode(data))
    if count_as is not None:
        server.remove(user, count_as)
        user.client.disconnect()


def unroom(bus, server, node, target, key, room) -> None:
    """An admin elsewhere took one of this node's users out of room (IRC's
    KICK; the room heard `Kicked` from the admin's node)."""
    user = server.local(key) if target == bus.node else None
    here = server.room(room)
    if user is not None and here is not None:
        server.remove_from_room(user, here)


def replaced(bus, server, node, key) -> None:
    """A registered name's password logged in on node: its session here goes."""
    user = server.local(key)
    if user is not None:
        server.tell(user, ev.Replaced(ev.next_id(), server.now(), "", user.name))
        server.logout(user, cause="logged in from elsewhere", count_as="replaced",
                      release=False)
        user.client.disconnect()


def moderated(bus, server, node, kind, details) -> None:
    """An admin's change made on node (already in Redis): this node's copy."""
    if kind == "account":
        bus.users.set_hash(details["name"], details["hashed"])
    else:
        server.moderation.apply(kind, details)


def hello(bus, server, node) -> None:
    """A node (re)connected: it is told who is here."""
    bus.send(["state", bus.presence()])


def entered(bus, server, node, room, name, admin, address) -> None:
    """Someone on node is in room now (names checked: they reach NAMES lines)."""
    if valid_name(name) and valid_name(room):
        server.peers.entered(node, room, name, bool(admin), address)


def state(bus, server, node, users) -> None:
    """Who is on node now (after it (re)connected)."""
    server.peers.replace(node, [
        (name, bool(admin), address, [room for room in rooms if valid_name(room)])
        for name, admin, address, rooms in users if valid_name(name)])


def bye(bus, server, node) -> None:
    """node is stopping: its users leave now, not after the TTL."""
    bus.forget(node)
    server.peers.lost(node, cause="server shutting down")


HANDLERS = {
    "e": event,
    "in": entered,
    "out": lambda bus, server, node, room, key: server.peers.left(node, room, key),
    "gone": lambda bus, server, node, key: server.peers.gone(node, key),
    "tell": to_one,
    "expel": to_one,
    "unroom": unroom,
    "replaced": replaced,
    "mod": moderated,
    "hello": hello,
    "state": state,
    "bye": bye,
}
