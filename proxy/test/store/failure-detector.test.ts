// The failure detector against a private redis-server: Redis made slow (DEBUG SLEEP) below
// and above timeout_ms, stopped and restarted, and our own event loop blocked while Redis
// is fine. Only the cases that really mean "Redis is down" may flip lanekeeper_store_up.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { Metrics } from '../../src/metrics.js';
import { guardStore } from '../../src/store/guarded.js';
import { createStore } from '../../src/store/index.js';
import { createRedisStore } from '../../src/store/redis.js';
import { silentLogger } from '../../src/store/store-logger.js';
import { admitRequest, freshTenant, usageEvent } from '../../src/store/store-fixtures.js';
import { PrivateCluster } from './private-cluster.js';
import { PrivateRedis, eventually, freePort } from './private-redis.js';

const TIMEOUT_MS = 150;
const detector = { consecutiveFailures: 3, failureRatio: 0.5, windowMs: 10_000, minCalls: 20 };

async function storeUp(metrics: Metrics): Promise<number> {
  return (await metrics.storeUp.get()).values[0]?.value ?? Number.NaN;
}

async function storeErrors(metrics: Metrics): Promise<number> {
  return (await metrics.storeErrors.get()).values.reduce((sum, v) => sum + v.value, 0);
}

describe('the failure detector with a private redis-server', () => {
  let server: PrivateRedis;
  let admin: Redis;

  beforeAll(async () => {
    server = new PrivateRedis(await freePort());
    await server.start();
    admin = new Redis(server.url, { maxRetriesPerRequest: 0 });
    admin.on('error', () => {}); // it reconnects after the killed-server case
  });
  afterAll(async () => {
    admin.disconnect();
    await server.stop();
  });

  function guarded() {
    const metrics = new Metrics(100);
    const store = guardStore(
      createRedisStore({
        redis: server.url,
        key_prefix: `lk-test-${randomUUID().slice(0, 8)}:`,
        cluster: false,
        timeout_ms: TIMEOUT_MS,
        usage_stream: 'usage',
        usage_stream_maxlen: 100_000,
        retention_hours: 48,
      }),
      {
        onStoreError: 'fail_closed',
        metrics,
        logger: silentLogger,
        probeIntervalMs: 50,
        failureDetector: detector,
      },
    );
    return { store, metrics };
  }

  /** Makes Redis stall for `ms` (DEBUG SLEEP blocks the whole server), from another connection. */
  function sleepRedis(ms: number): Promise<unknown> {
    return admin.call('DEBUG', 'SLEEP', String(ms / 1000));
  }

  it('a Redis slower than usual but within timeout_ms stays up with no errors', async () => {
    const { store, metrics } = guarded();
    const tenant = freshTenant();
    expect((await store.admit(admitRequest(tenant, {}))).ok).toBe(true);
    for (let i = 0; i < 3; i++) {
      const sleeping = sleepRedis(TIMEOUT_MS / 3);
      expect((await store.admit(admitRequest(tenant, {}))).ok).toBe(true);
      await sleeping;
    }
    expect(await storeUp(metrics)).toBe(1);
    expect(await storeErrors(metrics)).toBe(0);
    await store.close();
  });

  it('calls slower than timeout_ms are refused one by one, and the store goes down at exactly the threshold', async () => {
    const { store, metrics } = guarded();
    const tenant = freshTenant();
    expect((await store.admit(admitRequest(tenant, {}))).ok).toBe(true);
    const upAfter: number[] = [];
    const inARow: number[] = [];
    for (let i = 0; i < detector.consecutiveFailures; i++) {
      const sleeping = sleepRedis(TIMEOUT_MS * 2.5);
      // fail_closed: each timed-out admission is refused whether or not the store is down yet.
      await expect(store.admit(admitRequest(tenant, {}))).rejects.toThrow(/unavailable/);
      upAfter.push(await storeUp(metrics));
      inARow.push((await metrics.storeFailuresInARow.get()).values[0]?.value ?? Number.NaN);
      await sleeping;
    }
    expect(upAfter).toEqual([1, 1, 0]);
    expect(inARow).toEqual([1, 2, 3]);
    expect(await storeErrors(metrics)).toBe(detector.consecutiveFailures);
    // Redis answers again: the probe brings the store back.
    await eventually(async () => (await storeUp(metrics)) === 1);
    expect((await store.admit(admitRequest(tenant, {}))).ok).toBe(true);
    await store.close();
  });

  it('one timeout between successes never marks the store down', async () => {
    const { store, metrics } = guarded();
    const tenant = freshTenant();
    for (let i = 0; i < 4; i++) {
      const sleeping = sleepRedis(TIMEOUT_MS * 2.5);
      await expect(store.admit(admitRequest(tenant, {}))).rejects.toThrow(/unavailable/);
      await sleeping;
      expect((await store.admit(admitRequest(tenant, {}))).ok).toBe(true);
    }
    expect(await storeUp(metrics)).toBe(1);
    expect(await storeErrors(metrics)).toBe(4);
    expect((await metrics.storeFailuresInARow.get()).values[0]?.value).toBe(0);
    await store.close();
  });

  it('a blocked event loop while Redis is healthy is not a Redis failure', async () => {
    const { store, metrics } = guarded();
    const tenant = freshTenant();
    expect((await store.admit(admitRequest(tenant, {}))).ok).toBe(true);
    for (let i = 0; i < detector.consecutiveFailures + 1; i++) {
      const call = store.admit(admitRequest(tenant, {}));
      const until = Date.now() + 400;
      while (Date.now() < until); // busy: the timer fires ~250 ms late
      expect((await call).ok).toBe(true);
    }
    expect(await storeUp(metrics)).toBe(1);
    expect(await storeErrors(metrics)).toBe(0);
    await store.close();
  });

  it.each(['frozen (SIGSTOP)', 'killed'] as const)(
    'a %s Redis goes down; restarted, it comes back up and the buffered usage is flushed',
    async (how) => {
      const { store, metrics } = guarded();
      const tenant = freshTenant();
      const first = await store.admit(admitRequest(tenant, {}));
      expect(first.ok).toBe(true);
      const event = usageEvent(tenant);
      if (how === 'killed') await server.stop();
      else server.pause();
      try {
        for (let i = 0; i < detector.consecutiveFailures; i++) {
          await expect(store.admit(admitRequest(tenant, {}))).rejects.toThrow(/unavailable/);
        }
        expect(await storeUp(metrics)).toBe(0);
        if (first.ok) await store.settle(first.reservation, { tokens: 15, usd: 0 });
        await store.record(event);
        expect(store.pending()).toBe(2);
      } finally {
        if (how === 'killed') await server.start();
        else server.resume();
      }
      await eventually(async () => (await storeUp(metrics)) === 1 && store.pending() === 0);
      expect((await store.currentHour(tenant, Date.parse(event.ts))).requests).toBe(1);
      await store.close();
    },
  );

  it('closed while Redis is down, still says how much it could not deliver (the stop line reads it)', async () => {
    const { store } = guarded();
    const tenant = freshTenant();
    server.pause();
    try {
      for (let i = 0; i < detector.consecutiveFailures; i++)
        await expect(store.admit(admitRequest(tenant, {}))).rejects.toThrow(/unavailable/);
      await store.record(usageEvent(tenant));
      await store.record(usageEvent(tenant));
      expect(store.pending()).toBe(2);
      await store.close();
      // The queue is emptied on close; pending() went to 0 with it, and the stop line said 0.
      expect(store.pending()).toBe(2);
    } finally {
      server.resume();
    }
  });
});

