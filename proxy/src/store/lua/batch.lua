-- Shared by finish.lua (prepended before settle.lua and record.lua when the scripts load).
-- What one finish call writes is gathered first and written at the end (lk_flush): sums per
-- key and field, member removals, prunes and expiries, so N requests of one tenant that end
-- together cost one HINCRBY per counter, one EXPIRE per key and so on, not N of each.
-- Integer sums are exact; float sums (USD) are added in Lua doubles first, which can differ
-- from N separate INCRBYFLOATs only in the last digits. Keys are written in the order they
-- were first touched, so a call's effects do not depend on table iteration order.
local lk_writes, lk_order = {}, {}

-- True when the tenant owning `key` (a `prefix{tenant}:...` key) was erased: the control plane
-- sets `prefix{tenant}:erased` before it sweeps, so a request that ends after the sweep
-- writes nothing back (same hash slot as the tenant's other keys).
local function lk_erased(key)
  local base = string.match(key, '^(.-}:)')
  return base ~= nil and redis.call('EXISTS', base .. 'erased') == 1
end

local function lk_entry(key)
  local e = lk_writes[key]
  if not e then
    e = { fields = {}, sums = {}, floats = {} }
    lk_writes[key] = e
    lk_order[#lk_order + 1] = key
  end
  return e
end

-- Adds `by` to a HASH field, or to a STRING key when field is ''. `float`: HINCRBYFLOAT /
-- INCRBYFLOAT instead of HINCRBY. `ttl`: seconds, set when the field is created by this
-- call (its sum comes back equal to what was added), so a key's expiry is set once, by the
-- write that creates it, instead of on every write.
local function lk_incr(key, field, by, float, ttl)
  local e = lk_entry(key)
  if e.sums[field] == nil then
    e.fields[#e.fields + 1] = field
    e.sums[field] = 0
    e.floats[field] = float
  end
  e.sums[field] = e.sums[field] + by
  if ttl then e.ttlNew = ttl end
end

-- Expires the key `ttl` seconds after this call, whatever else is written to it.
local function lk_expire(key, ttl)
  lk_entry(key).ttl = ttl
end

-- Removes members from a ZSET.
local function lk_zrem(key, member)
  local e = lk_entry(key)
  if not e.zrem then e.zrem = {} end
  e.zrem[#e.zrem + 1] = member
end

-- Removes members of a ZSET scored at or below `score`.
local function lk_prune(key, score)
  local e = lk_entry(key)
  if not e.below or score > e.below then e.below = score end
end

local function lk_flush()
  for _, key in ipairs(lk_order) do
    local e = lk_writes[key]
    if e.zrem then redis.call('ZREM', key, unpack(e.zrem)) end
    if e.below then redis.call('ZREMRANGEBYSCORE', key, '-inf', e.below) end
    local created = false
    for _, field in ipairs(e.fields) do
      local by, sum = e.sums[field], nil
      if field == '' then
        sum = redis.call('INCRBYFLOAT', key, lk_str(by))
      elseif e.floats[field] then
        sum = redis.call('HINCRBYFLOAT', key, field, lk_str(by))
      else
        sum = redis.call('HINCRBY', key, field, by)
      end
      -- A float sum is compared loosely: it comes back formatted by Redis.
      if math.abs(tonumber(sum) - by) <= math.abs(by) * 1e-9 then created = true end
    end
    if e.ttl then
      redis.call('EXPIRE', key, e.ttl)
    elseif e.ttlNew and created then
      redis.call('EXPIRE', key, e.ttlNew)
    end
  end
end
