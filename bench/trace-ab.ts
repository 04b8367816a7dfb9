/**
 * Two tracers compared directly: three compiled proxies side by side on the same core, one
 * untraced (from A) and two traced at ratio 1.0 (one built from A, one from B), under the same
 * paced load at the same time. Each window prints both tracers' cost over the untraced proxy
 * and B minus A; the medians end it. The machine's swings reach all three alike, so a change
 * of a few µs shows, where two runs of trace-cost.ts one after the other differ by ±5 µs.
 * Each process also keeps an offset of its own, up to ~3 µs either way for its whole life
 * (docs/observability.md), so the windows are spread over rounds of fresh processes.
 *
 *   npx tsx bench/trace-ab.ts DIR_A DIR_B [--rounds 3] [--windows 3] [--seconds 8] [--rate 700] [--stream]
 *
 * `--windows` is per round.
 *
 * DIR_A and DIR_B are checkouts (a worktree of the commit before a change, and this one).
 * 700 requests a second each keeps the three proxies' core under full load.
 */
import { chatBody, BENCH_API_KEY } from './lanekeeper-config.js';
import { runPaced } from './load.js';
import { startSinkProcess } from './otlp-sink-process.js';
import { cpuPerRequestWindow, flagValue, median, WARM_SECONDS } from './trace-cost.js';
import { coreLayout } from './processes.js';
import { buildLanekeeper, startLanekeeper, startUpstream, type Target } from './targets.js';

const [dirA, dirB] = process.argv.slice(2).filter((arg) => !arg.startsWith('--') && !/^\d+$/.test(arg));
if (!dirA || !dirB)
  throw new Error(
    'usage: npx tsx bench/trace-ab.ts DIR_A DIR_B [--rounds N] [--windows N] [--seconds S] [--rate R] [--stream]',
  );
const rounds = flagValue('--rounds', 3);
const windows = flagValue('--windows', 3);
const seconds = flagValue('--seconds', 8);
const rate = flagValue('--rate', 700);
const body = chatBody(process.argv.includes('--stream'));

const layout = coreLayout();
const cliA = buildLanekeeper('trace-ab-a', dirA);
const cliB = buildLanekeeper('trace-ab-b', dirB);
const upstream = await startUpstream(layout.upstream);
// The collector sits with the load generator, off the proxies' core.
const sink = await startSinkProcess(layout.load);
let started: Target[] = [];
try {
  const common = { upstreamUrl: upstream.url, core: layout.proxy };
  const kinds = [
    { ...common, builtCli: cliA },
    { ...common, builtCli: cliA, otlpEndpoint: sink.url },
    { ...common, builtCli: cliB, otlpEndpoint: sink.url },
  ];
  const load = (target: Target, s: number) =>
    runPaced(
      { url: `${target.url}/v1/chat/completions`, body, apiKey: BENCH_API_KEY },
      { seconds: s, rate, core: layout.load },
    );
  const costA: number[] = [];
  const costB: number[] = [];
  /** B − A, window by window over every round. */
  const diffs: number[] = [];
  const roundDiffs: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    // Fresh processes each round, started in a rotating order: a process keeps its own
    // offset for its whole life, which more windows of the same three do not average out.
    const order = kinds.map((_, i) => (i + round - 1) % kinds.length);
    const byKind: Target[] = [];
    for (const kind of order) started.push((byKind[kind] = await startLanekeeper(kinds[kind]!)));
    // Warm all three (JIT, connection pools) before measuring.
    await Promise.all(byKind.map((target) => load(target, WARM_SECONDS)));
    for (let i = 0; i < windows; i++) {
      const { us } = await cpuPerRequestWindow(
        byKind,
        (target) => load(target, seconds),
        `round ${round} window ${i + 1} (untraced, A, B)`,
      );
      const [off, a, b] = us as [number, number, number];
      costA.push(a - off);
      costB.push(b - off);
      diffs.push(b - a);
      console.log(
        `[trace-ab] round ${round} window ${i + 1}: untraced ${off.toFixed(1)} µs CPU/request; A +${(a - off).toFixed(1)}, B +${(b - off).toFixed(1)}, B − A ${(b - a).toFixed(1)}`,
      );
    }
    roundDiffs.push(median(diffs.slice(-windows)));
    await Promise.all(started.map((target) => target.stop()));
    started = [];
  }
  console.log(
    `tracing costs A ${median(costA).toFixed(1)} µs, B ${median(costB).toFixed(1)} µs CPU per request; B − A ${median(diffs).toFixed(1)} µs (medians of ${diffs.length} windows over ${rounds} rounds of fresh processes at ${rate} req/s each; each round's B − A: ${roundDiffs.map((d) => d.toFixed(1)).join(', ')})`,
  );
} finally {
  await Promise.all(started.map((target) => target.stop()));
  await sink.stop();
  await upstream.stop();
}
