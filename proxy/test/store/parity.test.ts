// Model check: the Redis store (Lua) and the memory store (TypeScript) implement the same
// rules twice, so random sequences of admissions, settlements and clock moves must give
// identical answers from both: the same verdicts, limits, grants, Retry-After and headers.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { RateLimits } from '../../src/config/schema.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { createRedisStore } from '../../src/store/redis.js';
import { T0, admitRequest, freshTenant } from '../../src/store/store-fixtures.js';
import type { AdmitResult, Reservation } from '../../src/store/store.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `lk-test-${randomUUID().slice(0, 8)}:`;

const redisStore = createRedisStore({
  redis: REDIS_URL,
  key_prefix: prefix,
  cluster: false,
  timeout_ms: 5_000,
  usage_stream: 'usage',
  usage_stream_maxlen: 1_000,
  retention_hours: 48,
});

afterAll(async () => {
  await redisStore.close();
  const admin = new Redis(REDIS_URL);
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length > 0) await admin.unlink(...keys);
  await admin.quit();
});

type Op =
  | { kind: 'admit'; advanceMs: number; prompt: number; maxOutput: number | undefined; ttlMs: number }
  | { kind: 'settle'; pick: number; tokens: number; usd: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('admit' as const),
    advanceMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20 * 60_000 })),
    prompt: fc.integer({ min: 0, max: 400 }),
    maxOutput: fc.option(fc.integer({ min: 0, max: 600 }), { nil: undefined }),
    ttlMs: fc.integer({ min: 1_000, max: 30 * 60_000 }),
  }),
  fc.record({
    kind: fc.constant('settle' as const),
    pick: fc.nat(),
    tokens: fc.integer({ min: 0, max: 800 }),
    usd: fc.double({ min: 0, max: 0.05, noNaN: true }),
  }),
);

const limitsArb: fc.Arbitrary<RateLimits> = fc.record(
  {
    requests_per_minute: fc.integer({ min: 1, max: 6 }),
    max_concurrent: fc.integer({ min: 1, max: 4 }),
    tokens_per_hour: fc.integer({ min: 200, max: 3_000 }),
    budget_usd_per_day: fc.double({ min: 0.01, max: 0.2, noNaN: true }),
    budget_usd_per_month: fc.double({ min: 0.05, max: 0.5, noNaN: true }),
  },
  { requiredKeys: [] },
);

/** The comparable part of an answer (USD compared separately, to 12 decimals). */
function shape(result: AdmitResult) {
  return result.ok
    ? { ok: true, granted: result.grantedOutput, tokens: result.reservation.tokens, state: result.state }
    : { ok: false, limit: result.limit, retryAfterS: result.retryAfterS, state: result.state };
}

describe('the Redis and memory stores', () => {
  it('answer every random sequence of admissions and settlements identically', async () => {
    await fc.assert(
      fc.asyncProperty(
        limitsArb,
        fc.array(op, { minLength: 1, maxLength: 25 }),
        fc.double({ min: 0, max: 1e-4, noNaN: true }),
        // Start anywhere in the next 40 hours, so runs cross UTC midnight and the month's end.
        fc.integer({ min: 0, max: 40 * 3_600_000 }),
        async (limits, ops, price, start) => {
          const memory = createMemoryStore();
          const tenant = freshTenant();
          const held: [Reservation, Reservation][] = [];
          let now = T0 + start;
          try {
            for (const step of ops) {
              if (step.kind === 'settle') {
                if (held.length === 0) continue;
                const [mine, theirs] = held.splice(step.pick % held.length, 1)[0]!;
                const actual = { tokens: step.tokens, usd: step.usd };
                await Promise.all([memory.settle(mine, actual), redisStore.settle(theirs, actual)]);
                continue;
              }
              now += step.advanceMs;
              const over = {
                requestId: randomUUID(),
                now,
                promptTokens: step.prompt,
                maxOutput: step.maxOutput,
                inputPrice: price,
                outputPrice: price * 4,
                slotTtlMs: step.ttlMs,
              };
              const [a, b] = await Promise.all([
                memory.admit(admitRequest(tenant, limits, over)),
                redisStore.admit(admitRequest(tenant, limits, over)),
              ]);
              expect(shape(b)).toEqual(shape(a));
              if (a.ok && b.ok) {
                expect(b.reservation.usd).toBeCloseTo(a.reservation.usd, 12);
                held.push([a.reservation, b.reservation]);
              }
            }
          } finally {
            await redisStore.eraseTenant(tenant);
            await memory.close();
          }
        },
      ),
      { numRuns: 150 },
    );
  }, 120_000);
});
