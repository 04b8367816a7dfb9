/**
 * An open-loop client for latency at a moderate, fixed rate (what wrk2 would do; it is not
 * in Debian). Requests are started on a schedule, never waiting for earlier answers, over a
 * keep-alive pool, and each one's latency runs from the moment it was written to the last
 * byte of its answer. Prints one JSON Measurement line.
 *
 * Run: `node --import tsx bench/paced-client.ts --url URL --rate 500 --seconds 10`, with the
 * body in LK_BENCH_BODY and the key in LK_BENCH_KEY (with LK_BENCH_KEYS=N, the N keys
 * `${LK_BENCH_KEY}-<i>` in turn, as bench/wrk/chat.lua does).
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(name);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

/** The value at quantile `q` (0..1) of ascending `sorted`. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index] as number;
}

const url = new URL(option('--url', 'http://127.0.0.1:8080/v1/chat/completions'));
const rate = Number(option('--rate', '500'));
const seconds = Number(option('--seconds', '10'));
const body = Buffer.from(process.env.LK_BENCH_BODY ?? '{}');
const key = process.env.LK_BENCH_KEY ?? 'none';
const keyCount = Number(process.env.LK_BENCH_KEYS ?? '0');
const headerSets = (keyCount > 0 ? Array.from({ length: keyCount }, (_, i) => `${key}-${i}`) : [key]).map(
  (k) => ({
    'content-type': 'application/json',
    'content-length': String(body.length),
    authorization: `Bearer ${k}`,
  }),
);
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const latencies: number[] = [];
let errors = 0;
let inFlight = 0;

function send(n: number): void {
  const headers = headerSets[n % headerSets.length];
  const startedAt = performance.now();
  inFlight++;
  const req = request(
    { agent, host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers },
    (res) => {
      res.on('data', () => undefined);
      res.on('end', () => {
        inFlight--;
        if (res.statusCode === 200) latencies.push(performance.now() - startedAt);
        else errors++;
      });
    },
  );
  req.on('error', () => {
    inFlight--;
    errors++;
  });
  req.end(body);
}

const total = Math.round(rate * seconds);
const began = performance.now();
let sent = 0;
await new Promise<void>((resolve) => {
  const tick = () => {
    const due = Math.min(total, Math.floor(((performance.now() - began) / 1000) * rate));
    while (sent < due) {
      send(sent);
      sent++;
    }
    if (sent >= total) return resolve();
    setTimeout(tick, 1);
  };
  tick();
});
const deadline = performance.now() + 10_000;
while (inFlight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
const elapsed = (performance.now() - began) / 1000;
latencies.sort((a, b) => a - b);
process.stdout.write(
  `${JSON.stringify({
    requests: latencies.length,
    seconds: elapsed,
    rps: latencies.length / elapsed,
    errors: errors + inFlight,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
  })}\n`,
);
agent.destroy();
