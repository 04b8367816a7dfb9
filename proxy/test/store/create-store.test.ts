// createStore: the config picks memory or Redis, and whichever it is comes wrapped in the
// on_store_error policy.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/schema.js';
import { StoreUnavailableError } from '../../src/errors.js';
import { Metrics } from '../../src/metrics.js';
import { createStore } from '../../src/store/index.js';
import { silentLogger } from '../../src/store/store-logger.js';
import { admitRequest, freshTenant, usageEvent } from '../../src/store/store-fixtures.js';
import { freePort } from './private-redis.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const deps = () => ({ metrics: new Metrics(10), logger: silentLogger });
const base = { upstream: { url: 'http://127.0.0.1:9' } };

describe('createStore', () => {
  it('builds the embedded store by default', async () => {
    const store = createStore(parseConfig(base), deps());
    expect(store.kind).toBe('memory');
    const tenant = freshTenant();
    expect((await store.admit(admitRequest(tenant, { requests_per_minute: 1 }))).ok).toBe(true);
    expect((await store.admit(admitRequest(tenant, { requests_per_minute: 1 }))).ok).toBe(false);
    await store.close();
  });

  it('builds a Redis store from a redis URL, sharing state with another instance on the same prefix', async () => {
    const config = parseConfig({
      ...base,
      store: { redis: REDIS_URL, key_prefix: `lk-test-${randomUUID().slice(0, 8)}:` },
    });
    const [a, b] = [createStore(config, deps()), createStore(config, deps())];
    expect(a.kind).toBe('redis');
    expect(await a.healthy()).toBe(true);
    const tenant = freshTenant();
    expect((await a.admit(admitRequest(tenant, { requests_per_minute: 1 }))).ok).toBe(true);
    expect((await b.admit(admitRequest(tenant, { requests_per_minute: 1 }))).ok).toBe(false);
    const event = usageEvent(tenant);
    await a.record(event);
    expect((await b.currentHour(tenant, Date.parse(event.ts))).requests).toBe(1);
    expect(await b.eraseTenant(tenant)).toBeGreaterThan(0);
    await Promise.all([a.close(), b.close()]);
  });

  it('applies on_store_error to a Redis that cannot be reached', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const config = parseConfig({
      ...base,
      store: { redis: url, timeout_ms: 200 },
      on_store_error: 'fail_closed',
    });
    const store = createStore(config, deps());
    await expect(store.admit(admitRequest(freshTenant(), {}))).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(await store.healthy()).toBe(false);
    await store.close();
  });
});
