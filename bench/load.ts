/**
 * Drives load: `wrk` for throughput (closed loop, fixed connections) and the paced client
 * (open loop, fixed rate) for latency, each run on the load generator's core. Both return
 * the same Measurement shape, so the report treats them alike.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pinned } from './processes.js';

const run = promisify(execFile);
const WRK_SCRIPT = fileURLToPath(new URL('./wrk/chat.lua', import.meta.url));
const PACED_CLIENT = fileURLToPath(new URL('./paced-client.ts', import.meta.url));

/** What one timed run of one scenario against one target measured. */
export interface Measurement {
  requests: number;
  seconds: number;
  rps: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

/** A request the load generator sends. */
export interface LoadRequest {
  url: string;
  body: string;
  apiKey: string;
  /** Spread over this many keys, `${apiKey}-0` .. (benchKey in lanekeeper-config.ts); one key when absent. */
  keys?: number;
}

function loadEnv(request: LoadRequest): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LK_BENCH_BODY: request.body,
    LK_BENCH_KEY: request.apiKey,
    LK_BENCH_KEYS: String(request.keys ?? 0),
  };
}

interface WrkSummary {
  requests: number;
  duration_us: number;
  errors: Record<'connect' | 'read' | 'write' | 'status' | 'timeout', number>;
  latency_us: { p50: number; p99: number };
}

/** Runs wrk for `seconds` with `connections` connections on one thread. */
export async function runWrk(
  request: LoadRequest,
  options: { seconds: number; connections: number; core: string | undefined },
): Promise<Measurement> {
  const [command, args] = pinned(options.core, 'wrk', [
    '-t1',
    `-c${options.connections}`,
    `-d${options.seconds}s`,
    '--timeout',
    '5s',
    '-s',
    WRK_SCRIPT,
    request.url,
  ]);
  const { stdout } = await run(command, args, {
    env: loadEnv(request),
    timeout: (options.seconds + 30) * 1000,
  });
  const line = stdout.split('\n').find((l) => l.startsWith('LKBENCH '));
  if (!line) throw new Error(`wrk printed no summary:\n${stdout}`);
  const summary = JSON.parse(line.slice('LKBENCH '.length)) as WrkSummary;
  const seconds = summary.duration_us / 1e6;
  const e = summary.errors;
  return {
    requests: summary.requests,
    seconds,
    rps: summary.requests / seconds,
    errors: e.connect + e.read + e.write + e.status + e.timeout,
    p50Ms: summary.latency_us.p50 / 1000,
    p99Ms: summary.latency_us.p99 / 1000,
  };
}

/** Runs the paced client: `rate` requests per second for `seconds`, latency of each recorded. */
export async function runPaced(
  request: LoadRequest,
  options: { seconds: number; rate: number; core: string | undefined },
): Promise<Measurement> {
  const [command, args] = pinned(options.core, process.execPath, [
    '--import',
    'tsx',
    PACED_CLIENT,
    '--url',
    request.url,
    '--rate',
    String(options.rate),
    '--seconds',
    String(options.seconds),
  ]);
  const { stdout } = await run(command, args, {
    env: loadEnv(request),
    timeout: (options.seconds + 30) * 1000,
  });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Measurement;
}
