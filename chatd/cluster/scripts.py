"""The Lua scripts a node runs in Redis: each is one atomic step there.

The key names are chatd.cluster.bus's (NAMES, NODE) and chatd.cluster.sync's
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
# Take a name (ARGV: key, node, takeover "1"/"0") unless a live other node
# holds it; returns the holder's name, or "" if the name is ours now.
CLAIM = """
local owner = redis.call('HGET', 'chatd:names', ARGV[1])
if owner and owner ~= ARGV[2] and ARGV[3] ~= '1'
   and redis.call('EXISTS', 'chatd:node:' .. owner) == 1 then
  return owner
end
redis.call('HSET', 'chatd:names', ARGV[1], ARGV[2])
if owner and owner ~= ARGV[2] then return '!' .. owner end
return ''
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
