-- wrk script for the benchmark: POSTs the body in LK_BENCH_BODY with the API key in
-- LK_BENCH_KEY, and prints one machine-readable line (prefixed "LKBENCH ") at the end.
wrk.method = "POST"
wrk.path = os.getenv("LK_BENCH_PATH") or "/v1/chat/completions"
wrk.body = os.getenv("LK_BENCH_BODY")
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. (os.getenv("LK_BENCH_KEY") or "none")

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'LKBENCH {"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
