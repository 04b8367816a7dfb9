// What happens when Redis goes away: a private redis-server is stopped and restarted under
// the guarded store. Traffic keeps flowing under fail_open, is refused with 503 under
// fail_closed, and every usage event recorded meanwhile reaches the stream afterwards.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisStoreConfig } from '../../src/config/schema.js';
import { StoreUnavailableError } from '../../src/errors.js';
import { Metrics } from '../../src/metrics.js';
import { guardStore, type GuardedStore } from '../../src/store/guarded.js';
import { createRedisStore } from '../../src/store/redis.js';
import type { StoreLogger } from '../../src/store/store-logger.js';
import { admitRequest, freshTenant, usageEvent } from '../../src/store/store-fixtures.js';
import { PrivateRedis, eventually, freePort } from './private-redis.js';

const prefix = `lk-test-${randomUUID().slice(0, 8)}:`;

function config(url: string): RedisStoreConfig {
  return {
    redis: url,
    key_prefix: prefix,
    cluster: false,
    timeout_ms: 300,
    usage_stream: 'usage',
    usage_stream_maxlen: 100_000,
    retention_hours: 48,
  };
}

interface Logged {
  level: string;
  msg: string;
  obj: object;
}

function recordingLogger(): StoreLogger & { lines: Logged[] } {
  const lines: Logged[] = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, msg, obj });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

async function gauge(metrics: Metrics, name: 'storeUp' | 'meterBuffered'): Promise<number> {
  return (await metrics[name].get()).values[0]?.value ?? Number.NaN;
}

async function counter(metrics: Metrics, name: 'storeErrors' | 'meterDropped'): Promise<number> {
  return (await metrics[name].get()).values.reduce((sum, v) => sum + v.value, 0);
}

