-- Shared by finish.lua (prepended when the scripts load).
-- Adds one usage event to its tenant-hour bucket and the all-time counters, unless `replay`
-- (the op was applied by an earlier run, see guard.lua). The counters are HOUR_FIELDS of @lanekeeper/contract (redis-layout.ts), in that order; a counter that would
-- add 0 is skipped (readers take a missing field as 0), which saves most of the writes of an
-- event without cache or reasoning tokens. The bucket expires `retention` after it was
-- created. The writes are gathered (batch.lua). Returns 1, or 0 for a replay.
-- k: index in KEYS of the hour HASH, then the tenant's marks ZSET (guard.lua; not used
-- here), then the all-time HASH.
-- a: index in ARGV of the six integer counters, then the float cost.
local LK_COUNTERS = { 'requests', 'input_tokens', 'output_tokens', 'cached_input_tokens',
  'cache_write_tokens', 'reasoning_tokens' }

local function lk_record(k, a, retention, replay)
  if replay then return 0 end
  for i = 1, 6 do
    local add = tonumber(ARGV[a + i - 1])
    if add ~= 0 then
      lk_incr(KEYS[k], LK_COUNTERS[i], add, false, retention)
      lk_incr(KEYS[k + 2], LK_COUNTERS[i], add, false, nil)
    end
  end
  local cost = tonumber(ARGV[a + 6])
  if cost ~= 0 then
    lk_incr(KEYS[k], 'estimated_cost', cost, true, retention)
    lk_incr(KEYS[k + 2], 'estimated_cost', cost, true, nil)
  end
  return 1
end
