-- The admissions that arrived in one event-loop turn, in one call: admit.lua, prepended as the
-- body of `lk_admit(KEYS, ARGV)`, runs once per admission, in arrival order, on that
-- admission's own 7 KEYS and 17 ARGV (see admit.lua), laid out one admission after another.
-- Each admission sees everything the ones before it wrote, exactly as separate calls made in
-- that order would. In Redis Cluster every key of one call is of one tenant (one hash slot).
-- Returns one reply per admission: admit.lua's array of strings, or { 'e', message } when
-- that admission raised an error (the others still run, as they would have alone).
local replies = {}
local a = 0
for k = 0, #KEYS - 1, 7 do
  local keys = { KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5], KEYS[k + 6], KEYS[k + 7] }
  local argv = {}
  for i = 1, 17 do argv[i] = ARGV[a + i] end
  a = a + 17
  local ok, reply = pcall(lk_admit, keys, argv)
  if not ok then
    -- A failed redis.call raises a string (Redis 7.0) or a table with `err` (later versions).
    if type(reply) == 'table' then reply = reply.err end
    reply = { 'e', tostring(reply) }
  end
  replies[#replies + 1] = reply
end
return replies
