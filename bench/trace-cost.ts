/**
 * A quick A/B of what tracing costs per request, without the full bench: one process runs
 * a fake upstream, the proxy (tracing off, then on at ratio 1.0) and a client loop; the
 * difference in process CPU per request between the two is tracing's share, as the upstream
 * and the client do the same work in both. The OTLP sink runs in a child process, as a
 * collector does: receiving 3 KB a request in the same process cost it ~15 µs of writev a
 * request that no deployment pays.
 *
 *   npx tsx bench/trace-cost.ts [requests=5000] [rounds=3]
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Agent, request } from 'undici';
import { startProxy } from '../proxy/src/main.js';
import { createLogger } from '../proxy/src/log.js';
import { baseConfig, KEYS } from '../proxy/test/helpers/harness.js';
import { startSinkProcess } from './otlp-sink-process.js';

const REQUESTS = Number(process.argv[2] ?? 5_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const CONCURRENCY = 16;
/** The sample ratio of the traced runs (TRACE_RATIO, default 1). */
const RATIO = Number(process.env.TRACE_RATIO ?? 1);

const BODY = JSON.stringify({
  id: 'c',
  object: 'chat.completion',
  model: 'small-model',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 },
});

async function main(): Promise<void> {
  const upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) });
      res.end(BODY);
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const sink = await startSinkProcess();
  const quiet = createLogger('warn', new Writable({ write: (_c, _e, done) => done() }));
  const results: Record<'off' | 'on', number[]> = { off: [], on: [] };
  const payload = JSON.stringify({ model: 'small-model', messages: [{ role: 'user', content: 'hi' }] });

  for (let round = 0; round < ROUNDS; round++) {
    // Alternate the order, so warm-up or machine drift does not favour one mode.
    for (const mode of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      const base = baseConfig(upstreamUrl);
      base.log = { level: 'warn' };
      const config =
        mode === 'on' ? { ...base, telemetry: { otlp_endpoint: sink.url, sample_ratio: RATIO } } : base;
      const proxy = await startProxy({ config, logger: quiet, env: {} });
      const agent = new Agent({ connections: CONCURRENCY });
      const send = async () => {
        const res = await request(`${proxy.url}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: agent,
          headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
          body: payload,
        });
        await res.body.text();
      };
      for (let i = 0; i < 500; i++) await send(); // warm-up
      const before = process.cpuUsage();
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next++ < REQUESTS) await send();
        }),
      );
      const used = process.cpuUsage(before);
      await proxy.close(1_000);
      await agent.close();
      const perRequest = (used.user + used.system) / REQUESTS;
      results[mode].push(perRequest);
      console.log(`round ${round + 1} tracing ${mode}: ${perRequest.toFixed(1)} µs CPU per request`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const off = median(results.off);
  const on = median(results.on);
  await sink.stop();
  console.log(
    `median: off ${off.toFixed(1)} µs, on ${on.toFixed(1)} µs, tracing costs ${(on - off).toFixed(1)} µs per request; sink got ${sink.received.requests} exports, ${sink.received.bytes} bytes`,
  );
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
}

await main();
