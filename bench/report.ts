/**
 * Turns measurements into the benchmark's verdict: CPU per request, ratios to the floor
 * measured in the same run, the targets checked one by one, and the table printed
 * at the end (also pasted into docs/performance.md).
 */
import type { Measurement } from './load.js';
import type { TenantMemory } from './redis-memory.js';
import type { TargetName } from './targets.js';
import type { TraceCost } from './trace-cost.js';

/**
 * `burst`: the paced scenario run as a tenant that just burst at full speed and then went
 * quiet (bench/run.ts), so whatever its burst left behind is paid for in this latency.
 */
export type ScenarioName = 'json' | 'stream' | 'paced' | 'burst';

/** One scenario against one target, with the target process's CPU time over the timed run. */
export interface ScenarioResult extends Measurement {
  /** Proxy (or upstream, for direct) CPU microseconds per completed request. */
  cpuUsPerRequest: number | undefined;
}

export type TargetResults = Partial<Record<ScenarioName, ScenarioResult>>;
export type RunResults = Partial<Record<TargetName, TargetResults>>;

/** Ratios of one target to the floor. */
export interface Ratios {
  json: number | undefined;
  stream: number | undefined;
  cpuJson: number | undefined;
  cpuStream: number | undefined;
  addedP99Ms: number | undefined;
  /** The burst scenario's p99 less the floor's paced p99. */
  addedBurstP99Ms?: number | undefined;
}

/** CPU microseconds per request from a CPU-seconds delta. */
export function cpuPerRequest(cpuSeconds: number, requests: number): number | undefined {
  return requests > 0 ? (cpuSeconds * 1e6) / requests : undefined;
}

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a !== undefined && b !== undefined && b > 0 ? a / b : undefined;
}

export function ratiosToFloor(target: TargetResults, floor: TargetResults): Ratios {
  const paced = target.paced?.p99Ms;
  const floorPaced = floor.paced?.p99Ms;
  return {
    json: ratio(target.json?.rps, floor.json?.rps),
    stream: ratio(target.stream?.rps, floor.stream?.rps),
    cpuJson: ratio(target.json?.cpuUsPerRequest, floor.json?.cpuUsPerRequest),
    cpuStream: ratio(target.stream?.cpuUsPerRequest, floor.stream?.cpuUsPerRequest),
    addedP99Ms: paced !== undefined && floorPaced !== undefined ? paced - floorPaced : undefined,
    addedBurstP99Ms: target.burst && floorPaced !== undefined ? target.burst.p99Ms - floorPaced : undefined,
  };
}

/** One line per target of the issue, met or not, with the measured value. */
export interface TargetCheck {
  target: string;
  goal: string;
  measured: string;
  /** null when the run did not measure it (a scenario left out with --scenarios). */
  met: boolean | null;
}

const fmt = (n: number | undefined, digits = 2) => (n === undefined ? 'n/a' : n.toFixed(digits));

const ratioOrNotRun = (n: number | undefined) => (n === undefined ? 'not run' : `${fmt(n)}x`);

/** What the many-tenant and Redis-memory checks read besides the ratios. */
export interface CheckInputs {
  results?: RunResults;
  /** Redis memory per active tenant, by Redis-mode target. */
  redisMemory?: Partial<Record<TargetName, TenantMemory>>;
  /** Tracing's cost per request, both proxies side by side (trace-cost.ts). */
  traceCost?: Pick<TraceCost, 'usPerRequest' | 'windows' | 'rate' | 'pairMedians'>;
}

/** Issue 18's most CPU tracing may add to a request at ratio 1.0. */
export const MAX_TRACING_US = 10;

/** Issue 16's most Redis bytes per active tenant. */
export const MAX_BYTES_PER_TENANT = 4096;

