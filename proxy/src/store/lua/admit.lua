-- One atomic admission (see ../admission.ts for the same rules in TypeScript). The store runs
-- it as the body of a function called once per admission by admit-batch.lua, so KEYS and
-- ARGV below are that admission's own, and each `return` is its reply.
-- KEYS: 1 rps HASH(second -> admissions: the minute's window in per-second buckets, plus
--         `n` their sum and `o` the oldest second counted),
--       2 slots ZSET(id -> expiry), 3 tok HASH(minute -> tokens),
--       4 res ZSET(id -> expiry), 5 resv HASH (see reservations.lua),
--       6 spend of the current UTC day (STRING), 7 spend of the current month (STRING)
-- ARGV: 1 now, 2 request id, 3 rpm, 4 max concurrent, 5 tokens/hour (0 = no limit),
--       6 day budget, 7 month budget (-1 = no limit), 8 prompt tokens, 9 max output (-1 = unbounded),
--       10 input price, 11 output price, 12 slot TTL ms, 13 day, 14 month,
--       15 day reset s, 16 month reset s, 17 output that must fit (requiredOutput in admission.ts)
-- Returns strings: { ok, limit index or granted (-1 unbounded), retry ms, requests in the minute,
--       ms until the oldest counted second leaves it, tokens used, latest token release,
--       reserved tokens, reserved usd }
local now = tonumber(ARGV[1])
local id = ARGV[2]
local rpm, maxc, tph = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local bDay, bMonth = tonumber(ARGV[6]), tonumber(ARGV[7])
local prompt, maxOut = tonumber(ARGV[8]), tonumber(ARGV[9])
local inP, outP = tonumber(ARGV[10]), tonumber(ARGV[11])
local ttl = tonumber(ARGV[12])
local day, month = ARGV[13], ARGV[14]
local MINUTE, HOUR, SECOND = 60000, 3600000, 1000

-- An erased tenant (the control plane set `prefix{tenant}:erased` before sweeping) is refused
-- without a write, so a proxy that has not yet applied the erasure leaves no key behind.
if redis.call('EXISTS', (string.gsub(KEYS[1], 'rps$', 'erased'))) == 1 then
  return { '0', '1', '1000', '0', '0', '0', '0', '0', '0' }
end

