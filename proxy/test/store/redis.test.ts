// The Redis store against the shared store suite, on the shared Redis server with a key
// prefix of its own; plus what only Redis has: the durable usage stream and key layout.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisStore } from '../../src/store/redis.js';
import { admitRequest, freshTenant, usageEvent } from '../../src/store/store-fixtures.js';
import { describeStore } from '../../src/store/store-suite.js';
import type { RedisStoreConfig } from '../../src/config/schema.js';
import { unlinkPrefix } from './private-redis.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `lk-test-${randomUUID().slice(0, 8)}:`;

function config(over: Partial<RedisStoreConfig> = {}): RedisStoreConfig {
  return {
    redis: REDIS_URL,
    key_prefix: prefix,
    cluster: false,
    timeout_ms: 2_000,
    usage_stream: 'usage',
    usage_stream_maxlen: 100_000,
    retention_hours: 48,
    ...over,
  };
}

const admin = new Redis(REDIS_URL);
afterAll(async () => {
  await unlinkPrefix(admin, prefix);
  await admin.quit();
});

describeStore('redis', (options) => createRedisStore(config(), options));

describe('redis store specifics', () => {
  it("keeps a tenant's requests-per-minute state bounded after 100,000 admissions at any rate", async () => {
    const store = createRedisStore(config());
    const tenant = freshTenant();
    const limits = { requests_per_minute: 10_000_000 };
    const start = Date.UTC(2026, 11, 5, 10, 0, 0);
    // 100,000 admissions, 1,000 per simulated second over 100 seconds (a 1,000 req/s tenant).
    for (let batch = 0; batch < 100; batch++) {
      const results = await Promise.all(
        Array.from({ length: 1_000 }, (_, i) =>
          store.admit(admitRequest(tenant, limits, { now: start + batch * 1_000 + i })),
        ),
      );
      expect(results.every((r) => r.ok)).toBe(true);
    }
    const key = `${prefix}{${tenant}}:rps`;
    // At most the window's 60 seconds (plus the current one) and the sum and oldest fields,
    // whatever the rate.
    expect(await admin.hlen(key)).toBeLessThanOrEqual(63);
    const bytes = Number(await admin.memory('USAGE', key));
    expect(bytes).toBeLessThanOrEqual(4_096);
    const last = await store.admit(admitRequest(tenant, limits, { now: start + 100_000 }));
    // At second 100 the window holds seconds 41-99 (1,000 each) and this request.
    expect(last.state.requests?.remaining).toBe(10_000_000 - 59_000 - 1);
    await store.close();
  }, 120_000);

  it('appends every recorded event to the usage stream as one JSON field named event', async () => {
    const store = createRedisStore(config());
    const tenant = freshTenant();
    const event = usageEvent(tenant);
    await store.record(event);
    const entries = await admin.xrange(`${prefix}usage`, '-', '+');
    const mine = entries.map(([, fields]) => fields).filter((f) => f[1]?.includes(event.request_id));
    expect(mine).toEqual([['event', JSON.stringify(event)]]);
    await store.eraseTenant(tenant);
    await store.close();
  });

  it('neither counts nor appends again an event already recorded, and does not call Redis for it', async () => {
    const store = createRedisStore(config());
    const tenant = freshTenant();
    const event = usageEvent(tenant);
    await store.record(event);
    // The same event in a later turn, and a settle with no record beside it in the same call.
    const admitted = await store.admit(admitRequest(tenant, { max_concurrent: 1 }));
    if (!admitted.ok) throw new Error('refused');
    await Promise.all([store.record(event), store.settle(admitted.reservation, { tokens: 5, usd: 0 })]);
    const entries = await admin.xrange(`${prefix}usage`, '-', '+');
    expect(entries.filter(([, fields]) => fields[1] === JSON.stringify(event))).toHaveLength(1);
    expect((await store.allTime(tenant)).requests).toBe(1);
    // The slot was freed by the settle.
    expect((await store.admit(admitRequest(tenant, { max_concurrent: 1 }))).ok).toBe(true);
    await store.eraseTenant(tenant);
    await store.close();
  });

  it('sends what ended in a turn before closing', async () => {
    const store = createRedisStore(config());
    const tenant = freshTenant();
    const recorded = store.record(usageEvent(tenant));
    await store.close();
    await recorded;
    const reader = createRedisStore(config());
    expect((await reader.allTime(tenant)).requests).toBe(1);
    await reader.eraseTenant(tenant);
    await reader.close();
  });

  it("keeps every key of a tenant under the prefix and the tenant's hash tag, and erasure removes them all", async () => {
    const store = createRedisStore(config());
    const tenant = freshTenant();
    const limits = {
      requests_per_minute: 5,
      max_concurrent: 2,
      tokens_per_hour: 1000,
      budget_usd_per_day: 1,
      budget_usd_per_month: 2,
    };
    const admitted = await store.admit(admitRequest(tenant, limits, { inputPrice: 1e-6, outputPrice: 1e-6 }));
    if (!admitted.ok) throw new Error('refused');
    await store.admit(admitRequest(tenant, limits));
    await store.settle(admitted.reservation, { tokens: 50, usd: 0.0001 });
    await store.record(usageEvent(tenant));
    const keys = await admin.keys(`${prefix}{${tenant}}:*`);
    expect(keys.sort()).toEqual(
      [
        'rps',
        'slots',
        'tok',
        'res',
        'resv',
        'marks',
        'spend:d:2026-11-29',
        'spend:m:2026-11',
        'hour:2026-11-29T14',
        'total',
      ]
        .map((k) => `${prefix}{${tenant}}:${k}`)
        .sort(),
    );
    for (const key of keys) if (!key.endsWith(':total')) expect(await admin.pttl(key)).toBeGreaterThan(0);
    expect(await store.eraseTenant(tenant)).toBe(keys.length);
    expect(await admin.keys(`${prefix}{${tenant}}:*`)).toEqual([]);
    await store.close();
  });

  it('refuses a key prefix with braces, which would break the per-tenant hash tag', () => {
    expect(() => createRedisStore(config({ key_prefix: 'lk{a}:' }))).toThrow(/must not contain/);
  });

  it('drops the reservation keys once the last reservation is settled', async () => {
    const store = createRedisStore(config());
    const tenant = freshTenant();
    const admitted = await store.admit(admitRequest(tenant, { tokens_per_hour: 1000 }));
    if (!admitted.ok) throw new Error('refused');
    expect(await admin.exists(`${prefix}{${tenant}}:resv`)).toBe(1);
    await store.settle(admitted.reservation, { tokens: 10, usd: 0 });
    expect(await admin.exists(`${prefix}{${tenant}}:resv`, `${prefix}{${tenant}}:res`)).toBe(0);
    await store.eraseTenant(tenant);
    await store.close();
  });
});
