-- Shared by finish.lua (prepended after reservations.lua when the scripts load).
-- Replaces a reservation with what the request actually used and frees its slot. Idempotent:
-- a request id already in `settled` adds nothing again. Returns 1, or 0 for a replay.
-- k: index in KEYS of the first of 7 keys: slots, res, resv, tok, spend of the admission's
-- day, of its month, settled ZSET.
local function lk_settle(k, id, tokens, usd, at, dayTtl, monthTtl)
  redis.call('ZREM', KEYS[k], id)
  lk_release(KEYS[k + 2], KEYS[k + 1], id)
  if redis.call('ZADD', KEYS[k + 6], 'NX', at, id) == 0 then return 0 end
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 6], '-inf', at - 7200000)
  redis.call('EXPIRE', KEYS[k + 6], 7200)
  if tokens > 0 then
    redis.call('HINCRBY', KEYS[k + 3], tostring(math.floor(at / 60000)), tokens)
    redis.call('EXPIRE', KEYS[k + 3], 7200)
  end
  if usd > 0 then
    redis.call('INCRBYFLOAT', KEYS[k + 4], usd)
    redis.call('EXPIRE', KEYS[k + 4], dayTtl)
    redis.call('INCRBYFLOAT', KEYS[k + 5], usd)
    redis.call('EXPIRE', KEYS[k + 5], monthTtl)
  end
  return 1
end
