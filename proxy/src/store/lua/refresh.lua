-- Heartbeat of one tenant's in-flight requests (slot-heartbeat.ts): pushes the expiry of
-- each request's concurrency slot and reservation to the score given, never shortening it
-- and never re-creating one already settled or released (XX), and keeps the keys alive that
-- long. A replica that stops sending this (crashed, partitioned) lets its slots expire.
-- KEYS: 1 slots ZSET, 2 res ZSET (reservation expiries), 3 resv HASH (reservations.lua).
-- ARGV: 1 now (ms), then pairs of request id and new expiry (ms).
local now = tonumber(ARGV[1])
local latest = now
for i = 2, #ARGV, 2 do
  local id, expiry = ARGV[i], ARGV[i + 1]
  redis.call('ZADD', KEYS[1], 'XX', 'GT', expiry, id)
  redis.call('ZADD', KEYS[2], 'XX', 'GT', expiry, id)
  if tonumber(expiry) > latest then latest = tonumber(expiry) end
end
-- Keys outlive their latest member by a minute, as admit.lua sets them.
-- resv keeps res's TTL (reservations.lua: the sums never outlive what they add up).
for k = 1, 3 do
  local want = latest - now + 60000
  local ttl = redis.call('PTTL', KEYS[k])
  if ttl >= 0 and ttl < want then redis.call('PEXPIRE', KEYS[k], want) end
end
return 1
