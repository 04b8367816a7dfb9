// How much work each request makes Redis do, counted with INFO commandstats on a private
// redis-server (commands run inside a script are counted one by one): a limit the plan does
// not set costs no reads, the endings of one turn share their writes, and every key written
// still gets an expiry (except the all-time totals, which erasure removes).
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RateLimits, RedisStoreConfig } from '../../src/config/schema.js';
import { createRedisStore } from '../../src/store/redis.js';
import { admitRequest, freshTenant, usageEvent } from '../../src/store/store-fixtures.js';
import type { Store } from '../../src/store/store.js';
import { PrivateRedis, commandCalls, freePort } from './private-redis.js';

let server: PrivateRedis;
let admin: Redis;
let store: Store;

beforeAll(async () => {
  server = new PrivateRedis(await freePort());
  await server.start();
  admin = new Redis(server.url);
  const config: RedisStoreConfig = {
    redis: server.url,
    key_prefix: 'lk-calls:',
    cluster: false,
    timeout_ms: 2_000,
    usage_stream: 'usage',
    usage_stream_maxlen: 1_000,
    retention_hours: 48,
  };
  store = createRedisStore(config);
});

afterAll(async () => {
  await store.close();
  admin.disconnect();
  await server.stop();
});

/** Commands Redis ran (scripts' own commands included, EVALSHA and ours excluded) while `work` ran. */
async function commandsDuring(work: () => Promise<unknown>): Promise<Record<string, number>> {
  await admin.config('RESETSTAT');
  await work();
  const counts = await commandCalls(admin);
  for (const ours of ['evalsha', 'eval', 'config', 'info']) delete counts[ours];
  return counts;
}

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}

async function requests(tenant: string, limits: RateLimits, n: number): Promise<void> {
  const admitted = await Promise.all(
    Array.from({ length: n }, () =>
      store.admit(admitRequest(tenant, limits, { now: Date.now(), inputPrice: 1e-6, outputPrice: 2e-6 })),
    ),
  );
  // Every ending in one turn, as responses that finish together.
  await Promise.all(
    admitted.flatMap((a) => {
      if (!a.ok) throw new Error('refused');
      const at = new Date(a.reservation.at).toISOString();
      return [
        store.settle(a.reservation, { tokens: 30, usd: 0.00005 }),
        store.record(
          usageEvent(tenant, {
            request_id: a.reservation.requestId,
            ts: at,
            cached_input_tokens: 0,
            cache_write_tokens: 0,
            reasoning_tokens: 0,
          }),
        ),
      ];
    }),
  );
}

describe('redis work per request', () => {
  it('reads nothing for limits the plan does not set', async () => {
    const tenant = freshTenant();
    await requests(tenant, { requests_per_minute: 1000 }, 1);
    const counts = await commandsDuring(() =>
      store.admit(admitRequest(tenant, { requests_per_minute: 1000 }, { now: Date.now() })),
    );
    // The erasure tombstone, then the per-second buckets only: read the sum and the oldest
    // second, count this second and the sum (the buckets are scanned, and their expiry moved,
    // only when a second ends).
    const { pexpire = 0, hgetall = 0, hset = 0, hdel = 0, ...rest } = counts;
    expect(rest).toEqual({ exists: 1, hmget: 1, hincrby: 2 });
    expect(Math.max(pexpire, hgetall, hset, hdel)).toBeLessThanOrEqual(1);
  });

  it('shares the writes of requests that end in one turn', async () => {
    const limits = { requests_per_minute: 1_000_000, tokens_per_hour: 1_000_000_000, max_concurrent: 1_000 };
    const tenant = freshTenant();
    await requests(tenant, limits, 2);
    const one = total(await commandsDuring(() => requests(tenant, limits, 1)));
    const twenty = total(await commandsDuring(() => requests(tenant, limits, 20))) / 20;
    // Before batching the writes a request cost 51 commands, however many ended together.
    // Three of them are the erasure tombstone's EXISTS (admission, settle, record).
    expect(one).toBeLessThanOrEqual(48);
    expect(twenty).toBeLessThanOrEqual(28);
  });

  // Each refusal read every reservation in flight, one HGET each, inside the script: a tenant
  // with 2,000 in flight held Redis ~5 ms a refusal, every other tenant's admission waiting.
  it('reads at most 64 reservations for a tokens_per_hour refusal, however many are in flight', async () => {
    const inFlight = 300;
    const limits = { tokens_per_hour: inFlight * 200 };
    const tenant = freshTenant();
    const now = Date.now();
    const admitted = await Promise.all(
      Array.from({ length: inFlight }, (_, i) => store.admit(admitRequest(tenant, limits, { now: now + i }))),
    );
    expect(admitted.every((a) => a.ok)).toBe(true);
    let refused: Awaited<ReturnType<Store['admit']>> | undefined;
    const counts = await commandsDuring(async () => {
      refused = await store.admit(admitRequest(tenant, limits, { now: now + inFlight }));
    });
    expect(refused).toMatchObject({ ok: false, limit: 'tokens_per_hour' });
    expect(counts.hget ?? 0).toBe(0);
    // The summary and the reservations read.
    expect(counts.hmget).toBe(2);
    expect(total(counts)).toBeLessThanOrEqual(12);
    // No sooner than the 64th reservation to expire: not the hour a full read would never give.
    expect(refused!.ok === false && refused!.retryAfterS).toBe(
      Math.ceil((63 + 10 * 60_000 - inFlight) / 1000),
    );
  });

  it('gives every key an expiry except the all-time totals', async () => {
    const limits = {
      requests_per_minute: 1_000_000,
      tokens_per_hour: 1_000_000_000,
      max_concurrent: 1_000,
      budget_usd_per_day: 100,
      budget_usd_per_month: 1000,
    };
    const tenant = freshTenant();
    await requests(tenant, limits, 5);
    // One request still in flight, so the reservation keys exist too.
    expect((await store.admit(admitRequest(tenant, limits, { now: Date.now() }))).ok).toBe(true);
    const keys = await admin.keys(`lk-calls:{${tenant}}:*`);
    const ttls = Object.fromEntries(
      await Promise.all(keys.map(async (key) => [key.split('}:')[1], await admin.ttl(key)])),
    );
    expect(Object.keys(ttls).sort()).toEqual(
      expect.arrayContaining(['rps', 'slots', 'tok', 'res', 'resv', 'marks', 'total']),
    );
    // ...and both spend keys and the hour.
    expect(keys.length).toBe(10);
    for (const [name, ttl] of Object.entries(ttls)) {
      if (name === 'total') expect(ttl).toBe(-1);
      else expect(ttl, name).toBeGreaterThan(0);
    }
  });
});
