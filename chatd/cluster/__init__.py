"""Several chatd processes sharing one set of rooms, through Redis.

`twistd chatd --cluster redis://HOST:PORT/DB` makes this process one node
of a cluster.  The core does not change: it is given a ClusterBus
(chatd.cluster.bus) instead of the in-process LocalBus, and that bus
carries room events, presence, name claims and admins' actions between
the nodes.  Without --cluster nothing here is imported (txredisapi is
needed only then).

What lives where (docs/scaling.md says why):
- room events: one pub/sub channel, `chatd:events`, in batches (one per
  node per reactor turn); every node delivers what Redis hands back, in
  Redis's one order, so each room's events reach every member in one order;
- names: `chatd:names` (name key -> node), claimed by a script that takes a
  name only from a node whose heartbeat (`chatd:node:NODE`, with a TTL)
  has stopped; presence travels as messages and is re-sent in full by
  every node when one (re)connects;
- bans, mutes, accounts: Redis hashes are the shared truth, each node's
  SQLite and users file its durable copy; the moderation journal a Redis
  list beside each node's own; each room's history a Redis list written
  in the same script as the batch that carried its lines, so its order is
  the delivery order.
"""