/** Checks issue 16's targets against the ratios of the Lanekeeper targets. */
export function checkTargets(
  ratios: Partial<Record<TargetName, Ratios>>,
  inputs: CheckInputs = {},
): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const memory = ratios['lanekeeper-memory'];
  const redis = ratios['lanekeeper-redis'];
  const atLeast = (target: string, goal: string, value: number | undefined, min: number) =>
    checks.push({
      target,
      goal,
      measured: ratioOrNotRun(value),
      met: value === undefined ? null : value >= min,
    });
  const addedP99 = (target: string, goal: string, value: number | undefined) =>
    checks.push({
      target,
      goal,
      measured: value === undefined ? 'not run' : `${fmt(value, 3)} ms`,
      met: value === undefined ? null : value <= 2,
    });
  if (memory) {
    atLeast('memory', 'non-streaming >= 0.95x floor', memory.json, 0.95);
    atLeast('memory', 'streaming >= 1.1x floor', memory.stream, 1.1);
    const cpu = [memory.cpuJson, memory.cpuStream].filter((v) => v !== undefined);
    checks.push({
      target: 'memory',
      goal: 'CPU per request <= floor',
      measured: `${ratioOrNotRun(memory.cpuJson)} json, ${ratioOrNotRun(memory.cpuStream)} stream`,
      met: cpu.length === 0 ? null : Math.max(...cpu) <= 1,
    });
  }
  if (redis) {
    atLeast('redis', 'non-streaming >= 0.85x floor', redis.json, 0.85);
    addedP99('redis', 'added p99 at the paced rate <= 2 ms', redis.addedP99Ms);
    addedP99('redis', 'added p99 after a one-tenant burst and a pause <= 2 ms', redis.addedBurstP99Ms);
  }
  const results = inputs.results ?? {};
  for (const [many, one, label] of [
    ['lanekeeper-memory-10k', 'lanekeeper-memory', 'memory'],
    ['lanekeeper-redis-10k', 'lanekeeper-redis', 'redis'],
  ] as const) {
    if (!results[many] || !results[one]) continue;
    const ratioOf = (s: ScenarioName) =>
      ratio(results[many]?.[s]?.cpuUsPerRequest, results[one]?.[s]?.cpuUsPerRequest);
    const measured = [ratioOf('json'), ratioOf('stream')];
    const known = measured.filter((v) => v !== undefined);
    checks.push({
      target: `${label} 10k tenants`,
      goal: 'CPU per request within 10% of one tenant',
      measured: `${ratioOrNotRun(measured[0])} json, ${ratioOrNotRun(measured[1])} stream`,
      met: known.length === 0 ? null : Math.max(...known) <= 1.1,
    });
  }
  const { traceCost } = inputs;
  if (traceCost) {
    const each = traceCost.windows.map((w) => fmt(w.onUs - w.offUs, 1)).join(', ');
    const pairs = traceCost.pairMedians.map((m) => fmt(m, 1)).join(', ');
    checks.push({
      target: 'traced',
      goal: `tracing at ratio 1.0 adds <= ${MAX_TRACING_US} us CPU per request`,
      measured: `${fmt(traceCost.usPerRequest, 1)} us (median of ${traceCost.windows.length} windows side by side at ${traceCost.rate} req/s: ${each}; over ${traceCost.pairMedians.length} process pairs, their medians ${pairs})`,
      met: traceCost.usPerRequest <= MAX_TRACING_US,
    });
  }
  for (const [name, m] of Object.entries(inputs.redisMemory ?? {})) {
    if (!m) continue;
    const perTenant = m.stateAvgBytes + m.replayGuardAvgBytes;
    checks.push({
      target: name.replace('lanekeeper-', ''),
      goal: `Redis memory per active tenant <= ${MAX_BYTES_PER_TENANT} bytes`,
      measured: `${fmt(perTenant, 0)} bytes over ${m.tenants} tenants (limits and meters ${fmt(m.stateAvgBytes, 0)}, max ${m.stateMaxBytes}; replay guards ${fmt(m.replayGuardAvgBytes, 0)}, max ${m.replayGuardMaxBytes})`,
      met: m.tenants === 0 ? null : perTenant <= MAX_BYTES_PER_TENANT,
    });
  }
  return checks;
}

function signedMs(ms: number): string {
  return `${ms >= 0 ? '+' : ''}${fmt(ms, 3)} ms`;
}

function pad(cells: string[], widths: number[]): string {
  return `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
}

/** The results as a Markdown table (readable in a terminal too). */
export function formatTable(results: RunResults, ratios: Partial<Record<TargetName, Ratios>>): string {
  const header = [
    'target',
    'JSON req/s',
    'x floor',
    'SSE req/s',
    'x floor',
    'CPU us/req JSON',
    'CPU us/req SSE',
    'paced p50 ms',
    'paced p99 ms',
    'p99 vs floor',
    'after burst p99 vs floor',
    'JSON p99 ms (wrk)',
  ];
  const rows: string[][] = [];
  for (const [name, r] of Object.entries(results) as [TargetName, TargetResults][]) {
    const q = ratios[name];
    rows.push([
      name,
      fmt(r.json?.rps, 0),
      name === 'direct' ? '-' : name === 'floor' && r.json ? '1.00' : fmt(q?.json),
      fmt(r.stream?.rps, 0),
      name === 'direct' ? '-' : name === 'floor' && r.stream ? '1.00' : fmt(q?.stream),
      name === 'direct' ? '(upstream) ' + fmt(r.json?.cpuUsPerRequest, 1) : fmt(r.json?.cpuUsPerRequest, 1),
      name === 'direct'
        ? '(upstream) ' + fmt(r.stream?.cpuUsPerRequest, 1)
        : fmt(r.stream?.cpuUsPerRequest, 1),
      fmt(r.paced?.p50Ms, 3),
      fmt(r.paced?.p99Ms, 3),
      name === 'direct' || name === 'floor' || q?.addedP99Ms === undefined ? '-' : signedMs(q.addedP99Ms),
      q?.addedBurstP99Ms === undefined ? '-' : signedMs(q.addedBurstP99Ms),
      fmt(r.json?.p99Ms, 2),
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const lines = [pad(header, widths), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`];
  for (const row of rows) lines.push(pad(row, widths));
  return lines.join('\n');
}

/** The target checks as lines. */
export function formatChecks(checks: TargetCheck[]): string {
  return checks
    .map((c) => {
      const verdict = c.met === null ? 'NOT RUN' : c.met ? 'MET    ' : 'NOT MET';
      return `${verdict}  ${c.target}: ${c.goal} (measured ${c.measured})`;
    })
    .join('\n');
}
