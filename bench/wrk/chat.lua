-- wrk script for the benchmark: POSTs the body in LK_BENCH_BODY with the API key in
-- LK_BENCH_KEY, and prints one machine-readable line (prefixed "LKBENCH ") at the end.
-- With LK_BENCH_KEYS=N the requests go round the N keys LK_BENCH_KEY-0 .. LK_BENCH_KEY-(N-1)
-- (bench/lanekeeper-config.ts benchKey), one tenant after another; each request is built
-- once in init, so wrk's own cost per request does not change with N.
wrk.method = "POST"
wrk.path = os.getenv("LK_BENCH_PATH") or "/v1/chat/completions"
wrk.body = os.getenv("LK_BENCH_BODY")
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. (os.getenv("LK_BENCH_KEY") or "none")

local keys = tonumber(os.getenv("LK_BENCH_KEYS") or "0")
local requests = {}
local n = 0

function init(args)
  for i = 0, keys - 1 do
    local headers = {
      ["content-type"] = "application/json",
      ["authorization"] = "Bearer " .. os.getenv("LK_BENCH_KEY") .. "-" .. i,
    }
    requests[i + 1] = wrk.format(wrk.method, wrk.path, headers, wrk.body)
  end
end

if keys > 0 then
  function request()
    n = (n % keys) + 1
    return requests[n]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'LKBENCH {"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
