/**
 * What tracing at ratio 1.0 costs a request, measured so that the machine's own swings
 * cancel out: two compiled proxies run side by side on the same core, one with tracing off
 * and one exporting every request to an OTLP sink (in its own process, as a collector is),
 * and both get the same paced load at the same time. Over each window the difference of
 * their CPU per request (from /proc) is tracing's cost; the median of the windows is the
 * figure. Running the two one after the other instead (the main table's rounds) puts
 * whatever the host did meanwhile into the difference: on this VM, tens of µs.
 *
 * The windows are spread over several pairs of fresh processes (`pairs`): a process keeps
 * its own offset for its whole life (where its heap and code landed, what V8 inlined): two
 * builds differing only in a detail read up to ~3 µs apart over every window of one pair,
 * and one build read ~18 µs higher in every window of one round of trace-ab.ts than of
 * another (docs/observability.md). Fresh pairs average that out; more windows of one pair
 * do not.
 * Five pairs by default: back to back on 2026-12-06, three pairs read 9.1 µs and five read
 * 16.7 µs, one pair of the three having read 3.1 µs.
 *
 *   npx tsx bench/trace-cost.ts [--pairs 5] [--windows 3] [--seconds 10] [--rate 1000] [--stream] [--ratio 1]
 *
 * `--windows` is per pair.
 *
 * `--src DIR` measures the proxy of another checkout (a copy of the tree before a change).
 *
 * `--profile` writes both proxies' CPU profiles to bench/results/profiles, a file per process
 * of each pair (bench/profile-summary.ts reads them).
 *
 * `npm run bench` runs it after the table when the traced target is among its targets.
 */
import { join } from 'node:path';
import { chatBody, BENCH_API_KEY } from './lanekeeper-config.js';
import { runPaced, type Measurement } from './load.js';
import { startSinkProcess } from './otlp-sink-process.js';
import { coreLayout, cpuSeconds } from './processes.js';
import { buildLanekeeper, RESULTS_DIR, startLanekeeper, startUpstream, type Target } from './targets.js';

export interface TraceCost {
  /** Median over the windows of every pair of traced minus untraced CPU µs per request. */
  usPerRequest: number;
  windows: { pair: number; offUs: number; onUs: number; tracedRequests: number }[];
  /** Each pair's own median, in start order. */
  pairMedians: number[];
  rate: number;
  seconds: number;
  stream: boolean;
  /** Export bytes per traced request. */
  exportBytesPerRequest: number;
}

export interface TraceCostOptions {
  /** Pairs of fresh processes, one after the other (default 1). */
  pairs?: number;
  /** Windows per pair. */
  windows: number;
  seconds: number;
  /** Paced requests per second to each proxy. */
  rate: number;
  stream: boolean;
  /** The traced proxy's sample_ratio (default 1). */
  ratio?: number;
  /** Write both proxies' CPU profiles under this directory (lanekeeper-memory/, lanekeeper-traced/). */
  profileDir?: string;
  /** The compiled CLI (buildLanekeeper); built here when absent. */
  builtCli?: string;
  log?: (line: string) => void;
}

/** Load before the first window of each pair of fresh processes (trace-ab.ts's rounds too). */
export const WARM_SECONDS = 10;

/** Pairs of fresh processes unless told otherwise (`npm run bench` too); why five is above. */
export const TRACE_COST_PAIRS = 5;

/**
 * One window of processes side by side: each target's load runs at the same time, and each
 * target's CPU µs per request over it comes back, in order, with its request count. Throws
 * (`label` first) when a target answered with errors or not at all.
 */
export async function cpuPerRequestWindow(
  targets: Target[],
  load: (target: Target) => Promise<Measurement>,
  label: string,
): Promise<{ us: number[]; requests: number[] }> {
  const before = targets.map((target) => cpuSeconds(target.process!.pid));
  const results = await Promise.all(targets.map(load));
  const after = targets.map((target) => cpuSeconds(target.process!.pid));
  if (results.some((r) => r.errors > 0 || r.requests === 0))
    throw new Error(`${label}: errors (${results.map((r) => `${r.errors} of ${r.requests}`).join(', ')})`);
  return {
    us: results.map((r, i) => ((after[i]! - before[i]!) / r.requests) * 1e6),
    requests: results.map((r) => r.requests),
  };
}

