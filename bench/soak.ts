/**
 * `npm run bench -- --soak [--soak-seconds N] [--soak-store memory|redis]`: Lanekeeper under steady load
 * (wrk alternating JSON and streaming chat) for 10 minutes by default, with its RSS (from
 * /proc) and V8 heap (from the admin listener's `nodejs_heap_size_used_bytes`)
 * sampled every 10 s. A least-squares line through the second half of the samples (after
 * start-up and JIT warm-up have settled) decides whether memory grew beyond noise.
 */
import { redisMemoryPerTenant } from './redis-memory.js';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chatBody, BENCH_API_KEY } from './lanekeeper-config.js';
import { coreLayout, rssBytes } from './processes.js';
import { RESULTS_DIR, buildLanekeeper, startLanekeeper, startUpstream } from './targets.js';
import { growthVerdict, type Sample } from './trend.js';

const SOAK_SCRIPT = fileURLToPath(new URL('./wrk/soak.lua', import.meta.url));
const HEAP_METRIC = 'nodejs_heap_size_used_bytes';
const SAMPLE_EVERY_S = 10;

async function heapUsed(adminUrl: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${HEAP_METRIC} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

function log(message: string): void {
  process.stderr.write(`[soak] ${message}\n`);
}

export async function runSoak(options: {
  seconds: number;
  /** Run the TypeScript sources through tsx rather than the compiled build. */
  fromSource?: boolean;
  /** Which Lanekeeper store to soak: memory (default) or the shared Redis. */
  store: 'memory' | 'redis';
  profile: boolean;
  ensureWrk: () => void;
}): Promise<void> {
  options.ensureWrk();
  const layout = coreLayout();
  const upstream = await startUpstream(layout.upstream);
  const profileDir = options.profile ? join(RESULTS_DIR, 'profiles') : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const proxy = await startLanekeeper({
    upstreamUrl: upstream.url,
    core: layout.proxy,
    profileDir,
    redisUrl: options.store === 'redis' ? (process.env.REDIS_URL ?? 'redis://127.0.0.1:6379') : undefined,
    builtCli: options.fromSource ? undefined : buildLanekeeper('soak'),
  });
  const pid = proxy.process?.pid as number;
  const redis = proxy.redis;
  const adminUrl = proxy.adminUrl as string;
  const samples: Sample[] = [];
  let wrkOutput = '';
  try {
    const args = [
      '-t1',
      '-c32',
      `-d${options.seconds + 5}s`,
      '--timeout',
      '5s',
      '-s',
      SOAK_SCRIPT,
      `${proxy.url}/`,
    ];
    const command = layout.load === undefined ? 'wrk' : 'taskset';
    const argv = layout.load === undefined ? args : ['-c', layout.load, 'wrk', ...args];
    const load = new Promise<void>((resolve) => {
      execFile(
        command,
        argv,
        {
          env: {
            ...process.env,
            LK_BENCH_BODY: chatBody(false),
            LK_BENCH_STREAM_BODY: chatBody(true),
            LK_BENCH_KEY: BENCH_API_KEY,
          },
          timeout: (options.seconds + 60) * 1000,
        },
        (_error, stdout) => {
          wrkOutput = stdout;
          resolve();
        },
      );
    });
    log(`${options.seconds} s of load, sampling every ${SAMPLE_EVERY_S} s (${layout.description})`);
    const began = Date.now();
    for (let t = 0; t <= options.seconds; t += SAMPLE_EVERY_S) {
      const wait = began + t * 1000 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const sample: Sample = { t, rss: rssBytes(pid), heap: await heapUsed(adminUrl) };
      if (redis) {
        const m = await redisMemoryPerTenant(redis.url, redis.keyPrefix);
        sample.redisState = m.stateBytes;
        sample.redisReplayGuards = m.replayGuardBytes;
      }
      samples.push(sample);
      log(
        `t=${t}s rss=${(sample.rss / 2 ** 20).toFixed(1)} MiB heap=${(sample.heap / 2 ** 20).toFixed(1)} MiB` +
          (redis
            ? ` redis: limits and meters ${sample.redisState} B, replay guards ${((sample.redisReplayGuards ?? 0) / 2 ** 20).toFixed(1)} MiB`
            : ''),
      );
    }
    await load;
  } finally {
    await proxy.stop();
    await upstream.stop();
  }
  const summaryLine = wrkOutput.split('\n').find((l) => l.startsWith('LKBENCH '));
  const wrk = summaryLine
    ? (JSON.parse(summaryLine.slice(8)) as { requests: number; errors: number })
    : undefined;
  const rss = growthVerdict(samples.map((s) => ({ t: s.t, value: s.rss })));
  const heap = growthVerdict(samples.map((s) => ({ t: s.t, value: s.heap })));
  // Growth per request served tells a leak (per request, forever) from a bounded window
  // that is still filling (e.g. the memory store's 2 h of settled request ids).
  const rate = (wrk?.requests ?? 0) / options.seconds;
  const perRequest = (slope: number) => (rate > 0 ? `${(slope / rate).toFixed(0)} B/request` : 'n/a');
  const date = new Date().toISOString();
  const redisState = redis
    ? growthVerdict(samples.map((s) => ({ t: s.t, value: s.redisState ?? 0 })))
    : undefined;
  const guards = redis ? samples.map((s) => s.redisReplayGuards ?? 0) : [];
  const lastGuards = guards.at(-1) ?? 0;
  const report = [
    `Lanekeeper soak, ${date}, ${cpus().length} cores, ${options.seconds} s, ${wrk?.requests ?? '?'} requests (${wrk?.errors ?? '?'} errors)`,
    `store: ${options.store}`,
    `RSS:  ${rss.summary}, ${perRequest(rss.slopeBytesPerS)}`,
    `heap: ${heap.summary}, ${perRequest(heap.slopeBytesPerS)}`,
    ...(redisState
      ? [
          `Redis, the tenant's limits and meters: ${redisState.summary}`,
          // One id per request for the 2 h replay window (docs/redis.md): it fills, then holds.
          `Redis, replay guards: ${(lastGuards / 2 ** 20).toFixed(1)} MiB after ${wrk?.requests ?? '?'} requests (${wrk?.requests ? (lastGuards / wrk.requests).toFixed(0) : '?'} B/request, kept 2 h)`,
        ]
      : []),
    rss.grew || heap.grew || redisState?.grew
      ? 'VERDICT: memory grew beyond noise'
      : 'VERDICT: memory flat (no growth beyond noise)',
  ].join('\n');
  process.stdout.write(`\n${report}\n`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `soak-${date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ date, seconds: options.seconds, wrk, samples, rss, heap, redisState, report }, null, 2)}\n`,
  );
  log(`saved ${file}`);
}
