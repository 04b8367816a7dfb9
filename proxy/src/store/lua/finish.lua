-- Everything that ends requests, in one call: settles reservations (settle.lua), counts usage
-- events (record.lua) and appends each event to the usage stream, for any number of
-- requests. The ops only check for replays (guard.lua) and gather their writes (batch.lua),
-- which are made once per key and field at the end. The store batches what ends within one
-- turn of the event loop into one call, so a request costs one round trip and one script
-- after its response, not four commands.
-- In Redis Cluster every key of one call is of one tenant (one hash slot); the stream lives
-- in another slot there, so the store appends to it with XADD beside this call instead.
-- ARGV: 1 day key TTL s, 2 month key TTL s, 3 hour retention s, 4 replay mark TTL ms,
--       5 stream MAXLEN (~), or '' when the caller appends to the stream itself,
--       6 the proxy's instance id, 7 this call's number; then ops:
--         's', request id, tokens, usd, admission time ms, has, prior   (7 KEYS, settle.lua)
--         'r', request id, event JSON, 6 counters, cost, prior           (3 KEYS, record.lua)
--         'a', call numbers whose marks the proxy acknowledges            (1 KEY: marks)
--       `prior`: numbers of earlier calls this op was sent in whose answer was lost.
-- KEYS: the stream first when ARGV[5] is set, then each op's keys in op order.
-- Returns one integer per 's' and 'r' op: 1 applied, 0 a replay of an op an earlier run
-- applied (nothing written, no event appended), -1 the tenant was erased (likewise).
local dayTtl, monthTtl = tonumber(ARGV[1]), tonumber(ARGV[2])
local retention, markTtl = tonumber(ARGV[3]), tonumber(ARGV[4])
local maxlen = ARGV[5]
local instance, call = ARGV[6], ARGV[7]
local k = 1
if maxlen ~= '' then k = 2 end
local a = 8
local applied = {}
while a <= #ARGV do
  local op = ARGV[a]
  if op == 's' then
    if lk_erased(KEYS[k]) then
      applied[#applied + 1] = -1
    else
      local replay = lk_replayed(KEYS[k + 6], instance, call, ARGV[a + 6])
      applied[#applied + 1] = lk_settle(k, ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]),
        tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), dayTtl, monthTtl, replay)
    end
    k = k + 7
    a = a + 7
  elseif op == 'r' then
    if lk_erased(KEYS[k]) then
      applied[#applied + 1] = -1
    else
      local replay = lk_replayed(KEYS[k + 1], instance, call, ARGV[a + 10])
      if maxlen ~= '' and not replay then
        redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'event', ARGV[a + 2])
      end
      applied[#applied + 1] = lk_record(k, a + 3, retention, replay)
    end
    k = k + 3
    a = a + 11
  else
    lk_forget(KEYS[k], instance, ARGV[a + 1])
    k = k + 1
    a = a + 2
  end
end
lk_release_all()
lk_flush()
lk_mark_all(instance, call, markTtl)
return applied