-- Only what a set limit needs is read: a plan without a budget reads no spend keys, one
-- without tokens_per_hour no token buckets, and so on. Everything a limit reads is first
-- pruned of what left its window by `now`.
local reserving = tph > 0 or bDay >= 0 or bMonth >= 0
-- Requests per minute: at most 60 per-second buckets, whatever the rate (see
-- second-buckets.ts); a second's admissions leave the window 60 s after it began.
local requests, slots, nextFree = 0, 0, 0
local second = math.floor(now / SECOND)
local oldest = nil
if rpm > 0 then
  -- The sum and the oldest second are kept beside the buckets, so an admission reads two
  -- fields; the buckets are scanned only when the oldest has left the window (at most
  -- once a second): O(1) amortised, whatever the rate.
  local first = second - 59
  local meta = redis.call('HMGET', KEYS[1], 'n', 'o')
  requests, oldest = tonumber(meta[1]) or 0, tonumber(meta[2])
  if oldest ~= nil and oldest < first then
    requests, oldest = 0, nil
    local stale = {}
    local buckets = redis.call('HGETALL', KEYS[1])
    for i = 1, #buckets, 2 do
      local field = buckets[i]
      if field ~= 'n' and field ~= 'o' then
        local s = tonumber(field)
        if s < first then
          stale[#stale + 1] = field
        else
          requests = requests + tonumber(buckets[i + 1])
          if oldest == nil or s < oldest then oldest = s end
        end
      end
    end
    if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
    if oldest == nil then
      redis.call('HDEL', KEYS[1], 'n', 'o')
    else
      redis.call('HSET', KEYS[1], 'n', requests, 'o', oldest)
    end
  end
  if oldest ~= nil then nextFree = (oldest + 60) * SECOND - now end
end
if maxc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  slots = redis.call('ZCARD', KEYS[2])
end
local summary = {}
if reserving then
  for _, rid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do
    lk_release(KEYS[5], KEYS[4], rid)
  end
  summary = redis.call('HMGET', KEYS[5], 't', 'd:' .. day, 'm:' .. month)
end
local reservedTokens = math.max(0, lk_num(summary[1]))

local firstMinute = math.floor(now / MINUTE) - 59
local metered, latest, releases = 0, 0, {}
if tph > 0 then
  local stale = {}
  local tok = redis.call('HGETALL', KEYS[3])
  for i = 1, #tok, 2 do
    local minute, tokens = tonumber(tok[i]), tonumber(tok[i + 1])
    if minute < firstMinute then
      stale[#stale + 1] = tok[i]
    else
      metered = metered + tokens
      local at = (minute + 60) * MINUTE
      if at > latest then latest = at end
      releases[#releases + 1] = { at, tokens }
    end
  end
  if #stale > 0 then redis.call('HDEL', KEYS[3], unpack(stale)) end
end
local usedTokens = metered + reservedTokens
local usdDay, usdMonth = 0, 0
if bDay >= 0 then usdDay = lk_num(redis.call('GET', KEYS[6])) + lk_num(summary[2]) end
if bMonth >= 0 then usdMonth = lk_num(redis.call('GET', KEYS[7])) + lk_num(summary[3]) end

local function refuse(index, retryMs)
  return { '0', tostring(index), lk_str(retryMs), tostring(requests), tostring(nextFree),
    lk_str(usedTokens), tostring(latest), '0', '0' }
end

if rpm > 0 and requests >= rpm then return refuse(0, nextFree) end
if maxc > 0 and slots >= maxc then return refuse(1, 0) end

-- Output that must fit: the client's own cap when it set one, else one token (none for a
-- request that produces none).
local need = tonumber(ARGV[17])
local granted = math.huge
if maxOut >= 0 then granted = maxOut end
if tph > 0 then
  local cap = tph - usedTokens - prompt
  if cap < need then
    if prompt + need > tph then return refuse(2, HOUR) end
    -- Only the reservations that expire first (as many as RELEASES_READ in admission.ts): reading
    -- every one made each refusal of a tenant with thousands in flight hold Redis for
    -- milliseconds, every other tenant's admissions waiting behind it.
    local RELEASES_READ = 64
    local pending = redis.call('ZRANGE', KEYS[4], 0, RELEASES_READ - 1, 'WITHSCORES')
    local lastPending = nil
    if #pending > 0 then
      local ids = {}
      for i = 1, #pending, 2 do ids[#ids + 1] = pending[i] end
      local held = redis.call('HMGET', KEYS[5], unpack(ids))
      for j = 1, #ids do
        local at = tonumber(pending[2 * j])
        if held[j] then releases[#releases + 1] = { at, tonumber(string.match(held[j], '^(%S+)')) } end
        lastPending = at
      end
    end
    table.sort(releases, function(a, b) return a[1] < b[1] end)
    local needed, freed, wait = need - cap, 0, HOUR
    for _, r in ipairs(releases) do
      freed = freed + r[2]
      if freed >= needed then wait = math.max(0, r[1] - now) break end
    end
    -- Not enough among those read, with more in flight: no sooner than the last one read.
    if wait == HOUR and redis.call('ZCARD', KEYS[4]) > RELEASES_READ then wait = math.max(0, lastPending - now) end
    return refuse(2, wait)
  end
  granted = math.min(granted, cap)
end

local promptUsd = prompt * inP
local budgets = { { bDay, usdDay, 3, tonumber(ARGV[15]) }, { bMonth, usdMonth, 4, tonumber(ARGV[16]) } }
for _, b in ipairs(budgets) do
  if b[1] >= 0 then
    local remaining = b[1] - b[2]
    local cap = -1
    if remaining > 0 and promptUsd <= remaining then
      if outP <= 0 then cap = math.huge else cap = math.floor((remaining - promptUsd) / outP) end
    end
    if cap < need then return refuse(b[3], b[4] * 1000) end
    granted = math.min(granted, cap)
  end
end

local bounded = -1
local grantedTokens = 0
if granted ~= math.huge then
  -- MAX_GRANTED_OUTPUT in admission.ts: a near-free price must not grant uncountably many tokens.
  bounded = math.max(0, math.floor(math.min(granted, 1000000000)))
  grantedTokens = bounded
end
local tokens = prompt + grantedTokens
local usd = promptUsd + grantedTokens * outP

if rpm > 0 then
  -- The hash must outlive its newest bucket by the window: its expiry moves once per new
  -- bucket (at most once a second), not on every admission.
  if redis.call('HINCRBY', KEYS[1], second, 1) == 1 then
    redis.call('PEXPIRE', KEYS[1], (second + 61) * SECOND - now)
  end
  redis.call('HINCRBY', KEYS[1], 'n', 1)
  requests = requests + 1
  -- A replica whose clock is a little behind may count an older second.
  if oldest == nil or second < oldest then
    redis.call('HSET', KEYS[1], 'o', second)
    oldest = second
    nextFree = (second + 60) * SECOND - now
  end
end
if maxc > 0 then
  redis.call('ZADD', KEYS[2], now + ttl, id)
  redis.call('PEXPIRE', KEYS[2], ttl + MINUTE)
end
if reserving then
  if redis.call('HSETNX', KEYS[5], id, tokens .. ' ' .. lk_str(usd) .. ' ' .. day .. ' ' .. month) == 1 then
    redis.call('ZADD', KEYS[4], now + ttl, id)
    redis.call('HINCRBY', KEYS[5], 'n', 1)
    -- A sum that would add 0 is not written (a missing sum reads as 0).
    if tokens ~= 0 then redis.call('HINCRBY', KEYS[5], 't', tokens) end
    if usd ~= 0 then
      redis.call('HINCRBYFLOAT', KEYS[5], 'd:' .. day, usd)
      redis.call('HINCRBYFLOAT', KEYS[5], 'm:' .. month, usd)
    end
    redis.call('PEXPIRE', KEYS[4], ttl + MINUTE)
    redis.call('PEXPIRE', KEYS[5], ttl + MINUTE)
    usedTokens = usedTokens + tokens
  end
end
return { '1', tostring(bounded), '0', tostring(requests), tostring(nextFree), lk_str(usedTokens),
  tostring(latest), tostring(tokens), lk_str(usd) }