describe('a guarded Redis store when Redis stops and comes back', () => {
  let server: PrivateRedis;

  beforeAll(async () => {
    server = new PrivateRedis(await freePort());
    await server.start();
  });
  afterAll(async () => {
    await server.stop();
  });

  function guarded(onStoreError: 'fail_open' | 'fail_closed', extra: { bufferLimit?: number } = {}) {
    const metrics = new Metrics(100);
    const logger = recordingLogger();
    const store = guardStore(createRedisStore(config(server.url)), {
      onStoreError,
      metrics,
      logger,
      probeIntervalMs: 100,
      ...extra,
    });
    return { store, metrics, logger };
  }

  it('fail_open keeps admitting while Redis is down and every event recorded meanwhile reaches the stream', async () => {
    const { store, metrics, logger } = guarded('fail_open');
    const tenant = freshTenant();
    const limits = { requests_per_minute: 1000 };
    expect((await store.admit(admitRequest(tenant, limits))).ok).toBe(true);

    await server.stop();
    const whileDown = await Promise.all(
      Array.from({ length: 10 }, () => store.admit(admitRequest(tenant, limits))),
    );
    expect(whileDown.every((r) => r.ok)).toBe(true);
    expect(await store.healthy()).toBe(false);
    expect(await gauge(metrics, 'storeUp')).toBe(0);
    expect(await counter(metrics, 'storeErrors')).toBeGreaterThanOrEqual(10);
    expect(logger.lines.some((l) => l.level === 'warn' && l.msg.includes('fail_open'))).toBe(true);

    const events = Array.from({ length: 25 }, () => usageEvent(tenant));
    for (const event of events) await store.record(event);
    expect(store.pending()).toBe(25);
    expect(await gauge(metrics, 'meterBuffered')).toBe(25);

    await server.start();
    await eventually(() => store.pending() === 0);
    expect(await gauge(metrics, 'storeUp')).toBe(1);
    expect(await gauge(metrics, 'meterBuffered')).toBe(0);
    expect(await store.healthy()).toBe(true);

    const admin = new Redis(server.url);
    const entries = await admin.xrange(`${prefix}usage`, '-', '+');
    const ids = entries.map(([, fields]) => (JSON.parse(fields[1]!) as { request_id: string }).request_id);
    expect(ids).toEqual(events.map((e) => e.request_id));
    expect((await store.currentHour(tenant, Date.parse(events[0]!.ts))).requests).toBe(25);
    await admin.quit();
    await store.close();
  });

  it('fail_closed refuses with a 503 StoreUnavailableError while Redis is down, and admits again after', async () => {
    const { store } = guarded('fail_closed');
    const tenant = freshTenant();
    expect((await store.admit(admitRequest(tenant, {}))).ok).toBe(true);
    await server.stop();
    const refusal = store.admit(admitRequest(tenant, {}));
    await expect(refusal).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(refusal).rejects.toMatchObject({ status: 503, apiCode: 'store_unavailable' });
    await expect(store.admit(admitRequest(tenant, {}))).rejects.toBeInstanceOf(StoreUnavailableError);
    await server.start();
    await eventually(async () => (await store.healthy()) === true);
    expect((await store.admit(admitRequest(tenant, {}))).ok).toBe(true);
    await store.close();
  });

  it('counts and logs the events that overflow the buffer', async () => {
    const { store, metrics, logger } = guarded('fail_open', { bufferLimit: 5 });
    const tenant = freshTenant();
    await server.stop();
    await store.admit(admitRequest(tenant, {}));
    for (let i = 0; i < 8; i++) await store.record(usageEvent(tenant));
    expect(store.pending()).toBe(5);
    expect(await counter(metrics, 'meterDropped')).toBe(3);
    // Once per outage: the count is in lanekeeper_meter_events_dropped_total, not one line per event.
    expect(logger.lines.filter((l) => l.level === 'error' && l.msg.includes('buffer full'))).toHaveLength(1);
    await server.start();
    await eventually(() => store.pending() === 0);
    await store.close();
  });

  it('a stalled Redis (alive but not answering) does not stall admissions, and nothing is counted twice after', async () => {
    const { store, metrics } = guarded('fail_open');
    const tenant = freshTenant();
    const limits = { tokens_per_hour: 1000 };
    const first = await store.admit(admitRequest(tenant, limits, { promptTokens: 100, maxOutput: 400 }));
    if (!first.ok) throw new Error('refused');

    server.pause();
    try {
      // Each call settles (timeout_ms bounds it) although Redis never answers.
      const open = [
        await store.admit(admitRequest(tenant, limits)),
        await store.admit(admitRequest(tenant, limits)),
      ];
      expect(open.map((r) => r.ok)).toEqual([true, true]);
      await store.settle(first.reservation, { tokens: 300, usd: 0 });
      // Settling the fail-open admissions also releases what a timed-out admit reserved
      // when Redis ran it late.
      for (const r of open) if (r.ok) await store.settle(r.reservation, { tokens: 0, usd: 0 });
      const events = Array.from({ length: 5 }, () => usageEvent(tenant));
      for (const event of events) await store.record(event);
      expect(store.pending()).toBe(8);
      // Three failed calls are under the detector's five in a row; the probes that try to
      // flush the buffer fail too, and those finish the count.
      await eventually(async () => (await gauge(metrics, 'storeUp')) === 0);
    } finally {
      server.resume();
    }
    await eventually(() => store.pending() === 0);
    // The settle and records that timed out were also executed late by Redis; the replays
    // must not count them again.
    const next = await store.admit(
      admitRequest(tenant, limits, { now: Date.UTC(2026, 10, 29, 14, 1), maxOutput: 0 }),
    );
    // 300 metered once; this admission's own 100-token hold is not use.
    expect(next.state.tokens?.remaining).toBe(1000 - 300);
    expect((await store.currentHour(tenant, Date.UTC(2026, 10, 29, 14, 30))).requests).toBe(5);
    await store.close();
  });

  it('counts the tokens of a fail_open request whose timed-out admission was released', async () => {
    const { store } = guarded('fail_open');
    const tenant = freshTenant();
    const limits = { tokens_per_hour: 1000, max_concurrent: 5 };
    const at = Date.UTC(2026, 10, 29, 14, 0);
    server.pause();
    let open;
    try {
      // The admission times out and is answered by the policy; the store releases what it
      // may have taken late (a settle of nothing, by request id).
      open = await store.admit(admitRequest(tenant, limits, { now: at }));
    } finally {
      server.resume();
    }
    if (!open.ok) throw new Error('refused');
    await eventually(() => store.pending() === 0);
    // The request still ran upstream and used 200 tokens: its own settle must count them,
    // not be taken for a replay of the release (which the per-request-id guard did).
    await store.settle(open.reservation, { tokens: 200, usd: 0 });
    await eventually(() => store.pending() === 0);
    const next = await store.admit(admitRequest(tenant, limits, { now: at + 60_000, maxOutput: 0 }));
    expect(next.state.tokens?.remaining).toBe(1000 - 200);
    await store.close();
  });

  it('erasing a tenant also drops its buffered events', async () => {
    const { store } = guarded('fail_open');
    const [gone, kept] = [freshTenant(), freshTenant()];
    await server.stop();
    await store.admit(admitRequest(gone, {}));
    await store.record(usageEvent(gone));
    await store.record(usageEvent(kept));
    await store.record(usageEvent(gone));
    await expect(store.eraseTenant(gone)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(store.pending()).toBe(1);
    await server.start();
    await eventually(() => store.pending() === 0);
    expect((await store.allTime(kept)).requests).toBe(1);
    expect((await store.allTime(gone)).requests).toBe(0);
    await store.close();
  });
});

describe('a Redis store pointed at a port where nothing listens', () => {
  let port: number;
  beforeAll(async () => {
    port = await freePort();
  });

  it('fails the call instead of hanging, and the guarded store turns that into policy', async () => {
    const raw = createRedisStore(config(`redis://127.0.0.1:${port}`));
    const tenant = freshTenant();
    await expect(raw.admit(admitRequest(tenant, { requests_per_minute: 5 }))).rejects.toThrow();
    await expect(raw.record(usageEvent(tenant))).rejects.toThrow();
    expect(await raw.healthy()).toBe(false);

    const closed: GuardedStore = guardStore(raw, {
      onStoreError: 'fail_closed',
      metrics: new Metrics(10),
      logger: recordingLogger(),
    });
    await expect(closed.admit(admitRequest(tenant, {}))).rejects.toBeInstanceOf(StoreUnavailableError);
    await closed.record(usageEvent(tenant));
    expect(closed.pending()).toBe(1);
    await closed.close();
  });

  it('under fail_open admits with an unlimited reservation', async () => {
    const store = guardStore(createRedisStore(config(`redis://127.0.0.1:${port}`)), {
      onStoreError: 'fail_open',
      metrics: new Metrics(10),
      logger: recordingLogger(),
    });
    const result = await store.admit(
      admitRequest(freshTenant(), { requests_per_minute: 1 }, { maxOutput: 77 }),
    );
    expect(result).toMatchObject({ ok: true, grantedOutput: 77, state: {} });
    expect(result.ok && result.reservation).toMatchObject({ tokens: 0, usd: 0, slot: false });
    await store.close();
  });
});
