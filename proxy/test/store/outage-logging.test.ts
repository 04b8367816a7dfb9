/**
 * What the log says while Redis is away: a private redis-server is killed (connection
 * refused, ioredis reconnecting) or frozen with SIGSTOP (connected, silent) under a store
 * made by createStore, with traffic flowing. The log must hold one warning when Redis starts
 * failing, at most one "still unavailable" summary per summary interval with the count, one
 * info line when it is back, and never a stack trace.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/schema.js';
import { Metrics } from '../../src/metrics.js';
import { createStore } from '../../src/store/index.js';
import type { StoreLogger } from '../../src/store/store-logger.js';
import { admitRequest, freshTenant, usageEvent } from '../../src/store/store-fixtures.js';
import { PrivateRedis, eventually, freePort } from './private-redis.js';

interface Logged {
  level: string;
  msg: string;
  obj: Record<string, unknown>;
}

function recordingLogger(): StoreLogger & { lines: Logged[] } {
  const lines: Logged[] = [];
  const at = (level: string) => (obj: object, msg: string) =>
    void lines.push({ level, msg, obj: obj as Record<string, unknown> });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let server: PrivateRedis;
beforeAll(async () => {
  server = new PrivateRedis(await freePort());
  await server.start();
});
afterAll(async () => {
  await server.stop();
});

function storeUnderTest(summaryMs?: number, url = server.url) {
  const config = parseConfig({
    upstream: { url: 'http://127.0.0.1:9' },
    store: { redis: url, key_prefix: `lk-test-${randomUUID().slice(0, 8)}:`, timeout_ms: 150 },
    on_store_error: 'fail_open',
  });
  const logger = recordingLogger();
  const store = createStore(config, { metrics: new Metrics(10), logger, outageSummaryMs: summaryMs });
  return { store, logger };
}

/** Requests and usage events every 20 ms for `ms`, as a busy proxy would send. */
async function traffic(store: ReturnType<typeof storeUnderTest>['store'], ms: number): Promise<number> {
  const tenant = freshTenant();
  const end = Date.now() + ms;
  let calls = 0;
  while (Date.now() < end) {
    await Promise.all([
      store.admit(admitRequest(tenant, { requests_per_minute: 1000 })),
      store.record(usageEvent(tenant)),
    ]);
    calls += 2;
    await sleep(20);
  }
  return calls;
}

function expectNoStack(lines: Logged[]): void {
  for (const line of lines) {
    const text = JSON.stringify(line.obj);
    expect(text, line.msg).not.toMatch(/"stack"|\\n\s+at /);
    if ('err' in line.obj) expect(typeof line.obj.err, line.msg).toBe('string');
  }
}

describe('the log of a Redis outage', () => {
  it('a killed Redis: one warning, a bounded number of summaries with the count, one recovery line', async () => {
    const { store, logger } = storeUnderTest(300);
    expect(await store.healthy()).toBe(true);
    await traffic(store, 100);
    expect(logger.lines).toEqual([]);

    await server.stop();
    const outageStart = Date.now();
    const calls = await traffic(store, 2_000);
    await server.start();
    const outageMs = Date.now() - outageStart;
    await eventually(() => logger.lines.some((l) => l.msg === 'redis available again'));
    await eventually(() => store.pending() === 0);
    await traffic(store, 200);

    const lines = logger.lines;
    const first = lines.filter((l) => l.msg === 'redis unavailable');
    const summaries = lines.filter((l) => l.msg === 'redis still unavailable');
    const recovered = lines.filter((l) => l.msg === 'redis available again');
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ level: 'warn', obj: { dependency: 'redis' } });
    // One per 300 ms at most, and at least one: reconnect errors and failed calls keep coming.
    expect(summaries.length).toBeGreaterThanOrEqual(1);
    expect(summaries.length).toBeLessThanOrEqual(Math.ceil(outageMs / 300) + 1);
    const counts = summaries.map((l) => l.obj.failures as number);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(counts[0]).toBeGreaterThan(1);
    expect(recovered).toHaveLength(1);
    expect(recovered[0]).toMatchObject({ level: 'info', obj: { dependency: 'redis', store: 'redis' } });
    expect(recovered[0]?.obj.failures as number).toBeGreaterThanOrEqual(counts.at(-1) ?? 0);
    // Said once what waited was delivered: a reconnect alone ended the outage before, with no count.
    expect(recovered[0]?.obj.delivered as number).toBeGreaterThan(0);
    // Order: the warning first, the recovery after every summary.
    expect(lines.indexOf(first[0]!)).toBeLessThan(lines.indexOf(summaries[0]!));
    expect(lines.indexOf(recovered[0]!)).toBeGreaterThan(lines.indexOf(summaries.at(-1)!));
    // Besides those, fail_open says once that it admits without limits: nothing per call.
    const others = lines.filter(
      (l) => !first.includes(l) && !summaries.includes(l) && !recovered.includes(l),
    );
    expect(others.map((l) => l.msg)).toEqual([
      'store unavailable: admitting without limits (on_store_error: fail_open)',
    ]);
    expect(calls).toBeGreaterThan(40);
    expect(lines.length).toBeLessThan(calls / 4);
    expectNoStack(lines);
    await store.close();
  });

  it('a frozen Redis (SIGSTOP): one warning, no summary inside the default minute, one recovery line', async () => {
    const { store, logger } = storeUnderTest();
    expect(await store.healthy()).toBe(true);
    server.pause();
    try {
      await traffic(store, 1_500);
    } finally {
      server.resume();
    }
    await eventually(() => logger.lines.some((l) => l.msg === 'redis available again'));
    await eventually(() => store.pending() === 0);

    const warnings = logger.lines.filter((l) => l.level === 'warn' || l.level === 'error');
    expect(warnings.map((l) => l.msg).sort()).toEqual([
      'redis unavailable',
      'store unavailable: admitting without limits (on_store_error: fail_open)',
    ]);
    const recovered = logger.lines.filter((l) => l.level === 'info');
    expect(recovered).toHaveLength(1);
    expect(recovered[0]).toMatchObject({
      msg: 'redis available again',
      obj: { dependency: 'redis', store: 'redis' },
    });
    expect(recovered[0]?.obj.failures as number).toBeGreaterThan(1);
    // Logged once the buffered events were delivered, with how many.
    expect(recovered[0]?.obj.delivered as number).toBeGreaterThan(0);
    expectNoStack(logger.lines);
    await store.close();
  });

  it('a read-only replica (answers PING, refuses writes): one warning and no recovery line per probe', async () => {
    // A replica of a master that does not exist: PING works, every write is refused (READONLY).
    const replica = new PrivateRedis(await freePort(), {
      extraArgs: ['--replicaof', '127.0.0.1', String(await freePort())],
    });
    try {
      // Answering first, so the store's connection does not fail (that outage is the other tests').
      await replica.start();
      const { store, logger } = storeUnderTest(60_000, replica.url);
      expect(await store.healthy()).toBe(true);
      // Three probe intervals (1 s each) of traffic: each probe sees PING answered, then the flush refused.
      await traffic(store, 3_500);
      const messages = logger.lines.map((l) => l.msg);
      expect(messages.filter((m) => m === 'redis unavailable')).toHaveLength(1);
      expect(messages).not.toContain('redis available again');
      expect(logger.lines.length).toBeLessThanOrEqual(3);
      expectNoStack(logger.lines);
      expect(store.pending()).toBeGreaterThan(0);
      await store.close();
    } finally {
      await replica.stop();
    }
  });
});
