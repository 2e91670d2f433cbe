"""What the other nodes of a cluster say, done here.

ClusterBus (chatd.cluster.bus) reads each batch from Redis.  The lines
said in rooms ("m" a message, "a" an action: the hot path) it delivers
itself; every other item of another node's batch comes to its handler
here, by its first element: "e" another room event, "in"/"out"/"gone"
presence, "tell"/"expel" for one of this node's users, "replaced" (a
registered name taken over elsewhere), "mod" an admin's change,
"hello"/"state"/"bye" who is on a node.  Each handler is called as
handler(bus, server, node, *rest).
"""

from __future__ import annotations

from chatd.cluster.codec import decode
from chatd.core import events as ev
from chatd.core.text import name_key


def event(bus, server, node, room, sender, data) -> None:
    """A room event: to this node's members of the room (ClusterBus.received
    delivers all but `Left` itself, without coming here)."""
    said = decode(data)
    if said.__class__ is ev.Left and server.local(name_key(said.name)) is not None:
        return  # a session replaced by one here: the name has not left
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


def state(bus, server, node, users) -> None:
    server.peers.replace(node, users)


def bye(bus, server, node) -> None:
    """node is stopping: its users leave now, not after the TTL."""
    bus.forget(node)
    server.peers.lost(node, cause="server shutting down")


HANDLERS = {
    "e": event,
    "in": lambda bus, server, node, room, name, admin, address:
        server.peers.entered(node, room, name, admin, address),
    "out": lambda bus, server, node, room, key: server.peers.left(node, room, key),
    "gone": lambda bus, server, node, key: server.peers.gone(node, key),
    "tell": to_one,
    "expel": to_one,
    "replaced": replaced,
    "mod": moderated,
    "hello": hello,
    "state": state,
    "bye": bye,
}
