// The Redis store in Cluster mode, on a private three-master cluster: the whole shared suite,
// plus what the hash-tag layout promises (a tenant's keys in one slot, the usage stream apart,
// erasure across every master).
import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisStoreConfig } from '../../src/config/schema.js';
import { createRedisStore } from '../../src/store/redis.js';
import { admitRequest, freshTenant, usageEvent } from '../../src/store/store-fixtures.js';
import { describeStore } from '../../src/store/store-suite.js';
import type { Store } from '../../src/store/store.js';
import { PrivateCluster } from './private-cluster.js';

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

describeStore('redis cluster', () => createRedisStore(config()));

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

    const tenantSlot = Number(await admin.cluster('KEYSLOT', `${prefix}{${tenant}}:rpm`));
    for (const suffix of ['tok', 'spend:d:2026-11-29', 'hour:2026-11-29T14', 'total']) {
      expect(Number(await admin.cluster('KEYSLOT', `${prefix}{${tenant}}:${suffix}`))).toBe(tenantSlot);
    }
    const entries = await admin.xrange(`${prefix}usage`, '-', '+');
    expect(entries.some(([, fields]) => fields[1] === JSON.stringify(event))).toBe(true);
    expect((await store.currentHour(tenant, Date.parse(event.ts))).requests).toBe(1);
    expect(await store.eraseTenant(tenant)).toBeGreaterThanOrEqual(8);
    expect((await store.allTime(tenant)).requests).toBe(0);
  });

  it('finishes requests of tenants in different slots in one turn, each in its own call, with every event in the stream', async () => {
    const tenants = [freshTenant(), freshTenant(), freshTenant(), freshTenant()];
    const slots = await Promise.all(tenants.map((t) => admin.cluster('KEYSLOT', `${prefix}{${t}}:rpm`)));
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
