-- wrk script for the soak: alternates a non-streaming and a streaming chat request
-- (bodies in LK_BENCH_BODY and LK_BENCH_STREAM_BODY), so both paths run for the whole soak.
local headers = {
  ["content-type"] = "application/json",
  ["authorization"] = "Bearer " .. (os.getenv("LK_BENCH_KEY") or "none"),
}
local path = "/v1/chat/completions"
local bodies = { os.getenv("LK_BENCH_BODY"), os.getenv("LK_BENCH_STREAM_BODY") }
local n = 0

function request()
  n = n + 1
  return wrk.format("POST", path, headers, bodies[(n % 2) + 1])
end

function done(summary, latency, requests)
  io.write(string.format('LKBENCH {"requests":%d,"duration_us":%d,"errors":%d}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
