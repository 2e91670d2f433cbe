"""The Lua scripts a node runs in Redis: each is one atomic step there.

The key names are chatd:names, chatd.cluster.bus's NODE and chatd.cluster.sync's
(HISTORY); a script cannot import them.
"""

# One batch: publish it, then append its lines to their rooms' history.
# ARGV: channel, batch, history limit, then for each room: its key and a
# JSON list of its lines (one JSON text for all: one encoding call on the
# node, the splitting done here, in C).
PUBLISH = """
redis.call('PUBLISH', ARGV[1], ARGV[2])
local limit = tonumber(ARGV[3])
for i = 4, #ARGV, 2 do
  local key = 'chatd:history:' .. ARGV[i]
  for _, line in ipairs(cjson.decode(ARGV[i + 1])) do
    redis.call('RPUSH', key, cjson.encode(line))
  end
  redis.call('LTRIM', key, -limit, -1)
end
return 1
"""
# Take a name (ARGV: key, node, takeover "1"/"0") unless it is banned (the
# cluster's ban list is checked here too, in case this node missed the news)
# or a live other node holds it.  Returns "#" and the ban (JSON), the
# holder's name, "!" and the holder's name (taken over), or "" (ours now).
CLAIM = """
local ban = redis.call('HGET', 'chatd:bans', ARGV[1])
if ban then
  local expires = cjson.decode(ban)['expires']
  if expires == cjson.null or expires > tonumber(redis.call('TIME')[1]) then
    return '#' .. ban
  end
end
local owner = redis.call('HGET', 'chatd:names', ARGV[1])
if owner and owner ~= ARGV[2] and ARGV[3] ~= '1'
   and redis.call('EXISTS', 'chatd:node:' .. owner) == 1 then
  return owner
end
redis.call('HSET', 'chatd:names', ARGV[1], ARGV[2])
if owner and owner ~= ARGV[2] then return '!' .. owner end
return ''
"""
# After a (re)connection: free every name this node holds but its users
# (ARGV: node, the keys of its users): names of users gone while the link
# was down, or before the node was restarted under the same name.
RECONCILE = """
local keep = {}
for i = 2, #ARGV do keep[ARGV[i]] = true end
local names = redis.call('HGETALL', 'chatd:names')
for i = 1, #names, 2 do
  if names[i + 1] == ARGV[1] and not keep[names[i]] then
    redis.call('HDEL', 'chatd:names', names[i])
  end
end
return 1
"""
# Free names (ARGV: node, keys...) this node holds.
RELEASE = """
for i = 2, #ARGV do
  if redis.call('HGET', 'chatd:names', ARGV[i]) == ARGV[1] then
    redis.call('HDEL', 'chatd:names', ARGV[i])
  end
end
return 1
"""