export async function measureTraceCost(options: TraceCostOptions): Promise<TraceCost> {
  const log = options.log ?? ((line: string) => console.log(line));
  const layout = coreLayout();
  const builtCli = options.builtCli ?? buildLanekeeper('trace-cost');
  const upstream = await startUpstream(layout.upstream);
  // The collector sits with the load generator, off the proxies' core.
  const sink = await startSinkProcess(layout.load);
  let started: Target[] = [];
  const windows: TraceCost['windows'] = [];
  const pairMedians: number[] = [];
  let warmed = 0;
  const { profileDir } = options;
  const path = '/v1/chat/completions';
  const body = chatBody(options.stream);
  const load = (target: Target, seconds: number) =>
    runPaced(
      { url: `${target.url}${path}`, body, apiKey: BENCH_API_KEY },
      { seconds, rate: options.rate, core: layout.load },
    );
  const startOff = () =>
    startLanekeeper({ upstreamUrl: upstream.url, core: layout.proxy, builtCli, profileDir });
  const startOn = () =>
    startLanekeeper({
      upstreamUrl: upstream.url,
      core: layout.proxy,
      builtCli,
      profileDir,
      otlpEndpoint: sink.url,
      sampleRatio: options.ratio,
    });
  try {
    for (let pair = 1; pair <= (options.pairs ?? 1); pair++) {
      // Started in turn first and second: the order is part of a process's lot.
      let off: Target;
      let on: Target;
      if (pair % 2 === 1) {
        started.push((off = await startOff()));
        started.push((on = await startOn()));
      } else {
        started.push((on = await startOn()));
        started.push((off = await startOff()));
      }
      // Warm both (JIT, connection pools) before measuring: after 3 s, the first window of
      // a fresh pair still read up to 11 µs a request above its next ones.
      warmed += (await Promise.all([load(off, WARM_SECONDS), load(on, WARM_SECONDS)]))[1].requests;
      const costs: number[] = [];
      for (let i = 0; i < options.windows; i++) {
        const { us, requests } = await cpuPerRequestWindow(
          [off, on],
          (target) => load(target, options.seconds),
          `pair ${pair} window ${i + 1} (untraced, traced)`,
        );
        const [offUs, onUs] = us as [number, number];
        windows.push({ pair, offUs, onUs, tracedRequests: requests[1]! });
        costs.push(onUs - offUs);
        log(
          `[trace-cost] pair ${pair} window ${i + 1}: off ${offUs.toFixed(1)}, on ${onUs.toFixed(1)} µs CPU/request: tracing ${(onUs - offUs).toFixed(1)} µs`,
        );
      }
      pairMedians.push(median(costs));
      // The traced proxy sends what it still holds as it stops, before the sink counts.
      await Promise.all(started.map((target) => target.stop()));
      started = [];
    }
  } finally {
    await Promise.all(started.map((target) => target.stop()));
    await sink.stop();
    await upstream.stop();
  }
  const tracedRequests = windows.reduce((sum, w) => sum + w.tracedRequests, 0) + warmed;
  return {
    usPerRequest: median(windows.map((w) => w.onUs - w.offUs)),
    windows,
    pairMedians,
    rate: options.rate,
    seconds: options.seconds,
    stream: options.stream,
    exportBytesPerRequest: sink.received.bytes / tracedRequests,
  };
}

/**
 * The middle value (the upper one of an even count; NaN for none). Not run.ts's median,
 * which averages the middle two: tracing's figure has been the upper middle window since
 * it was first measured.
 */
export function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/** A numeric command-line flag (`--windows 7`), or `fallback` when absent. */
export function flagValue(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const sourceAt = process.argv.indexOf('--src');
  const source = sourceAt >= 0 ? process.argv[sourceAt + 1] : undefined;
  const result = await measureTraceCost({
    pairs: flagValue('--pairs', TRACE_COST_PAIRS),
    windows: flagValue('--windows', 3),
    seconds: flagValue('--seconds', 10),
    rate: flagValue('--rate', 1000),
    stream: process.argv.includes('--stream'),
    ratio: flagValue('--ratio', 1),
    profileDir: process.argv.includes('--profile') ? join(RESULTS_DIR, 'profiles') : undefined,
    builtCli: source ? buildLanekeeper('trace-cost-src', source) : undefined,
  });
  console.log(
    `tracing at ratio ${flagValue('--ratio', 1)} costs ${result.usPerRequest.toFixed(1)} µs CPU per request (median of ${result.windows.length} windows over ${result.pairMedians.length} process pairs, ${result.stream ? 'SSE' : 'JSON'} at ${result.rate} req/s each; each pair's median: ${result.pairMedians.map((m) => m.toFixed(1)).join(', ')}); ${result.exportBytesPerRequest.toFixed(0)} bytes exported per request`,
  );
}
