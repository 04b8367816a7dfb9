/**
 * `npm run bench`: the whole benchmark in one command. Makes sure wrk is installed, starts
 * the mock upstream and every target at once (the upstream itself, the Node floor, a bare
 * undici pass-through for reference, Lanekeeper in memory mode, in Redis mode, and in memory
 * mode with every request translated to an Anthropic-dialect upstream), drives
 * each through the scenarios (non-streaming chat, streaming chat, latency at a paced rate)
 * in interleaved rounds with a warm-up before each, and prints the table with ratios to the
 * floor measured in this same run. The JSON goes to bench/results/ (gitignored).
 *
 * Flags: --seconds N (timed run per scenario and round, default 5), --rounds N (default 3;
 * rounds interleave the targets and the table shows medians), --warmup N (default 2),
 * --connections N (wrk, default 64), --rate N (paced req/s, default 500), --targets a,b,
 * --scenarios json,stream,paced (a subset, for example one scenario per profile),
 * --no-pin, --profile (Lanekeeper under --cpu-prof; profiles in bench/results/profiles),
 * --baseline-src DIR (also run the Lanekeeper CLI found in DIR/proxy/src, memory mode, as
 * `lanekeeper-baseline`: a copy of the tree before a change, for A/B in one run),
 * --shared-redis (Redis mode against REDIS_URL or the machine's Redis at 127.0.0.1:6379
 * instead of a redis-server of its own, pinned with the load generator),
 * --burst-seconds N (default 5), --burst-pause N (default 61: past the minute window, so
 * everything the burst counted has aged out by the next request),
 * --soak [--soak-seconds N] [--soak-store memory|redis] (see soak.ts),
 * --no-trace-cost, --trace-cost-pairs N (default 5), --trace-cost-windows N (per pair,
 * default 3): with the traced target, tracing's cost per request is also measured with an
 * untraced and a traced proxy side by side, over N pairs of fresh processes
 * (trace-cost.ts), about three minutes more.
 *
 * The many-tenant targets (`-10k`) carry 10,000 tenants and spread the load over 1,000 of
 * them. After the rounds, each Redis-mode target gets the burst scenario: one tenant at full
 * speed, a pause, then the paced run as that tenant; and the Redis memory per active tenant
 * is read before its keys are deleted.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chatBody, BENCH_API_KEY, BURST_API_KEY } from './lanekeeper-config.js';
import { runPaced, runWrk, type LoadRequest } from './load.js';
import { coreLayout, cpuSeconds } from './processes.js';
import {
  checkTargets,
  cpuPerRequest,
  formatChecks,
  formatTable,
  ratiosToFloor,
  type Ratios,
  type RunResults,
  type ScenarioName,
  type ScenarioResult,
  type TargetResults,
} from './report.js';
import { redisMemoryPerTenant, type TenantMemory } from './redis-memory.js';
import { startOtlpSink, type OtlpSink } from './otlp-sink.js';
import { measureTraceCost, TRACE_COST_PAIRS, type TraceCost } from './trace-cost.js';
import { runSoak } from './soak.js';
import {
  RESULTS_DIR,
  buildLanekeeper,
  hasRedisServer,
  startFloor,
  startPrivateRedis,
  startLanekeeper,
  startUndiciPassthrough,
  startUpstream,
  type Target,
  type TargetName,
} from './targets.js';

const ALL_TARGETS: TargetName[] = [
  'direct',
  'floor',
  'undici-passthrough',
  'lanekeeper-memory',
  'lanekeeper-redis',
  'lanekeeper-translated',
  'lanekeeper-traced',
  'lanekeeper-memory-10k',
  'lanekeeper-redis-10k',
];
const CHAT_PATH = '/v1/chat/completions';

function flag(name: string): boolean {
  return process.argv.includes(name);
}

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  const value = index >= 0 ? Number(process.argv[index + 1]) : NaN;
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** Installs wrk from Debian when missing (as root), running apt-get update only if needed. */
function ensureWrk(): void {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return;
  } catch (error) {
    // wrk --version exits 1 even when present; ENOENT is what "missing" looks like.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return;
  }
  if (process.getuid?.() !== 0) throw new Error('wrk is not installed: run `sudo apt-get install -y wrk`');
  log('installing wrk (apt-get install -y wrk)');
  try {
    execFileSync('apt-get', ['install', '-y', 'wrk'], { stdio: 'ignore' });
  } catch {
    execFileSync('apt-get', ['update'], { stdio: 'ignore' });
    execFileSync('apt-get', ['install', '-y', 'wrk'], { stdio: 'ignore' });
  }
}

