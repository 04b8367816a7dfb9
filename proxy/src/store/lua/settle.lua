-- Replaces a reservation with what the request actually used, frees its slot. Idempotent:
-- a request id already in `settled` adds nothing again.
-- KEYS: 1 slots, 2 res, 3 resv, 4 tok, 5 spend of the admission's day, 6 of its month, 7 settled ZSET
-- ARGV: 1 request id, 2 tokens, 3 usd, 4 admission time (ms), 5 day key TTL s, 6 month key TTL s
local id = ARGV[1]
local tokens, usd, at = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREM', KEYS[1], id)
lk_release(KEYS[3], KEYS[2], id)
if redis.call('ZADD', KEYS[7], 'NX', at, id) == 0 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', at - 7200000)
redis.call('EXPIRE', KEYS[7], 7200)
if tokens > 0 then
  redis.call('HINCRBY', KEYS[4], tostring(math.floor(at / 60000)), tokens)
  redis.call('EXPIRE', KEYS[4], 7200)
end
if usd > 0 then
  redis.call('INCRBYFLOAT', KEYS[5], usd)
  redis.call('EXPIRE', KEYS[5], tonumber(ARGV[5]))
  redis.call('INCRBYFLOAT', KEYS[6], usd)
  redis.call('EXPIRE', KEYS[6], tonumber(ARGV[6]))
end
return 1
