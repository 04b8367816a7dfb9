-- Shared by admit.lua and settle.lua (prepended when the scripts load).
-- A tenant's outstanding reservations live in one HASH (`resv`) holding, per request id,
-- "tokens usd day month", plus running sums: `n` (how many), `t` (tokens), `d:<day>` and
-- `m:<month>` (USD). A ZSET (`res`) indexes them by expiry. Both keys always get the same
-- TTL, so the sums can never outlive the reservations they add up. When `n` reaches 0 both
-- keys are deleted, which also resets any floating-point drift in the sums.

local function lk_release(resv, res, id)
  local held = redis.call('HGET', resv, id)
  redis.call('ZREM', res, id)
  if not held then return end
  local tokens, usd, day, month = string.match(held, '^(%S+) (%S+) (%S+) (%S+)$')
  redis.call('HDEL', resv, id)
  if redis.call('HINCRBY', resv, 'n', -1) <= 0 then
    redis.call('DEL', resv, res)
    return
  end
  redis.call('HINCRBY', resv, 't', -tonumber(tokens))
  redis.call('HINCRBYFLOAT', resv, 'd:' .. day, -tonumber(usd))
  redis.call('HINCRBYFLOAT', resv, 'm:' .. month, -tonumber(usd))
end

local function lk_num(value)
  return tonumber(value) or 0
end

local function lk_str(value)
  return string.format('%.17g', value)
end
