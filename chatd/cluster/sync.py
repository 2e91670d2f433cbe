"""What every node must see: bans, mutes, accounts, the journal and history.

Redis is the shared truth; each node keeps its durable copy (SQLite, the
users file).  An admin's change is written to Redis first (store()), so
that it is made cluster-wide or not at all, then to the node's copy, and
the other nodes are told in the events batch.  When a node's link comes
up (at start, or after an outage) it resynchronises (resync()):

- Redis's data carries a random marker, `chatd:epoch`, made when it was
  first written; each node keeps the marker it last synchronised with
  (DATA_DIR/cluster-epoch);
- if the marker is missing or not the one the node knows, Redis is new,
  came back empty, or is not what this node saw before: the node first
  writes its own copy there (each key only if absent, so that every node
  coming back adds its own and the result is the union), then reads back;
- then Redis wins: bans and mutes are made the same as Redis's, accounts
  and history are copied from it.  (A node that knows the marker missed
  only what Redis holds: an unban made while it was away stays made.)

So a ban is never lost while any node's copy holds it, and a node started
later reads everything made before it.
"""

from __future__ import annotations

import json
import secrets

from twisted.internet import defer, threads
from twisted.logger import Logger

from chatd.cluster.codec import seconds
from chatd.cluster.inbound import replaced
from chatd.cluster.scripts import CLAIM, RECONCILE
from chatd.core.auth import MIN_PASSWORD, UserFile, hash_password
from chatd.core.errors import Banned, NameTaken
from chatd.core.events import Said
from chatd.core.history import KINDS
from chatd.core.journal import Entry
from chatd.core.store import Ban
from chatd.core.text import NAME_RULE, clean, name_key, valid_name, with_reason

log = Logger()

EPOCH = "chatd:epoch"
BANS = "chatd:bans"
MUTES = "chatd:mutes"
ACCOUNTS = "chatd:accounts"
MODLOG = "chatd:modlog"
HISTORY = "chatd:history:"
MODLOG_KEPT = 10_000


def store(redis, kind: str, details: dict) -> defer.Deferred:
    """Write an admin's change (IBus.moderated) to Redis; fires once it is there."""
    key = name_key(details["name"])
    if kind == "ban":
        return redis.hset(BANS, key, json.dumps(details))
    if kind == "unban":
        return redis.hdel(BANS, key)
    if kind == "mute":
        return redis.hset(MUTES, key, json.dumps(details))
    if kind == "unmute":
        return redis.hdel(MUTES, key)
    if kind == "account":
        return redis.hset(ACCOUNTS, key, json.dumps(details))
    raise ValueError(f"unknown change {kind!r}")


@defer.inlineCallbacks
def resync(redis, server, users: UserFile, history: bool = True):
    """Make this node's copy and Redis agree (see the module docstring).

    History is read only when the node starts (history true): after an
    outage this node's copy holds what its users said meanwhile, which
    Redis never saw.  Fires with the accounts this node added to Redis
    (made with chatd-admin here), for the other nodes to be told."""
    now = server.now()
    yield redis.set(EPOCH, secrets.token_hex(8), only_if_not_exists=True)
    epoch = yield redis.get(EPOCH)
    seen = users.path.parent / "cluster-epoch"
    known = seen.read_text().strip() if seen.exists() else None
    if epoch != known:
        yield _seed(redis, server, users, now)
        log.info("cluster: Redis's data is new to this node ({epoch}); this node's"
                 " bans, mutes, accounts and history were added to it", epoch=epoch)
        seen.write_text(epoch + "\n")
    bans = yield redis.hgetall(BANS)
    wanted = {}
    for value in bans.values():
        ban = Ban(**json.loads(value))
        if ban.active(now):
            wanted[ban.key] = ban
    for ban in server.bans.all(now):
        if ban.key not in wanted:
            yield server.bans.remove(ban.name)
    for ban in wanted.values():
        if server.bans.get(ban.name, now) != ban:
            yield server.bans.add(ban)
    mutes = yield redis.hgetall(MUTES)
    server.moderation.replace_mutes(
        {key: json.loads(value)["until"] for key, value in mutes.items()})
    accounts = yield redis.hgetall(ACCOUNTS)
    for value in accounts.values():
        account = json.loads(value)
        if users.hash_for(account["name"]) != account["hashed"]:
            users.set_hash(account["name"], account["hashed"])
    # Accounts made here with chatd-admin add-user, which Redis never saw.
    pushed = [{"name": name, "hashed": users.hash_for(name)} for name in users.names()
              if name_key(name) not in accounts]
    for account in pushed:
        yield redis.hsetnx(ACCOUNTS, name_key(account["name"]), json.dumps(account))
    if history and server.history is not None and server.history.limit:
        keys, cursor = [], None
        while cursor != 0:  # SCAN, not KEYS: Redis keeps serving the others meanwhile
            cursor, found = yield redis.scan(cursor or 0, HISTORY + "*", 500)
            cursor = int(cursor)
            keys += found
        for key in keys:
            rows = yield redis.lrange(key, -server.history.limit, -1)
            lines = [said for said in map(_said, rows) if said is not None]
            yield server.history.adopt(key[len(HISTORY):], lines)
    return pushed


