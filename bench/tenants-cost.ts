/**
 * A quick A/B of what many tenants cost per request, without the full bench: one process runs
 * the bench's mock upstream, the proxy with the bench's config (one tenant, then 10,000
 * tenants with the load going round 1,000 of them, one request per tenant in turn, as the
 * `-10k` targets do) and an undici client loop. Each round starts both proxies afresh, warms
 * them up, then sends each its requests in short batches, taking turns (on a shared machine a
 * burst of other load then hits both alike). A `direct` mode (client straight at the
 * upstream) takes its turns too and is subtracted, so the ratio printed is of the proxy's own
 * CPU per request, as the bench's is. Both configs are in the heap throughout, so the cost of
 * collecting a heap that holds 10,000 tenants falls on both modes here, where the bench's
 * separate processes charge it to the 10,000-tenant target alone (the GC figure printed is
 * the time V8 reported per request in each mode's batches). PROBE_SEPARATE=1 runs one proxy
 * at a time instead (a fresh one per mode and round, alternating), as the bench does: closer
 * to its figure, more exposed to the machine's drift.
 *
 *   node --min-semi-space-size=16 --import tsx bench/tenants-cost.ts [json|stream] [memory|redis] [requests=20000] [rounds=4]
 *
 * (--min-semi-space-size=16 as the proxy runs in production and in the bench.)
 *
 * Redis mode uses REDIS_URL (default redis://127.0.0.1:6379) under a random key prefix,
 * deleted at the end. With PROBE_PROFILE=<dir>, each timed batch is CPU-profiled (start-up,
 * config parsing and warm-up left out) into <dir>/<mode>-<round>[-<batch>].cpuprofile, for
 * bench/profile-summary.ts.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import { Session } from 'node:inspector/promises';
import { writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { createLogger } from '../proxy/src/log.js';
import { startProxy } from '../proxy/src/main.js';
import { BENCH_API_KEY, benchConfig, benchKey, chatBody } from './lanekeeper-config.js';
import { handleMockRequest } from './mock-upstream.js';

const SCENARIO = process.argv[2] === 'stream' ? 'stream' : 'json';
const STORE = process.argv[3] === 'redis' ? 'redis' : 'memory';
const REQUESTS = Number(process.argv[4] ?? 20_000);
const ROUNDS = Number(process.argv[5] ?? 4);
const PROFILE_DIR = process.env.PROBE_PROFILE;
const SEPARATE = process.env.PROBE_SEPARATE === '1';
const CONCURRENCY = 32;
const MANY_TENANTS = 10_000;
const ACTIVE_TENANTS = 1_000;
/** Each round's requests per mode are sent in this many batches, the modes taking turns. */
const BATCHES = 10;
/** No batch runs longer than this, whatever REQUESTS says. */
const BATCH_DEADLINE_MS = 30_000;

type Mode = 'direct' | '1' | '10k';

