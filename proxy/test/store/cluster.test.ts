// The Redis store in Cluster mode, on a private three-master cluster: the whole shared suite,
// plus what the hash-tag layout promises (a tenant's keys in one slot, the usage stream apart,
// erasure across every master).
import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisStoreConfig } from '../../src/config/schema.js';
import { createRedisStore } from '../../src/store/redis.js';
import { T0, admitRequest, freshTenant, usageEvent } from '../../src/store/store-fixtures.js';
import { describeStore } from '../../src/store/store-suite.js';
import type { Store } from '../../src/store/store.js';
import { PrivateCluster } from './private-cluster.js';
import { commandCalls } from './private-redis.js';

const cluster = new PrivateCluster();
const prefix = `lk-test-${randomUUID().slice(0, 8)}:`;

function config(): RedisStoreConfig {
  return {
    redis: cluster.url,
    key_prefix: prefix,
    cluster: true,
    timeout_ms: 2_000,
    usage_stream: 'usage',
    usage_stream_maxlen: 10_000,
    retention_hours: 48,
  };
}

beforeAll(async () => {
  await cluster.start();
}, 60_000);
afterAll(async () => {
  await cluster.stop();
});

describeStore('redis cluster', (options) => createRedisStore(config(), options));

describe('redis cluster layout', () => {
  let store: Store;
  let admin: Cluster;
  beforeAll(() => {
    store = createRedisStore(config());
    admin = new Cluster([{ host: '127.0.0.1', port: cluster.ports[0]! }]);
  });
  afterAll(async () => {
    await store.close();
    await admin.quit();
  });

  it("puts every key of a tenant in the tenant's slot and the usage stream in its own", async () => {
    const tenant = freshTenant();
    const limits = {
      requests_per_minute: 5,
      max_concurrent: 5,
      tokens_per_hour: 1000,
      budget_usd_per_day: 1,
    };
    const admitted = await store.admit(admitRequest(tenant, limits, { inputPrice: 1e-6, outputPrice: 1e-6 }));
    if (!admitted.ok) throw new Error('refused');
    await store.settle(admitted.reservation, { tokens: 10, usd: 0.001 });
    const event = usageEvent(tenant);
    await store.record(event);

    const tenantSlot = Number(await admin.cluster('KEYSLOT', `${prefix}{${tenant}}:rps`));
    for (const suffix of ['tok', 'spend:d:2026-11-29', 'hour:2026-11-29T14', 'total', 'marks']) {
      expect(Number(await admin.cluster('KEYSLOT', `${prefix}{${tenant}}:${suffix}`))).toBe(tenantSlot);
    }
    const entries = await admin.xrange(`${prefix}usage`, '-', '+');
    expect(entries.some(([, fields]) => fields[1] === JSON.stringify(event))).toBe(true);
    expect((await store.currentHour(tenant, Date.parse(event.ts))).requests).toBe(1);
    expect(await store.eraseTenant(tenant)).toBeGreaterThanOrEqual(7);
    expect((await store.allTime(tenant)).requests).toBe(0);
  });

  it("acknowledges each tenant's replay marks on that tenant's next call, and all of them on close", async () => {
    const own = createRedisStore(config());
    const tenants = [freshTenant(), freshTenant()];
    for (let i = 0; i < 5; i++) await Promise.all(tenants.map((t) => own.record(usageEvent(t))));
    // Each tenant keeps only its last call's mark, in its own slot.
    for (const t of tenants) {
      expect(await admin.zcard(`${prefix}{${t}}:marks`)).toBe(1);
      expect((await own.allTime(t)).requests).toBe(5);
    }
    await own.close();
    for (const t of tenants) expect(await admin.exists(`${prefix}{${t}}:marks`)).toBe(0);
  });

  it('admits requests of tenants in different slots in one turn, one call per tenant, each exact', async () => {
    const tenants = [freshTenant(), freshTenant(), freshTenant()];
    const slots = await Promise.all(tenants.map((t) => admin.cluster('KEYSLOT', `${prefix}{${t}}:rps`)));
    expect(new Set(slots).size).toBeGreaterThan(1);
    // The scripts are loaded on every master before anything is counted.
    await Promise.all(tenants.map((t) => store.admit(admitRequest(t, {}))));
    const masters = admin.nodes('master');
    expect(masters).toHaveLength(3);
    await Promise.all(masters.map((node) => node.config('RESETSTAT')));
    const limits = { requests_per_minute: 2, tokens_per_hour: 1000 };
    // Interleaved, all in one turn: three admissions per tenant, of which two fit the minute.
    const results = await Promise.all(
      [0, 1, 2].flatMap((i) =>
        tenants.map((t) =>
          store.admit(admitRequest(t, limits, { now: T0 + i, promptTokens: 100, maxOutput: 300 })),
        ),
      ),
    );
    let calls = 0;
    for (const node of masters) calls += (await commandCalls(node)).evalsha ?? 0;
    expect(calls).toBe(tenants.length);
    for (const [n, t] of tenants.entries()) {
      const own = results.filter((_, i) => i % tenants.length === n);
      expect(own.map((r) => (r.ok ? r.grantedOutput : r.limit))).toEqual([300, 300, 'requests_per_minute']);
      expect(own.every((r) => !r.ok || r.reservation.tenant === t)).toBe(true);
      expect(own[2]!.state.tokens?.remaining).toBe(1000 - 2 * 400);
      await store.eraseTenant(t);
    }
  });

  it('finishes requests of tenants in different slots in one turn, each in its own call, with every event in the stream', async () => {
    const tenants = [freshTenant(), freshTenant(), freshTenant(), freshTenant()];
    const slots = await Promise.all(tenants.map((t) => admin.cluster('KEYSLOT', `${prefix}{${t}}:rps`)));
    expect(new Set(slots).size).toBeGreaterThan(1);
    const ended = await Promise.all(
      tenants.map(async (t) => {
        const admitted = await store.admit(admitRequest(t, { max_concurrent: 1 }));
        if (!admitted.ok) throw new Error('refused');
        return { reservation: admitted.reservation, event: usageEvent(t) };
      }),
    );
    await Promise.all(
      ended.flatMap(({ reservation, event }) => [
        store.settle(reservation, { tokens: 5, usd: 0 }),
        store.record(event),
      ]),
    );
    const entries = await admin.xrange(`${prefix}usage`, '-', '+');
    for (const { event } of ended) {
      expect(entries.filter(([, fields]) => fields[1] === JSON.stringify(event))).toHaveLength(1);
      expect((await store.allTime(event.tenant)).requests).toBe(1);
      expect((await store.admit(admitRequest(event.tenant, { max_concurrent: 1 }))).ok).toBe(true);
      await store.eraseTenant(event.tenant);
    }
  });
});
