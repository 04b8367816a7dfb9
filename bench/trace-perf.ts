/**
 * Where tracing's cost goes, by the kernel's sampler rather than V8's: an untraced and a
 * traced proxy side by side under the same paced load (as trace-cost.ts runs them), both
 * sampled by `perf record` at 4,999 Hz with their JIT code named (`--perf-basic-prof`). It
 * prints each process's samples per request and splits the traced one's extra samples into
 * what ran inside the tracer (writing spans, exporting, the request path's hooks) and what
 * did not: the part no frame of the tracer shows, which V8's own profiler cannot see either.
 *
 *   npx tsx bench/trace-perf.ts [--seconds 20] [--rate 700] [--stream] [--src DIR]
 *
 * Needs `perf` (Debian's linux-perf) and permission to sample other processes (root, or
 * kernel.perf_event_paranoid ≤ 1). perf adds its own overhead to both processes alike, so the
 * µs it prints run ~1.3× those of trace-cost.ts; compare them with each other. JIT code
 * names can be wrong where V8 reused an address for other code: trust the tracer's own
 * frames (its file names) more than any single other name.
 */
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { chatBody, BENCH_API_KEY } from './lanekeeper-config.js';
import { runPaced } from './load.js';
import { startSinkProcess } from './otlp-sink-process.js';
import { flagValue } from './trace-cost.js';
import { coreLayout } from './processes.js';
import { buildLanekeeper, RESULTS_DIR, startLanekeeper, startUpstream, type Target } from './targets.js';

const HZ = 4_999;

/** Where a traced process's sample ran, by the frames on its stack. */
function classOf(frames: string[]): 'write' | 'export' | 'request path' | undefined {
  let tracer = false;
  for (const frame of frames) {
    if (
      frame.includes('@opentelemetry/otlp-exporter-base') ||
      frame.includes('/tracing/span-batch.') ||
      frame.includes('/tracing/otlp-transport.')
    )
      return 'export';
    if (frame.includes('/tracing/')) {
      tracer = true;
      // Spans are written from Spans.flush, on its timer or before a body goes.
      if (/\bflush \S*\/tracing\/otel-request-tracer\./.test(frame)) return 'write';
    }
  }
  return tracer ? 'request path' : undefined;
}

/** Main-thread samples of each pid, and the traced pid's samples by class, from `perf script -F pid,tid,ip,sym`. */
export function tally(script: string, tracedPid: number) {
  const total = new Map<number, number>();
  const classes = new Map<string, number>();
  for (const block of script.split('\n\n')) {
    const lines = block.split('\n').filter((line) => line.length > 0);
    const head = /^\s*(\d+)\/(\d+)/.exec(lines[0] ?? '');
    if (!head || head[1] !== head[2]) continue;
    const pid = Number(head[1]);
    total.set(pid, (total.get(pid) ?? 0) + 1);
    if (pid !== tracedPid) continue;
    const kind = classOf(lines.slice(1).map((line) => line.trim().replace(/^\S+\s+/, '')));
    if (kind) classes.set(kind, (classes.get(kind) ?? 0) + 1);
  }
  return { total, classes };
}

async function main(): Promise<void> {
  if (spawnSync('perf', ['--version']).status !== 0)
    throw new Error('trace-perf needs perf: apt-get install -y linux-perf');
  const seconds = flagValue('--seconds', 20);
  const rate = flagValue('--rate', 700);
  const sourceAt = process.argv.indexOf('--src');
  const layout = coreLayout();
  const builtCli = buildLanekeeper('trace-perf', sourceAt >= 0 ? process.argv[sourceAt + 1] : undefined);
  const upstream = await startUpstream(layout.upstream);
  const sink = await startSinkProcess(layout.load);
  const started: Target[] = [];
  const data = join(RESULTS_DIR, 'trace-perf.data');
  const v8Logs = join(RESULTS_DIR, 'trace-perf-v8-%p.log');
  try {
    const common = {
      upstreamUrl: upstream.url,
      core: layout.proxy,
      builtCli,
      // --perf-basic-prof also turns on V8's own log, which would land in the working
      // directory (the checkout) as isolate-*.log, one per proxy per run.
      nodeFlags: ['--perf-basic-prof', `--logfile=${v8Logs}`, '--no-logfile-per-isolate'],
    };
    started.push(await startLanekeeper(common));
    started.push(await startLanekeeper({ ...common, otlpEndpoint: sink.url }));
    const body = chatBody(process.argv.includes('--stream'));
    const load = (target: Target, s: number) =>
      runPaced(
        { url: `${target.url}/v1/chat/completions`, body, apiKey: BENCH_API_KEY },
        { seconds: s, rate, core: layout.load },
      );
    await Promise.all(started.map((target) => load(target, 4)));
    const [off, on] = started.map((target) => target.process!.pid) as [number, number];
    const perf = spawn(
      'perf',
      [
        'record',
        '-q',
        '-e',
        'cpu-clock',
        '-F',
        String(HZ),
        '-g',
        '-p',
        `${off},${on}`,
        '-o',
        data,
        '--',
        'sleep',
        String(seconds),
      ],
      { stdio: 'inherit' },
    );
    const recorded = new Promise((resolve) => perf.on('exit', resolve));
    const [a, b] = await Promise.all(started.map((target) => load(target, seconds)));
    await recorded;
    const script = spawnSync('perf', ['script', '-i', data, '-F', 'pid,tid,ip,sym'], {
      maxBuffer: 2 ** 31,
      encoding: 'utf8',
    }).stdout;
    const { total, classes } = tally(script, on);
    const us = (samples: number, requests: number) => ((samples / HZ / requests) * 1e6).toFixed(1);
    const offSamples = total.get(off) ?? 0;
    const onSamples = total.get(on) ?? 0;
    const extra = onSamples / b!.requests - offSamples / a!.requests;
    console.log(
      `untraced ${us(offSamples, a!.requests)} µs a request, traced ${us(onSamples, b!.requests)}: tracing adds ${((extra / HZ) * 1e6).toFixed(1)} µs (with perf's overhead)`,
    );
    let inTracer = 0;
    for (const [kind, samples] of classes) {
      inTracer += samples;
      console.log(`  in the tracer, ${kind}: ${samples} samples, ${us(samples, b!.requests)} µs a request`);
    }
    console.log(
      `  outside the tracer's frames: ${(((extra - inTracer / b!.requests) / HZ) * 1e6).toFixed(1)} µs a request`,
    );
  } finally {
    await Promise.all(started.map((target) => target.stop()));
    await sink.stop();
    await upstream.stop();
    rmSync(data, { force: true });
    for (const target of started) rmSync(v8Logs.replace('%p', String(target.process!.pid)), { force: true });
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) await main();