interface Settings {
  seconds: number;
  rounds: number;
  warmup: number;
  connections: number;
  rate: number;
}

/** Warm-up, then one timed run with the target process's CPU time measured around it. */
async function measure(
  target: Target,
  upstreamPid: number,
  scenario: ScenarioName,
  settings: Settings,
  core: string | undefined,
): Promise<ScenarioResult> {
  const request: LoadRequest = {
    url: `${target.url}${CHAT_PATH}`,
    body: chatBody(scenario === 'stream'),
    apiKey: BENCH_API_KEY,
    keys: target.keys,
  };
  const pid = target.process?.pid ?? upstreamPid;
  const drive = (seconds: number) =>
    scenario === 'paced'
      ? runPaced(request, { seconds, rate: settings.rate, core })
      : runWrk(request, { seconds, connections: settings.connections, core });
  await drive(settings.warmup);
  const before = cpuSeconds(pid);
  const result = await drive(settings.seconds);
  const cpu = cpuSeconds(pid) - before;
  if (result.errors > 0) log(`  ${target.name} ${scenario}: ${result.errors} errors`);
  return { ...result, cpuUsPerRequest: cpuPerRequest(cpu, result.requests) };
}

/** The median of a list (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** One result per scenario from several rounds: the median of each figure, requests summed. */
function combine(rounds: ScenarioResult[]): ScenarioResult {
  const cpu = rounds.map((r) => r.cpuUsPerRequest).filter((v): v is number => v !== undefined);
  return {
    requests: rounds.reduce((sum, r) => sum + r.requests, 0),
    seconds: rounds.reduce((sum, r) => sum + r.seconds, 0),
    rps: median(rounds.map((r) => r.rps)),
    errors: rounds.reduce((sum, r) => sum + r.errors, 0),
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
    cpuUsPerRequest: cpu.length > 0 ? median(cpu) : undefined,
  };
}

/**
 * The burst scenario: each target's burst tenant at full speed (wrk) for `seconds`, one
 * target after another; then, `pauseS` after its own burst ended (the last `warmup` seconds
 * of it paced traffic of the other tenant), the paced run as the burst tenant. Its first admissions after the pause meet whatever the burst left in Redis (a
 * per-request log to prune was what stalled every tenant before the per-second buckets).
 */
/** A JSON chat request as the burst tenant. */
function burstRequest(target: Target): LoadRequest {
  return { url: `${target.url}${CHAT_PATH}`, body: chatBody(false), apiKey: BURST_API_KEY };
}

async function burstThenPause(
  targets: Target[],
  settings: Settings,
  burst: { seconds: number; pauseS: number },
  core: string | undefined,
): Promise<[Target, ScenarioResult][]> {
  const ended: number[] = [];
  for (const target of targets) {
    const r = await runWrk(burstRequest(target), {
      seconds: burst.seconds,
      connections: settings.connections,
      core,
    });
    ended.push(Date.now());
    log(
      `burst ${target.name}: ${r.rps.toFixed(0)} req/s for ${burst.seconds} s, then ${burst.pauseS} s quiet`,
    );
  }
  const out: [Target, ScenarioResult][] = [];
  for (const [i, target] of targets.entries()) {
    // The warm-up (as another tenant, ending as the pause does) is what the floor's paced
    // run also gets: connections the idle minute closed are open again, so the measured run
    // holds what the burst left for its tenant, not a cold start after a quiet minute.
    const warmupMs = settings.warmup * 1000;
    const wait = (ended[i] ?? 0) + burst.pauseS * 1000 - warmupMs - Date.now();
    if (wait > 0) await sleep(wait);
    const warm = { url: `${target.url}${CHAT_PATH}`, body: chatBody(false), apiKey: BENCH_API_KEY };
    await runPaced(warm, { seconds: settings.warmup, rate: settings.rate, core });
    const pid = target.process?.pid;
    const before = pid === undefined ? 0 : cpuSeconds(pid);
    const r = await runPaced(burstRequest(target), { seconds: settings.seconds, rate: settings.rate, core });
    const cpu = pid === undefined ? 0 : cpuSeconds(pid) - before;
    log(`round 1 ${target.name}/burst: p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms`);
    out.push([target, { ...r, cpuUsPerRequest: cpuPerRequest(cpu, r.requests) }]);
  }
  return out;
}