async function main(): Promise<void> {
  const upstream = createServer({ keepAliveTimeout: 65_000 }, handleMockRequest);
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const keyPrefix = `lk-probe-${randomBytes(4).toString('hex')}:`;
  // The access log stays on at info, as in the bench, into a sink that drops it.
  const logger = createLogger('info', new Writable({ write: (_c, _e, done) => done() }));
  const body = chatBody(SCENARIO === 'stream');
  const results: Record<Mode, number[]> = { direct: [], '1': [], '10k': [] };
  // Garbage collection time, summed per round: a bigger heap is a cost of many tenants too.
  let gcMs = 0;
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration;
  });
  gc.observe({ entryTypes: ['gc'] });
  const modes: Mode[] = ['direct', '1', '10k'];

  interface Side {
    loop(count: number): Promise<number>;
    close(): Promise<void>;
  }
  /** One mode's target (a proxy with its config, or the upstream itself) and its client. */
  async function startSide(mode: Mode): Promise<Side> {
    const config = benchConfig({
      listenPort: 0,
      adminPort: 0,
      upstreamUrl,
      redis: STORE === 'redis' ? { url: redisUrl, keyPrefix } : undefined,
      tenants: mode === '10k' ? MANY_TENANTS : 0,
    });
    const proxy = mode === 'direct' ? undefined : await startProxy({ config, logger, env: {} });
    const url = `${proxy?.url ?? upstreamUrl}/v1/chat/completions`;
    const agent = new Agent({ connections: CONCURRENCY });
    let turn = 0;
    const send = async () => {
      // One request per tenant in turn, as the bench's wrk script and paced client do.
      const key = mode === '10k' ? benchKey(turn++ % ACTIVE_TENANTS) : BENCH_API_KEY;
      const res = await request(url, {
        method: 'POST',
        dispatcher: agent,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body,
      });
      if (res.statusCode !== 200)
        throw new Error(`${mode}: status ${res.statusCode}: ${await res.body.text()}`);
      await res.body.text();
    };
    return {
      async loop(count) {
        const deadline = Date.now() + BATCH_DEADLINE_MS;
        let next = 0;
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (next < count && Date.now() < deadline) {
              next++;
              await send();
            }
          }),
        );
        return next;
      },
      async close() {
        await proxy?.close(1_000);
        await agent.close();
      },
    };
  }
  const profiler = PROFILE_DIR === undefined ? undefined : new Session();
  profiler?.connect();
  await profiler?.post('Profiler.enable');

  type Tally = { us: number; requests: number; gcMs: number };
  /** Sends `count` requests to one side, adding their CPU and GC time to its tally. */
  async function measure(mode: Mode, side: Side, count: number, tally: Tally, name: string): Promise<void> {
    if (mode !== 'direct') await profiler?.post('Profiler.start');
    gcMs = 0;
    const before = process.cpuUsage();
    const done = await side.loop(count);
    const used = process.cpuUsage(before);
    tally.us += used.user + used.system;
    tally.requests += done;
    tally.gcMs += gcMs;
    if (profiler && mode !== 'direct') {
      const { profile } = await profiler.post('Profiler.stop');
      await writeFile(`${PROFILE_DIR}/${mode}-${name}.cpuprofile`, JSON.stringify(profile));
    }
  }
  // Warm-up: every active tenant at least twice, so first-use work is out of the figure.
  const WARM_UP = 2 * ACTIVE_TENANTS + 1_000;

  for (let round = 0; round < ROUNDS; round++) {
    const cpu: Record<Mode, Tally> = {
      direct: { us: 0, requests: 0, gcMs: 0 },
      '1': { us: 0, requests: 0, gcMs: 0 },
      '10k': { us: 0, requests: 0, gcMs: 0 },
    };
    if (SEPARATE) {
      // One proxy at a time, as the bench runs them: only the 10,000-tenant heap holds them.
      for (const mode of round % 2 === 0 ? modes : [...modes].reverse()) {
        const side = await startSide(mode);
        await side.loop(WARM_UP);
        await measure(mode, side, REQUESTS, cpu[mode], `${round + 1}`);
        await side.close();
      }
    } else {
      const sides = new Map<Mode, Side>();
      for (const mode of modes) sides.set(mode, await startSide(mode));
      for (const side of sides.values()) await side.loop(WARM_UP);
      // Short batches, taking turns in an order that alternates: a burst of load from other
      // jobs on the machine then falls on every mode alike instead of on one mode's round.
      for (let batch = 0; batch < BATCHES; batch++) {
        for (const mode of batch % 2 === 0 ? modes : [...modes].reverse()) {
          const side = sides.get(mode) as Side;
          await measure(mode, side, Math.ceil(REQUESTS / BATCHES), cpu[mode], `${round + 1}-${batch + 1}`);
        }
      }
      for (const side of sides.values()) await side.close();
    }
    for (const mode of modes) {
      const { us, requests, gcMs: gcTotal } = cpu[mode];
      results[mode].push(us / requests);
      console.log(
        `round ${round + 1} ${mode}: ${(us / requests).toFixed(1)} µs CPU per request (${requests} requests), ` +
          `GC ${((gcTotal * 1000) / requests).toFixed(1)} µs`,
      );
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const direct = results.direct.length > 0 ? median(results.direct) : 0;
  const one = median(results['1']) - direct;
  const many = median(results['10k']) - direct;
  console.log(
    `${SCENARIO} ${STORE}: direct ${direct.toFixed(1)} µs; proxy's own: 1 tenant ${one.toFixed(1)} µs, ` +
      `10k tenants ${many.toFixed(1)} µs, ratio ${(many / one).toFixed(3)}`,
  );
  // Per round too (each round's 10k against the same round's 1 tenant), to show the spread.
  const perRound = results['10k'].map((m, i) =>
    ((m - (results.direct[i] ?? 0)) / ((results['1'][i] ?? NaN) - (results.direct[i] ?? 0))).toFixed(3),
  );
  console.log(`ratio per round: ${perRound.join(' ')}`);

  if (STORE === 'redis') {
    const client = new Redis(redisUrl);
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== '0');
    client.disconnect();
  }
  gc.disconnect();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
}

await main();
