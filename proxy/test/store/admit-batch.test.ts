// Admissions that arrive in one event-loop turn reach Redis as one script call, counted with
// INFO commandstats on a private redis-server, and each caller gets what it would have got
// from admissions made one by one. A call that fails fails each admission in it; an error
// of one admission alone (a tenant's key of the wrong type) fails only that one.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RateLimits, RedisStoreConfig } from '../../src/config/schema.js';
import { StoreTimeoutError, createRedisStore } from '../../src/store/redis.js';
import { T0, admitRequest, freshTenant } from '../../src/store/store-fixtures.js';
import type { AdmitRequest, AdmitResult, Store } from '../../src/store/store.js';
import { PrivateRedis, commandCalls, freePort } from './private-redis.js';

const PREFIX = 'lk-batch:';

let server: PrivateRedis;
let admin: Redis;
let store: Store;

function config(timeoutMs = 2_000): RedisStoreConfig {
  return {
    redis: server.url,
    key_prefix: PREFIX,
    cluster: false,
    timeout_ms: timeoutMs,
    usage_stream: 'usage',
    usage_stream_maxlen: 1_000,
    retention_hours: 48,
  };
}

beforeAll(async () => {
  server = new PrivateRedis(await freePort());
  await server.start();
  admin = new Redis(server.url);
  store = createRedisStore(config());
  // The script is loaded (EVAL after a NOSCRIPT) before anything is counted.
  await store.admit(admitRequest(freshTenant(), {}));
});

afterAll(async () => {
  await store.close();
  admin.disconnect();
  await server.stop();
});

/** EVALSHA and EVAL calls Redis answered while `work` ran. */
async function scriptCallsDuring<T>(work: () => Promise<T>): Promise<{ result: T; calls: number }> {
  await admin.config('RESETSTAT');
  const result = await work();
  const counts = await commandCalls(admin);
  return { result, calls: (counts.evalsha ?? 0) + (counts.eval ?? 0) };
}

interface Plan {
  readonly limits: RateLimits;
  readonly over: Partial<AdmitRequest>;
}

// One tenant's admissions, in order. rpm 3: three admitted, then two refused.
const rpmPlans: Plan[] = Array.from({ length: 5 }, (_, i) => ({
  limits: { requests_per_minute: 3 },
  over: { now: T0 + i },
}));
// tokens/hour 1000, 100 prompt + up to 300 output reserved each: 300, 300, 100, then refused.
const tokenPlans: Plan[] = Array.from({ length: 4 }, (_, i) => ({
  limits: { tokens_per_hour: 1000, max_concurrent: 10 },
  over: { now: T0 + i, promptTokens: 100, maxOutput: 300 },
}));

/** A result with the parts that name the tenant or the request left out. */
function comparable(result: AdmitResult): unknown {
  if (!result.ok) return result;
  const { tenant: _tenant, requestId: _requestId, ...reservation } = result.reservation;
  return { ...result, reservation };
}

