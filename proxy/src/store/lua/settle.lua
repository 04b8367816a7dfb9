-- Shared by finish.lua (prepended after batch.lua when the scripts load).
-- Replaces a reservation with what the request actually used and frees its slot. Freeing is
-- idempotent (by request id); the metered tokens and spend are added unless `replay` (the op
-- was applied by an earlier run, see guard.lua). Returns 1, or 0 for a replay.
-- The writes are gathered (batch.lua) and the reservations released together
-- (lk_release_all) at the end of the call.
-- k: index in KEYS of the first of 7 keys: slots, res, resv, tok, spend of the admission's
-- day, of its month, the tenant's marks ZSET (guard.lua; not used here). has: 1 the request
-- holds a slot, + 2 a reservation.
local lk_releasing, lk_releasingOrder = {}, {}

local function lk_settle(k, id, tokens, usd, at, has, dayTtl, monthTtl, replay)
  if has % 2 == 1 then lk_zrem(KEYS[k], id) end
  if has >= 2 then
    local r = lk_releasing[KEYS[k + 2]]
    if not r then
      r = { res = KEYS[k + 1], ids = {}, seen = {} }
      lk_releasing[KEYS[k + 2]] = r
      lk_releasingOrder[#lk_releasingOrder + 1] = KEYS[k + 2]
    end
    if not r.seen[id] then
      r.seen[id] = true
      r.ids[#r.ids + 1] = id
    end
  end
  if replay then return 0 end
  -- The token buckets and spend keys get their expiry when created: a minute's bucket is
  -- read for an hour, a day's spend for that day, a month's for that month.
  if tokens > 0 then lk_incr(KEYS[k + 3], tostring(math.floor(at / 60000)), tokens, false, 7200) end
  if usd > 0 then
    lk_incr(KEYS[k + 4], '', usd, true, dayTtl)
    lk_incr(KEYS[k + 5], '', usd, true, monthTtl)
  end
  return 1
end

-- Releases every reservation that lk_settle named, with one HMGET, ZREM and HDEL per
-- tenant and one update of each running sum (see reservations.lua).
local function lk_release_all()
  for _, resv in ipairs(lk_releasingOrder) do
    local r = lk_releasing[resv]
    local held = redis.call('HMGET', resv, unpack(r.ids))
    redis.call('ZREM', r.res, unpack(r.ids))
    local found, count, tokens, usd = {}, 0, 0, {}
    local days = {}
    for i, h in ipairs(held) do
      if h then
        local t, u, day, month = string.match(h, '^(%S+) (%S+) (%S+) (%S+)$')
        found[#found + 1] = r.ids[i]
        count = count + 1
        tokens = tokens + tonumber(t)
        for _, field in ipairs({ 'd:' .. day, 'm:' .. month }) do
          if usd[field] == nil then
            usd[field] = 0
            days[#days + 1] = field
          end
          usd[field] = usd[field] + tonumber(u)
        end
      end
    end
    if count > 0 then
      redis.call('HDEL', resv, unpack(found))
      if redis.call('HINCRBY', resv, 'n', -count) <= 0 then
        redis.call('DEL', resv, r.res)
      else
        if tokens ~= 0 then redis.call('HINCRBY', resv, 't', -tokens) end
        for _, field in ipairs(days) do
          if usd[field] ~= 0 then redis.call('HINCRBYFLOAT', resv, field, lk_str(-usd[field])) end
        end
      end
    end
  end
end
