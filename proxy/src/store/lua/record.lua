-- Adds one usage event to its tenant-hour bucket and the all-time counters, once per request id.
-- KEYS: 1 hour HASH, 2 request ids of that hour (SET), 3 all-time HASH
-- ARGV: 1 request id, 2 retention s, 3 dedupe window s, then field/value pairs (the last
--       pair is the float cost). The id SET only has to outlive a replay (minutes to hours),
--       not the bucket, so it expires sooner and stays small.
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
for i = 4, #ARGV - 2, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[i + 1])
end
redis.call('HINCRBYFLOAT', KEYS[1], ARGV[#ARGV - 1], ARGV[#ARGV])
redis.call('HINCRBYFLOAT', KEYS[3], ARGV[#ARGV - 1], ARGV[#ARGV])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