describe('admissions of one event-loop turn', () => {
  it('go to Redis as one script call and answer as admissions made one by one', async () => {
    const [rpmTenant, tokenTenant] = [freshTenant(), freshTenant()];
    // Both tenants' admissions are issued in one turn.
    const { result: together, calls } = await scriptCallsDuring(() =>
      Promise.all([
        Promise.all(rpmPlans.map((p) => store.admit(admitRequest(rpmTenant, p.limits, p.over)))),
        Promise.all(tokenPlans.map((p) => store.admit(admitRequest(tokenTenant, p.limits, p.over)))),
      ]),
    );
    expect(calls).toBe(1);

    const [rpmAlone, tokenAlone] = [freshTenant(), freshTenant()];
    const { result: oneByOne, calls: sequentialCalls } = await scriptCallsDuring(async () => {
      const rpm: AdmitResult[] = [];
      for (const p of rpmPlans) rpm.push(await store.admit(admitRequest(rpmAlone, p.limits, p.over)));
      const tokens: AdmitResult[] = [];
      for (const p of tokenPlans) tokens.push(await store.admit(admitRequest(tokenAlone, p.limits, p.over)));
      return [rpm, tokens];
    });
    expect(sequentialCalls).toBe(rpmPlans.length + tokenPlans.length);

    expect(together[0].map(comparable)).toEqual(oneByOne[0]!.map(comparable));
    expect(together[1].map(comparable)).toEqual(oneByOne[1]!.map(comparable));
    // And what that is: in arrival order, exactly three admitted, then refusals by rpm.
    expect(together[0].map((r) => (r.ok ? 'ok' : r.limit))).toEqual([
      'ok',
      'ok',
      'ok',
      'requests_per_minute',
      'requests_per_minute',
    ]);
    expect(together[1].map((r) => (r.ok ? r.grantedOutput : r.limit))).toEqual([
      300,
      300,
      100,
      'tokens_per_hour',
    ]);
  });

  it('go at most 64 to a call, still exact across calls', async () => {
    const tenant = freshTenant();
    const { result, calls } = await scriptCallsDuring(() =>
      Promise.all(
        Array.from({ length: 150 }, (_, i) =>
          store.admit(admitRequest(tenant, { requests_per_minute: 100 }, { now: T0 + i })),
        ),
      ),
    );
    expect(calls).toBe(3);
    expect(result.map((r) => r.ok)).toEqual(Array.from({ length: 150 }, (_, i) => i < 100));
  });

  it("fail only their own caller when one tenant's key breaks its admission", async () => {
    const [broken, fine] = [freshTenant(), freshTenant()];
    await admin.set(`${PREFIX}{${broken}}:rps`, 'not a hash');
    const limits = { requests_per_minute: 5 };
    const { result, calls } = await scriptCallsDuring(() =>
      Promise.allSettled([
        store.admit(admitRequest(fine, limits)),
        store.admit(admitRequest(broken, limits)),
        store.admit(admitRequest(fine, limits)),
      ]),
    );
    expect(calls).toBe(1);
    expect(result.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((result[1] as PromiseRejectedResult).reason).toBeInstanceOf(Error);
    expect(String((result[1] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
    expect(result.map((r) => r.status === 'fulfilled' && r.value.state.requests?.remaining)).toEqual([
      4,
      false,
      3,
    ]);
  });

  it('reject every admission of a call that times out, and every one while Redis is gone', async () => {
    const short = createRedisStore(config(300));
    const tenants = [freshTenant(), freshTenant(), freshTenant()];
    try {
      expect((await short.admit(admitRequest(tenants[0]!, {}))).ok).toBe(true);
      server.pause();
      try {
        const stalled = await Promise.allSettled(
          tenants.map((t) => short.admit(admitRequest(t, { requests_per_minute: 10 }))),
        );
        for (const r of stalled) {
          expect(r.status).toBe('rejected');
          expect((r as PromiseRejectedResult).reason).toBeInstanceOf(StoreTimeoutError);
        }
      } finally {
        server.resume();
      }
      await server.stop();
      try {
        const gone = await Promise.allSettled(tenants.map((t) => short.admit(admitRequest(t, {}))));
        expect(gone.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
      } finally {
        await server.start();
      }
    } finally {
      await short.close();
    }
    // The shared store reconnects and admits again.
    const back = async (): Promise<boolean> => {
      try {
        return (await store.admit(admitRequest(freshTenant(), {}))).ok;
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 100 && !(await back()); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await back()).toBe(true);
  });

  it('are sent by close() when it is called in the same turn', async () => {
    const closing = createRedisStore(config());
    const tenant = freshTenant();
    const pending = [1, 2, 3].map(() => closing.admit(admitRequest(tenant, { requests_per_minute: 2 })));
    await closing.close();
    const results = await Promise.all(pending);
    expect(results.map((r) => r.ok)).toEqual([true, true, false]);
    // Both admissions are counted, in one per-second bucket.
    const buckets = await admin.hgetall(`${PREFIX}{${tenant}}:rps`);
    expect(buckets.n).toBe('2');
    expect(Object.entries(buckets).filter(([field]) => /^\d+$/.test(field))).toEqual([[buckets.o, '2']]);
  });
});
