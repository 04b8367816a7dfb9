-- Shared by finish.lua (prepended after batch.lua when the scripts load): the replay guard of
-- finish calls, bounded by calls in flight instead of by the request rate (issue 16).
-- Each proxy process has a random instance id and numbers its finish calls. When a call
-- applies ops of a tenant it leaves the mark `instance:call` in the tenant's `marks` ZSET
-- (score: when it expires, ms). A call whose answer was lost is sent again, or its ops are
-- retried in later calls that name it (`prior`): an op is skipped when its call's mark or a
-- prior call's mark is there. Once the proxy has the answer of every op a call held, it tells
-- Redis to forget the mark ('a' ops, piggy-backed on its next finish call); marks of a proxy
-- that died expire after the TTL (pruned by every call of the tenant, and with the key).
local lk_guards, lk_guardOrder = {}, {}
local lk_nowMs = nil

local function lk_now()
  if not lk_nowMs then
    local t = redis.call('TIME')
    lk_nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return lk_nowMs
end

-- The guard of one tenant's marks key in this call: expired marks pruned once, and whether
-- this very call already ran (a command sent twice, e.g. resent after a reconnect).
local function lk_guard(key, member)
  local g = lk_guards[key]
  if not g then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', lk_now())
    g = { ran = redis.call('ZSCORE', key, member) ~= false, applied = false }
    lk_guards[key] = g
    lk_guardOrder[#lk_guardOrder + 1] = key
  end
  return g
end

-- True when the op was applied already, by this call or by one of the earlier calls it was
-- sent in (`prior`: their numbers, space-separated); otherwise the call will leave its mark.
local function lk_replayed(key, instance, call, prior)
  local g = lk_guard(key, instance .. ':' .. call)
  if g.ran then return true end
  for c in string.gmatch(prior, '%d+') do
    if redis.call('ZSCORE', key, instance .. ':' .. c) then return true end
  end
  g.applied = true
  return false
end

-- Forgets marks the proxy acknowledged (`calls`: numbers, space-separated).
local function lk_forget(key, instance, calls)
  local members = {}
  for c in string.gmatch(calls, '%d+') do members[#members + 1] = instance .. ':' .. c end
  if #members > 0 then redis.call('ZREM', key, unpack(members)) end
end

-- Leaves this call's mark in every tenant it applied something to; the key lives as long
-- as its newest mark.
local function lk_mark_all(instance, call, ttlMs)
  for _, key in ipairs(lk_guardOrder) do
    if lk_guards[key].applied then
      redis.call('ZADD', key, lk_now() + ttlMs, instance .. ':' .. call)
      redis.call('PEXPIRE', key, ttlMs)
    end
  end
end