async function benchmark(): Promise<void> {
  const settings: Settings = {
    seconds: option('--seconds', 5),
    warmup: option('--warmup', 2),
    connections: option('--connections', 64),
    rate: option('--rate', 500),
    rounds: option('--rounds', 3),
  };
  const layout = coreLayout(undefined, !flag('--no-pin'));
  const targetsIndex = process.argv.indexOf('--targets');
  const wanted =
    targetsIndex >= 0 ? ((process.argv[targetsIndex + 1] ?? '').split(',') as TargetName[]) : ALL_TARGETS;
  const scenariosIndex = process.argv.indexOf('--scenarios');
  const scenarios = (['json', 'stream', 'paced', 'burst'] as const).filter(
    (s) => scenariosIndex < 0 || (process.argv[scenariosIndex + 1] ?? '').split(',').includes(s),
  );
  if (scenarios.length === 0) throw new Error('--scenarios: name one or more of json, stream, paced, burst');
  const rounds = scenarios.filter((s) => s !== 'burst');
  const burst = { seconds: option('--burst-seconds', 5), pauseS: option('--burst-pause', 61) };
  const baselineIndex = process.argv.indexOf('--baseline-src');
  const baselineSrc = baselineIndex >= 0 ? process.argv[baselineIndex + 1] : undefined;
  const baselineRedis = process.argv[process.argv.indexOf('--baseline-store') + 1] === 'redis';
  // Redis mode talks to a redis-server of its own, pinned to the load generator's core (off
  // the proxy's), unless REDIS_URL names one or --shared-redis asks for the machine's.
  const wantsRedis =
    wanted.some((t) => t.startsWith('lanekeeper-redis')) || (baselineSrc !== undefined && baselineRedis);
  const ownRedis = wantsRedis && !process.env.REDIS_URL && !flag('--shared-redis') && hasRedisServer();
  let privateRedis: Awaited<ReturnType<typeof startPrivateRedis>> | undefined;
  let redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const profileDir = flag('--profile') ? join(RESULTS_DIR, 'profiles') : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  ensureWrk();
  log(
    `layout: ${layout.description}; ${settings.rounds} interleaved rounds of ${settings.seconds} s per scenario and target, each after ${settings.warmup} s warm-up`,
  );

  // Lanekeeper runs compiled, as its container image does (`--from-source` runs the
  // TypeScript through tsx instead, as `npx lanekeeper` on a fresh clone does).
  const fromSource = flag('--from-source');
  const runsLanekeeper = wanted.some((t) => t.startsWith('lanekeeper-'));
  const builtCli = !fromSource && runsLanekeeper ? buildLanekeeper('current') : undefined;
  const baselineCli = !fromSource && baselineSrc ? buildLanekeeper('baseline', baselineSrc) : undefined;

  const upstream = await startUpstream(layout.upstream);
  const targets: Target[] = [];
  let sink: OtlpSink | undefined;
  const perRound = new Map<string, ScenarioResult[]>();
  const redisMemory: Partial<Record<TargetName, TenantMemory>> = {};
  try {
    if (ownRedis) {
      privateRedis = await startPrivateRedis(layout.load);
      redisUrl = privateRedis.url;
    }
    if (wantsRedis)
      log(
        `redis: ${privateRedis ? `a private redis-server at ${redisUrl}, pinned with the load generator` : redisUrl}`,
      );
    // Every target runs at once (idle unless loaded) and rounds interleave them, so a change
    // in the machine's background load hits all of them alike instead of one target's turn.
    for (const name of ALL_TARGETS.filter((t) => wanted.includes(t))) {
      if (name === 'direct') targets.push({ ...upstream, process: undefined, stop: async () => undefined });
      else if (name === 'floor') targets.push(await startFloor(upstream.url, layout.proxy));
      else if (name === 'undici-passthrough') {
        targets.push(await startUndiciPassthrough(upstream.url, layout.proxy));
      } else {
        targets.push(
          await startLanekeeper({
            upstreamUrl: upstream.url,
            core: layout.proxy,
            redisUrl: name.startsWith('lanekeeper-redis') ? redisUrl : undefined,
            translated: name === 'lanekeeper-translated',
            otlpEndpoint: name === 'lanekeeper-traced' ? (sink ??= await startOtlpSink()).url : undefined,
            manyTenants: name.endsWith('-10k'),
            profileDir,
            builtCli,
          }),
        );
      }
    }
    if (baselineSrc) {
      targets.push(
        await startLanekeeper({
          upstreamUrl: upstream.url,
          core: layout.proxy,
          profileDir,
          sourceDir: baselineSrc,
          builtCli: baselineCli,
          redisUrl: baselineRedis ? redisUrl : undefined,
        }),
      );
    }
    for (let round = 1; round <= settings.rounds; round++) {
      for (const scenario of rounds) {
        for (const target of targets) {
          const r = await measure(target, upstream.process.pid, scenario, settings, layout.load);
          const key = `${target.name}/${scenario}`;
          perRound.set(key, [...(perRound.get(key) ?? []), r]);
          log(
            `round ${round} ${key}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms, cpu ${r.cpuUsPerRequest?.toFixed(1)} us/req`,
          );
        }
      }
    }
    const redisTargets = targets.filter((t) => t.redis);
    if (scenarios.includes('burst') && redisTargets.length > 0) {
      for (const [target, r] of await burstThenPause(redisTargets, settings, burst, layout.load)) {
        perRound.set(`${target.name}/burst`, [r]);
      }
    }
    for (const target of redisTargets) {
      if (!target.redis) continue;
      const m = await redisMemoryPerTenant(target.redis.url, target.redis.keyPrefix);
      redisMemory[target.name] = m;
      log(
        `${target.name}: Redis bytes per active tenant over ${m.tenants}: limits and meters ${m.stateAvgBytes.toFixed(0)} (max ${m.stateMaxBytes}), replay guards ${m.replayGuardAvgBytes.toFixed(0)} (max ${m.replayGuardMaxBytes})`,
      );
    }
  } finally {
    for (const target of targets) await target.stop();
    await upstream.stop();
    await privateRedis?.stop();
    await sink?.stop();
  }
  // The traced target's table figures come from rounds run one after the other, whose
  // difference holds whatever the host did meanwhile; tracing's own cost is measured with
  // both proxies side by side (trace-cost.ts).
  let traceCost: TraceCost | undefined;
  if (wanted.includes('lanekeeper-traced') && !fromSource && !flag('--no-trace-cost')) {
    log(
      'tracing cost: an untraced and a traced proxy side by side, paced at 1000 req/s each, over fresh process pairs',
    );
    traceCost = await measureTraceCost({
      pairs: option('--trace-cost-pairs', TRACE_COST_PAIRS),
      windows: option('--trace-cost-windows', 3),
      seconds: 8,
      rate: 1000,
      stream: false,
      builtCli,
      log,
    });
  }
  const results: RunResults = {};
  for (const target of targets) {
    const byScenario: TargetResults = {};
    for (const scenario of scenarios) {
      const rounds = perRound.get(`${target.name}/${scenario}`);
      if (rounds) byScenario[scenario] = combine(rounds);
    }
    results[target.name] = byScenario;
  }

  const ratios: Partial<Record<TargetName, Ratios>> = {};
  if (results.floor) {
    for (const [name, r] of Object.entries(results) as [TargetName, TargetResults][]) {
      if (name !== 'floor') ratios[name] = ratiosToFloor(r, results.floor);
    }
  }
  const checks = checkTargets(ratios, { results, redisMemory, traceCost });
  const date = new Date().toISOString();
  const machine = {
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    kernel: release(),
  };
  const table = formatTable(results, ratios);
  process.stdout.write(
    `\nLanekeeper benchmark, ${date}, ${machine.cores} cores (${machine.cpu}), Node ${machine.node}\n` +
      `${layout.description}; wrk -t1 -c${settings.connections}; median of ${settings.rounds} interleaved rounds of ${settings.seconds} s per scenario; paced at ${settings.rate} req/s\n\n` +
      `${table}\n\n${formatChecks(checks)}\n`,
  );
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `bench-${date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ date, machine, layout: layout.description, settings, results, ratios, redisMemory, traceCost, checks, table }, null, 2)}\n`,
  );
  log(`saved ${file}${profileDir ? `; CPU profiles in ${profileDir}` : ''}`);
}

if (flag('--soak')) {
  const storeIndex = process.argv.indexOf('--soak-store');
  const store = storeIndex >= 0 && process.argv[storeIndex + 1] === 'redis' ? 'redis' : 'memory';
  await runSoak({
    seconds: option('--soak-seconds', 600),
    store,
    profile: flag('--profile'),
    fromSource: flag('--from-source'),
    ensureWrk,
  });
} else {
  await benchmark();
}