def _said(row: str) -> Said | None:
    """A history line as Redis holds it, its texts cleaned again (like
    everything from Redis that can reach a terminal); None if it is none."""
    try:
        at, kind, name, text = json.loads(row)
        if kind not in KINDS:
            raise ValueError(kind)
        return Said(seconds(at), kind, clean(name), clean(text))
    except (ValueError, TypeError, AttributeError):
        log.warn("cluster: a history line in Redis is not one: {row!r:.100}", row=row)
        return None


def _seed(redis, server, users: UserFile, now: float) -> defer.Deferred:
    ds = []
    for ban in server.bans.all(now):
        ds.append(redis.hsetnx(BANS, ban.key, json.dumps({
            "name": ban.name, "by_admin": ban.by_admin, "reason": ban.reason,
            "created": ban.created, "expires": ban.expires, "address": ban.address})))
    for key, until in server.moderation.mutes().items():
        ds.append(redis.hsetnx(MUTES, key, json.dumps({"name": key, "until": until})))
    for name in users.names():
        ds.append(redis.hsetnx(ACCOUNTS, name_key(name), json.dumps(
            {"name": name, "hashed": users.hash_for(name)})))
    if server.history is not None and server.history.limit:
        ds.append(server.history.everything().addCallback(_seed_history, redis))
    return defer.gatherResults(ds, consumeErrors=True)


@defer.inlineCallbacks
def _seed_history(rooms: dict, redis):
    """Each room's history from this node's copy, into a Redis that lost it
    (a room another seeding node wrote first keeps that node's copy)."""
    for key, lines in rooms.items():
        if lines and not (yield redis.exists(HISTORY + key)):
            yield redis.rpush(HISTORY + key, [json.dumps([int(s.at * 1000), s.kind, s.name, s.text])
                                              for s in lines])


def check_claim(server, owner: str) -> None:
    """What the CLAIM script answered (chatd.cluster.scripts): raise Banned
    (and keep the ban this node had not heard of) or NameTaken (Server.claim
    says which name), or return for a name that is ours now."""
    if owner and owner[0] == "#":
        ban = Ban(**json.loads(owner[1:]))
        server.bans.add(ban)
        raise Banned(with_reason("you are banned", ban.reason))
    if owner and owner[0] != "!":
        raise NameTaken("")


def reclaim(redis, server, node: str) -> defer.Deferred:
    """Claim again the names of this node's users: if the link was down for
    longer than the TTL another node may have given one away, and its user
    here then goes, as after a takeover."""
    users = server.users
    redis.eval(RECONCILE, [], [node, *(user.key for user in users)])
    ds = [redis.eval(CLAIM, [], [user.key, node, "0"]) for user in users]

    def claimed(results):
        for user, (ok, owner) in zip(users, results, strict=True):
            if ok and owner and owner[0] not in "!#":
                log.warn("cluster: {name} was taken on {node} meanwhile",
                         name=user.name, node=owner)
                replaced(None, server, owner, user.key)

    return defer.DeferredList(ds, consumeErrors=True).addCallback(claimed)


def register(bus, users: UserFile, name: str, password: str) -> defer.Deferred:
    """chatd.core.auth.register for a cluster: the account is written to
    Redis (every node learns it) before this node's users file."""
    if not valid_name(name):
        return defer.fail(ValueError(f"invalid name {name!r}: use {NAME_RULE}"))
    if len(password) < MIN_PASSWORD:
        return defer.fail(ValueError(f"a password needs at least {MIN_PASSWORD} characters"))
    if not bus.ready():
        return defer.fail(ValueError("cluster unavailable: try again in a moment"))
    d = threads.deferToThread(hash_password, password)
    d.addCallback(lambda hashed: bus.moderated("account", name=name, hashed=hashed)
                  .addCallback(lambda _: users.set_hash(name, hashed)))
    return d


class ClusterJournal:
    """The moderation journal for a cluster: each node's own (SQLite) and
    one list in Redis that every node's /modlog reads while the link is up."""

    def __init__(self, local, bus):
        self._local = local
        self._bus = bus

    def record(self, entry: Entry) -> defer.Deferred:
        if self._bus.ready():
            redis = self._bus.redis
            redis.rpush(MODLOG, json.dumps(_entry_fields(entry))).addCallback(
                lambda _: redis.ltrim(MODLOG, -MODLOG_KEPT, -1)).addErrback(
                lambda f: log.warn("cluster: journal entry not copied to Redis: {why}",
                                   why=f.getErrorMessage()))
        return self._local.record(entry)

    def last(self, count: int) -> defer.Deferred:
        if not self._bus.ready():
            return self._local.last(count)
        d = self._bus.redis.lrange(MODLOG, -count, -1)
        d.addCallback(lambda rows: [Entry(**json.loads(row)) for row in rows])
        return d.addErrback(lambda f: self._local.last(count))


def _entry_fields(entry: Entry) -> dict:
    return {name: getattr(entry, name) for name in entry.__dataclass_fields__}