describe('the failure detector with a private Redis Cluster', () => {
  let cluster: PrivateCluster;
  let nodes: Redis[];

  beforeAll(async () => {
    cluster = new PrivateCluster();
    await cluster.start();
    nodes = cluster.ports.map((port) => new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0 }));
  }, 60_000);
  afterAll(async () => {
    for (const node of nodes) node.disconnect();
    await cluster.stop();
  });

  /** DEBUG SLEEP on every node, so whichever owns the tenant's slot is slow. */
  function sleepCluster(ms: number): Promise<unknown> {
    return Promise.all(nodes.map((node) => node.call('DEBUG', 'SLEEP', String(ms / 1000))));
  }

  it('stays up through nodes slower than usual, and goes down at exactly the threshold when they exceed timeout_ms', async () => {
    const metrics = new Metrics(100);
    const store = guardStore(
      createRedisStore({
        redis: cluster.url,
        key_prefix: `lk-test-${randomUUID().slice(0, 8)}:`,
        cluster: true,
        timeout_ms: TIMEOUT_MS,
        usage_stream: 'usage',
        usage_stream_maxlen: 100_000,
        retention_hours: 48,
      }),
      {
        onStoreError: 'fail_closed',
        metrics,
        logger: silentLogger,
        probeIntervalMs: 50,
        failureDetector: detector,
      },
    );
    const tenant = freshTenant();
    expect((await store.admit(admitRequest(tenant, {}))).ok).toBe(true);
    for (let i = 0; i < 3; i++) {
      const sleeping = sleepCluster(TIMEOUT_MS / 3);
      expect((await store.admit(admitRequest(tenant, {}))).ok).toBe(true);
      await sleeping;
    }
    expect(await storeErrors(metrics)).toBe(0);
    const upAfter: number[] = [];
    for (let i = 0; i < detector.consecutiveFailures; i++) {
      const sleeping = sleepCluster(TIMEOUT_MS * 2.5);
      await expect(store.admit(admitRequest(tenant, {}))).rejects.toThrow(/unavailable/);
      upAfter.push(await storeUp(metrics));
      await sleeping;
    }
    expect(upAfter).toEqual([1, 1, 0]);
    await eventually(async () => (await storeUp(metrics)) === 1);
    expect((await store.admit(admitRequest(tenant, {}))).ok).toBe(true);
    await store.eraseTenant(tenant);
    await store.close();
  });
});

