"""The Lua scripts the Redis bus runs: each is atomic, so every node sees one order.

Keys are passed in, never built inside a script, so a prefix (or a cluster's hash tags) stays
the caller's business. Numbers come back as strings: Redis turns a Lua number into an integer.
"""

from __future__ import annotations

PUBLISH = """
-- KEYS: the room's seq counter, its stream, its sticky state, its writers
-- ARGV: the event (JSON), its type if sticky (else ''), the history length, the time to live (s)
-- A sticky event is kept in the state hash by type, as "seq event". ARGV[5]: the highest seq
-- the node knows of: an empty Redis (restarted) goes on from there, not from 1. ARGV[6] and
-- ARGV[7]: who sends it and its number among what that writer sent: one it numbered already
-- (a batch sent again after its connection broke halfway) is not added twice.
local last = tonumber(redis.call('HGET', KEYS[4], ARGV[6]) or '0')
if tonumber(ARGV[7]) <= last then
  return redis.call('GET', KEYS[1]) or '0'
end
redis.call('HSET', KEYS[4], ARGV[6], ARGV[7])
redis.call('EXPIRE', KEYS[4], ARGV[4])
local known = tonumber(ARGV[5])
if tonumber(redis.call('GET', KEYS[1]) or '0') < known then
  redis.call('SET', KEYS[1], known)
end
local seq = redis.call('INCR', KEYS[1])
local added = redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'e', ARGV[1])
if type(added) == 'table' and added.err then
  -- The counter is behind the stream (it expired, or was lost alone): go on past the top.
  local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  seq = tonumber(string.match(top[1][1], '^(%d+)')) + 1
  redis.call('SET', KEYS[1], seq)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'e', ARGV[1])
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[2], seq .. ' ' .. ARGV[1])
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return seq
"""

RESUME = """
-- After Redis came back (maybe empty): the counter never goes below what a node has seen, so
-- a client's `since` stays meaningful, and the sticky state is put back if it was lost.
-- KEYS: the room's seq counter, its sticky state; ARGV: the node's seq, then type/value pairs
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
if #ARGV > 1 and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[2], unpack(ARGV, 2))
end
return current
"""

TOKEN_BUCKET = """
-- KEYS: the bucket; ARGV: now (s), burst, refill per second, lock-out (s, 0: none),
-- 1 to count an action (0 to peek), the bucket's time to live (ms)
local now, burst, rate = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local lockout, take = tonumber(ARGV[4]), ARGV[5] == '1'
local b = redis.call('HMGET', KEYS[1], 't', 'u', 'l')
local tokens, updated, locked = tonumber(b[1]), tonumber(b[2]), tonumber(b[3]) or 0
if tokens == nil then
  if not take then return '0' end
  tokens, updated = burst, now
end
if locked > 0 and now >= locked then
  tokens, locked = burst, 0
end
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local wait = 0
if locked > 0 then
  wait = locked - now
elseif tokens >= 1 then
  if take then
    tokens = tokens - 1
    if lockout > 0 and tokens < 1 then locked = now + lockout end
  end
else
  wait = (1 - tokens) / rate
end
if take then
  redis.call('HSET', KEYS[1], 't', tostring(tokens), 'u', tostring(now), 'l', tostring(locked))
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
return tostring(wait)
"""

PRESENCE = """
-- KEYS: the alive set, then one presence hash per room
-- ARGV: now (s); returns the sum over live nodes for each room, forgetting dead nodes
local now = tonumber(ARGV[1])
local sums = {}
for i = 2, #KEYS do
  local total = 0
  local fields = redis.call('HGETALL', KEYS[i])
  for j = 1, #fields, 2 do
    local until_ = tonumber(redis.call('ZSCORE', KEYS[1], fields[j]) or '0')
    if until_ >= now then
      total = total + tonumber(fields[j + 1])
    else
      redis.call('HDEL', KEYS[i], fields[j])
    end
  end
  sums[#sums + 1] = total
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return sums
"""
