/**
 * The tracer alone, per wire format: CPU per request to record a request's three spans,
 * write them into the export body and hand full bodies to the transport, with no proxy,
 * client or upstream around it: what the tracer costs with everything it touches hot in
 * the caches, where inside a proxy (trace-cost.ts) the same work costs several times more. The formats alternate round by round; the sink runs in a child process,
 * as a collector does. Both formats in one process make the tracer's call sites see two
 * formats (polymorphic) and slow both, where a proxy only ever runs one: to compare them,
 * run each alone (TRACE_PROTOCOL) in its own process, interleaved.
 *
 *   npx tsx bench/trace-encode.ts [requests=20000] [rounds=5] [--garbage N]
 *
 * `--garbage N` makes each request also allocate N small objects, the last eight requests'
 * kept alive, as a serving proxy allocates and holds its own between the tracer's calls (a
 * proxied request allocates ~50 KB in the bench, about N = 250). Each round then also runs
 * the same loop without the tracer, and prints the tracer's cost as the difference. With
 * the caches and the young generation churned in between, the same tracer costs more (1.6
 * times at N = 250), part of the way to what it costs inside a proxy (docs/observability.md).
 * The garbage is kept in a ring, not a list cleared every few requests: with the list, how
 * much survived each scavenge depended on where in its cycle the collection fell, which the
 * tracer's own allocation shifted.
 *
 * TRACE_PROTOCOL=http/protobuf (or http/json) runs one format only, for a CPU profile:
 *   TRACE_PROTOCOL=http/protobuf node --import tsx --cpu-prof --cpu-prof-dir=DIR bench/trace-encode.ts
 */
import type { OtlpProtocol } from '@lanekeeper/contract';
import type { RequestContext } from '../proxy/src/context.js';
import { createOtelRequestTracer } from '../proxy/src/tracing/otel-request-tracer.js';
import type { RequestTracer } from '../proxy/src/tracing/request-trace.js';
import {
  servedChat,
  TRACED_UPSTREAM as upstream,
  tracingEverything,
} from '../proxy/test/helpers/traced-context.js';
import { startSinkProcess } from './otlp-sink-process.js';
import { flagValue, median } from './trace-cost.js';

const positional = process.argv
  .slice(2)
  .filter((arg, i, all) => !arg.startsWith('--') && !all[i - 1]?.startsWith('--'));
const REQUESTS = Number(positional[0] ?? 20_000);
const ROUNDS = Number(positional[1] ?? 5);
const GARBAGE = flagValue('--garbage', 0);

/** The last eight requests' garbage, alive as a proxy's requests in flight are. */
const kept: unknown[] = new Array(8).fill(undefined);
let keptAt = 0;

function garbage(): void {
  if (GARBAGE === 0) return;
  const objects: unknown[] = [];
  for (let i = 0; i < GARBAGE; i++)
    objects.push({ n: i, text: `value ${i}`, pair: [i, i + 1], nested: { i } });
  kept[keptAt++ & 7] = objects;
}

/**
 * CPU per request of `REQUESTS` requests through `once`, and of `finish` after them (the
 * tracer's last export); the loop yields now and then, as a serving proxy's event loop
 * does, for the transport's sockets to run.
 */
async function cpuPerRequest(once: (i: number) => void, finish: () => Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < REQUESTS; i++) {
    once(i);
    if (i % 256 === 255) await new Promise((resolve) => setImmediate(resolve));
  }
  await finish();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / REQUESTS;
}

async function run(protocol: OtlpProtocol, url: string): Promise<number> {
  const tracer = () =>
    createOtelRequestTracer(tracingEverything(url, 'lanekeeper-proxy', protocol), {
      onExportResult: () => undefined,
    });
  const contexts = Array.from({ length: 1_000 }, (_, i) => servedChat(`req-${i.toString(36)}-8f2c1a`));
  const once = (traces: RequestTracer, ctx: RequestContext) => {
    garbage();
    const trace = traces.start(ctx);
    trace.stage('lanekeeper.rate_limit').end(undefined);
    trace.attemptStart(upstream, 'POST', '/v1/chat/completions', ctx);
    trace.attemptStatus(200);
    trace.attemptEnd(undefined);
    trace.end(ctx);
  };
  const warm = tracer();
  for (let i = 0; i < 2_000; i++) once(warm, contexts[i % contexts.length]!);
  await warm.shutdown();
  const measured = tracer();
  const traced = await cpuPerRequest(
    (i) => once(measured, contexts[i % contexts.length]!),
    () => measured.shutdown(),
  );
  if (GARBAGE === 0) return traced;
  // The same loop without the tracer: what the garbage costs by itself.
  return traced - (await cpuPerRequest(garbage, async () => undefined));
}

async function main(): Promise<void> {
  const sink = await startSinkProcess();
  const results: Record<OtlpProtocol, number[]> = { 'http/protobuf': [], 'http/json': [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order: OtlpProtocol[] =
      round % 2 === 0 ? ['http/protobuf', 'http/json'] : ['http/json', 'http/protobuf'];
    for (const protocol of order.filter((p) => (process.env.TRACE_PROTOCOL ?? p) === p)) {
      const perRequest = await run(protocol, sink.url);
      results[protocol].push(perRequest);
      console.log(
        `round ${round + 1} ${protocol}: ${perRequest.toFixed(2)} µs CPU per request${GARBAGE > 0 ? ` over ${GARBAGE} objects of garbage each` : ''}`,
      );
    }
  }
  await sink.stop();
  // The minimum too: on a shared machine the least disturbed round is the best estimate.
  const summary = (protocol: OtlpProtocol) =>
    `${protocol} median ${median(results[protocol]).toFixed(2)} min ${Math.min(...results[protocol]).toFixed(2)} µs`;
  console.log(
    `${summary('http/protobuf')}, ${summary('http/json')} per request; sink got ${sink.received.requests} exports, ${sink.received.bytes} bytes`,
  );
}

await main();