describe('store.redis.failure_detector config', () => {
  const base = { upstream: { url: 'http://127.0.0.1:9' } };
  const withDetector = (failure_detector: unknown) =>
    parseConfig({ ...base, store: { redis: 'redis://127.0.0.1:6379', failure_detector } });

  it('fills the documented defaults for a partial block', () => {
    const config = withDetector({ consecutive_failures: 7 });
    expect(config.store !== 'memory' && config.store.failure_detector).toEqual({
      consecutive_failures: 7,
      failure_ratio: 0.5,
      window_ms: 10_000,
      min_calls: 20,
    });
  });

  it.each([
    { consecutive_failures: 0 },
    { consecutive_failures: -3 },
    { consecutive_failures: 1.5 },
    { consecutive_failures: 1e12 },
    { failure_ratio: 0 },
    { failure_ratio: 1.01 },
    { failure_ratio: -0.5 },
    { failure_ratio: 'NaN' },
    { failure_ratio: Number.NaN },
    { window_ms: 0 },
    { window_ms: 50 },
    { window_ms: Number.POSITIVE_INFINITY },
    { min_calls: 0 },
    { min_calls: '20' },
    { surprise: true },
  ])('rejects %o', (bad) => {
    expect(() => withDetector(bad)).toThrow(ConfigError);
  });

  it('reaches the guarded store: consecutive_failures 1 makes one failed admission mark the store down', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const metrics = new Metrics(10);
    const store = createStore(
      parseConfig({
        ...base,
        store: { redis: url, timeout_ms: 100, failure_detector: { consecutive_failures: 1 } },
      }),
      { metrics, logger: silentLogger },
    );
    expect((await store.admit(admitRequest(freshTenant(), {}))).ok).toBe(true); // fail_open default
    expect(await storeUp(metrics)).toBe(0);
    await store.close();
  });
});
