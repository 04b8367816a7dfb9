-- Everything that ends requests, in one call: settles reservations (settle.lua), counts usage
-- events (record.lua) and appends each event to the usage stream, for any number of
-- requests. The ops only check for replays and gather their writes (batch.lua), which are
-- made once per key and field at the end. The store batches what ends within one turn of the event loop into one call, so
-- a request costs one round trip and one script after its response, not four commands.
-- In Redis Cluster every key of one call is of one tenant (one hash slot); the stream lives
-- in another slot there, so the store appends to it with XADD beside this call instead.
-- ARGV: 1 day key TTL s, 2 month key TTL s, 3 hour retention s, 4 record dedupe window s,
--       5 stream MAXLEN (~), or '' when the caller appends to the stream itself; then ops:
--         's', request id, tokens, usd, admission time ms, has    (7 KEYS, see settle.lua)
--         'r', request id, event JSON, 6 counters, cost            (3 KEYS, see record.lua)
-- KEYS: the stream first when ARGV[5] is set, then each op's keys in op order.
-- Returns one integer per op: 1 applied, 0 a replay of an id already counted (the stream
-- still gets the event: it is at-least-once and consumers dedupe by request_id), -1 the
-- tenant was erased (nothing written, no event appended).
local dayTtl, monthTtl = tonumber(ARGV[1]), tonumber(ARGV[2])
local retention, dedupe = tonumber(ARGV[3]), tonumber(ARGV[4])
local maxlen = ARGV[5]
local k = 1
if maxlen ~= '' then k = 2 end
local a = 6
local applied = {}
while a <= #ARGV do
  if ARGV[a] == 's' then
    if lk_erased(KEYS[k]) then
      applied[#applied + 1] = -1
    else
      applied[#applied + 1] = lk_settle(k, ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]),
        tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), dayTtl, monthTtl)
    end
    k = k + 7
    a = a + 6
  else
    if lk_erased(KEYS[k]) then
      applied[#applied + 1] = -1
    else
      if maxlen ~= '' then
        redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'event', ARGV[a + 2])
      end
      applied[#applied + 1] = lk_record(k, ARGV[a + 1], a + 3, retention, dedupe)
    end
    k = k + 3
    a = a + 10
  end
end
lk_release_all()
lk_flush()
return applied
