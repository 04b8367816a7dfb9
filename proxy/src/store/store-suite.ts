/**
 * The one behavioural suite every Store must pass (memory.test.ts, test/store/redis.test.ts
 * and test/store/cluster.test.ts call it; the reservation part lives in
 * store-suite-reservations.ts, the failure-detector part in store-suite-guarded.ts). Time is passed explicitly through `now`, so windows
 * slide without sleeping; each test uses its own random tenant, so a store may be shared.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RateLimits } from '../config/schema.js';
import { T0, admitRequest, collectGarbage, freshTenant, usageEvent } from './store-fixtures.js';
import { describeGuarded } from './store-suite-guarded.js';
import { describeReservations, granted } from './store-suite-reservations.js';
import { HOUR_MS, MINUTE_MS, type AdmitRequest, type Store } from './store.js';

export { T0, admitRequest, freshTenant, usageEvent } from './store-fixtures.js';

/** Registers the shared suite for one store implementation. */
export function describeStore(
  name: string,
  makeStore: (options?: { slotHeartbeatMs?: number }) => Store | Promise<Store>,
): void {
  describe(`${name} store`, () => {
    let store: Store;
    const tenants: string[] = [];
    const tenant = () => {
      const id = freshTenant();
      tenants.push(id);
      return id;
    };
    const admit = (t: string, limits: RateLimits, over: Partial<AdmitRequest> = {}) =>
      store.admit(admitRequest(t, limits, over));

    beforeAll(async () => {
      store = await makeStore();
    });
    afterAll(async () => {
      for (const t of tenants) await store.eraseTenant(t);
      await store.close();
    });

    describe('slot heartbeat', () => {
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      const limits = { max_concurrent: 1 };
      const admitNow = (live: Store, t: string) =>
        live.admit(admitRequest(t, limits, { now: Date.now(), slotTtlMs: 300 }));

      it('keeps an in-flight slot past its TTL, through garbage collections, and frees it at settle', async () => {
        const live = await makeStore({ slotHeartbeatMs: 50 });
        try {
          const t = tenant();
          const first = await admitNow(live, t);
          expect(first.ok).toBe(true);
          for (let i = 0; i < 4; i++) {
            // The reservation is still held here (as the request's context holds it).
            collectGarbage();
            await sleep(250);
          }
          expect((await admitNow(live, t)).ok).toBe(false);
          if (first.ok) await live.settle(first.reservation, { tokens: 0, usd: 0 });
          expect((await admitNow(live, t)).ok).toBe(true);
        } finally {
          await live.close();
        }
      });

      it('stops keeping a request alive once it was dropped without its settle and collected', async () => {
        const live = await makeStore({ slotHeartbeatMs: 50 });
        try {
          const t = tenant();
          // Admitted, then lost: only whether it was admitted leaves this function, as when
          // a request's context is dropped without its response-end hooks running.
          const admittedAndLost = async () => (await admitNow(live, t)).ok;
          expect(await admittedAndLost()).toBe(true);
          expect((await admitNow(live, t)).ok).toBe(false);
          let admitted = false;
          for (let i = 0; i < 40 && !admitted; i++) {
            collectGarbage();
            await sleep(50);
            admitted = (await admitNow(live, t)).ok;
          }
          expect(admitted).toBe(true);
        } finally {
          await live.close();
        }
      });
    });

    describe('requests per minute', () => {
      it('admits exactly the limit within a minute and names the limit when it refuses', async () => {
        const t = tenant();
        const limits = { requests_per_minute: 3 };
        const results = [];
        for (let i = 0; i < 5; i++) results.push(await admit(t, limits, { now: T0 + i * 1000 }));
        expect(results.map((r) => r.ok)).toEqual([true, true, true, false, false]);
        const refused = results[4]!;
        expect(refused.ok === false && refused.limit).toBe('requests_per_minute');
        // The oldest request (at T0) leaves the window at T0+60s; the refusal came at T0+4s.
        expect(refused.ok === false && refused.retryAfterS).toBe(56);
      });

      it('counts in per-second buckets: a second leaves the window 60 s after it began (59.999 s refused, 60.000 s admitted)', async () => {
        const t = tenant();
        const limits = { requests_per_minute: 1 };
        // Admitted half-way through second 0: its bucket frees at 60.000 s, not 60.5 s.
        expect((await admit(t, limits, { now: T0 + 500 })).ok).toBe(true);
        const early = await admit(t, limits, { now: T0 + 59_999 });
        expect(early.ok === false && early.retryAfterS).toBe(1);
        expect((await admit(t, limits, { now: T0 + 60_000 })).ok).toBe(true);
      });

      it('reports Retry-After and the reset from the bucket that frees next, not the newest', async () => {
        const t = tenant();
        const limits = { requests_per_minute: 2 };
        expect((await admit(t, limits, { now: T0 })).ok).toBe(true);
        const second = await admit(t, limits, { now: T0 + 30_000 });
        // The bucket of T0 frees at T0+60s: 30 s after the second admission.
        expect(second.state.requests).toMatchObject({ remaining: 0, resetS: 30 });
        const refused = await admit(t, limits, { now: T0 + 45_000 });
        expect(refused.ok === false && refused.retryAfterS).toBe(15);
        expect(refused.state.requests?.resetS).toBe(15);
      });

      it('slides: a request frees its place exactly one minute after it was admitted', async () => {
        const t = tenant();
        const limits = { requests_per_minute: 2 };
        expect((await admit(t, limits, { now: T0 })).ok).toBe(true);
        expect((await admit(t, limits, { now: T0 + 30_000 })).ok).toBe(true);
        expect((await admit(t, limits, { now: T0 + 59_999 })).ok).toBe(false);
        expect((await admit(t, limits, { now: T0 + 60_000 })).ok).toBe(true);
        expect((await admit(t, limits, { now: T0 + 60_001 })).ok).toBe(false);
        expect((await admit(t, limits, { now: T0 + 90_000 })).ok).toBe(true);
      });

      it('reports the limit and what remains for the x-ratelimit headers', async () => {
        const t = tenant();
        const first = await admit(t, { requests_per_minute: 10, tokens_per_hour: 1000 });
        expect(first.state.requests).toMatchObject({ limit: 10, remaining: 9 });
        // The request's own reservation (200) is a hold, not use: nothing is used yet.
        expect(first.state.tokens).toMatchObject({ limit: 1000, remaining: 1000 });
        expect(first.state.requests!.resetS).toBeGreaterThan(0);
        // Another request's hold in flight does count: those tokens are not there to take.
        const second = await admit(t, { requests_per_minute: 10, tokens_per_hour: 1000 });
        expect(second.state.tokens).toMatchObject({ remaining: 800 });
        if (!first.ok) throw new Error('the first request was admitted above');
        await store.settle(first.reservation, { tokens: 50, usd: 0 });
        const third = await admit(t, { requests_per_minute: 10, tokens_per_hour: 1000 });
        expect(third.state.tokens).toMatchObject({ remaining: 1000 - 50 - 200 });
      });

      it('200 parallel admits against 50 per minute admit exactly 50', async () => {
        const t = tenant();
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) => admit(t, { requests_per_minute: 50 }, { now: T0 + (i % 7) })),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(50);
        expect(results.filter((r) => !r.ok && r.limit === 'requests_per_minute')).toHaveLength(150);
      });
    });

    describe('concurrency', () => {
      it('holds a slot per request until it settles', async () => {
        const t = tenant();
        const limits = { max_concurrent: 2 };
        const a = await admit(t, limits);
        expect((await admit(t, limits)).ok).toBe(true);
        const third = await admit(t, limits);
        expect(third.ok === false && third.limit).toBe('max_concurrent');
        expect(third.ok === false && third.retryAfterS).toBeGreaterThanOrEqual(1);
        if (!a.ok) throw new Error('first admit refused');
        expect(a.reservation.slot).toBe(true);
        await store.settle(a.reservation, { tokens: 0, usd: 0 });
        expect((await admit(t, limits)).ok).toBe(true);
      });

      it('frees a slot that was never settled once its TTL passes', async () => {
        const t = tenant();
        const limits = { max_concurrent: 1 };
        expect((await admit(t, limits, { slotTtlMs: 5_000 })).ok).toBe(true);
        expect((await admit(t, limits, { now: T0 + 4_999 })).ok).toBe(false);
        expect((await admit(t, limits, { now: T0 + 5_000 })).ok).toBe(true);
      });

      it('expires each unsettled slot at its own TTL, whatever order they were taken in', async () => {
        const t = tenant();
        const limits = { max_concurrent: 2 };
        expect((await admit(t, limits, { slotTtlMs: 10_000 })).ok).toBe(true);
        expect((await admit(t, limits, { slotTtlMs: 2_000 })).ok).toBe(true);
        expect((await admit(t, limits, { now: T0 + 1_999 })).ok).toBe(false);
        expect((await admit(t, limits, { now: T0 + 2_000, slotTtlMs: 10_000 })).ok).toBe(true);
        expect((await admit(t, limits, { now: T0 + 9_999 })).ok).toBe(false);
        expect((await admit(t, limits, { now: T0 + 10_000, slotTtlMs: 60_000 })).ok).toBe(true);
        expect((await admit(t, limits, { now: T0 + 11_999 })).ok).toBe(false);
        expect((await admit(t, limits, { now: T0 + 12_000 })).ok).toBe(true);
      });

      it('a refused request is not counted against requests per minute and holds no slot', async () => {
        const t = tenant();
        const limits = { requests_per_minute: 2, max_concurrent: 1 };
        const a = await admit(t, limits);
        const refused = await admit(t, limits, { now: T0 + 1 });
        expect(refused.ok === false && refused.limit).toBe('max_concurrent');
        if (!a.ok) throw new Error('first admit refused');
        await store.settle(a.reservation, { tokens: 0, usd: 0 });
        // Only A counted: one more fits the minute, and the slot is free again.
        expect((await admit(t, limits, { now: T0 + 2 })).ok).toBe(true);
        const third = await admit(t, { requests_per_minute: 2 }, { now: T0 + 3 });
        expect(third.ok === false && third.limit).toBe('requests_per_minute');
      });
    });

    describeReservations({ store: () => store, tenant, admit });
    describeGuarded(() => makeStore());

    describe('without limits', () => {
      it('grants the requested output, or leaves it unbounded when none was asked', async () => {
        const t = tenant();
        expect(granted(await admit(t, {}, { maxOutput: 4096 }))).toBe(4096);
        const unbounded = await admit(t, {}, { maxOutput: undefined });
        expect(unbounded.ok && unbounded.grantedOutput).toBeUndefined();
        expect(unbounded.state).toEqual({});
      });

      it('keeps tenants apart', async () => {
        const [a, b] = [tenant(), tenant()];
        expect((await admit(a, { requests_per_minute: 1 })).ok).toBe(true);
        expect((await admit(a, { requests_per_minute: 1 })).ok).toBe(false);
        expect((await admit(b, { requests_per_minute: 1 })).ok).toBe(true);
      });
    });

    describe('metering', () => {
      it('sums events into the hour they arrived in', async () => {
        const t = tenant();
        await store.record(usageEvent(t));
        await store.record(usageEvent(t, { input_tokens: 5, output_tokens: 7, cost_usd: 0.002 }));
        await store.record(usageEvent(t, { ts: new Date(T0 - MINUTE_MS).toISOString() }));
        const hour = await store.currentHour(t, T0 + 30 * MINUTE_MS);
        expect(hour).toMatchObject({
          tenant: t,
          hour: '2026-11-29T14:00:00.000Z',
          requests: 2,
          input_tokens: 15,
          output_tokens: 27,
          cached_input_tokens: 6,
          cache_write_tokens: 2,
          reasoning_tokens: 10,
        });
        expect(hour.estimated_cost).toBeCloseTo(0.003, 12);
        expect((await store.currentHour(t, T0 - 1)).requests).toBe(1);
      });

      it("takes a figure no answer can have as 0, without failing another tenant's event beside it", async () => {
        const [a, b] = [tenant(), tenant()];
        // Sent in one turn, so a store that batches sends them in one call.
        await Promise.all([
          store.record(
            usageEvent(a, { input_tokens: Number.NaN, output_tokens: Infinity, cost_usd: Infinity }),
          ),
          store.record(usageEvent(b)),
        ]);
        const at = T0 + 6 * MINUTE_MS;
        expect(await store.currentHour(b, at)).toMatchObject({
          requests: 1,
          input_tokens: 10,
          output_tokens: 20,
        });
        const odd = await store.currentHour(a, at);
        expect(odd).toMatchObject({ requests: 1, input_tokens: 0, output_tokens: 0, estimated_cost: 0 });
      });

      it('counts an event recorded twice once', async () => {
        const t = tenant();
        const event = usageEvent(t);
        await store.record(event);
        await store.record(event);
        expect((await store.currentHour(t, T0 + 6 * MINUTE_MS)).requests).toBe(1);
      });

      it('books no cost for an unpriced event', async () => {
        const t = tenant();
        await store.record(usageEvent(t, { cost_usd: null }));
        const hour = await store.currentHour(t, T0 + 6 * MINUTE_MS);
        expect(hour.requests).toBe(1);
        expect(hour.estimated_cost).toBe(0);
      });

      it('keeps all-time counters across hours', async () => {
        const t = tenant();
        await store.record(usageEvent(t));
        await store.record(usageEvent(t, { ts: new Date(T0 - 3 * HOUR_MS).toISOString(), cost_usd: 0.004 }));
        const total = await store.allTime(t);
        expect(total).toMatchObject({
          tenant: t,
          requests: 2,
          input_tokens: 20,
          output_tokens: 40,
          reasoning_tokens: 10,
        });
        expect(total.estimated_cost).toBeCloseTo(0.005, 12);
      });

      it('settles and records many requests of several tenants ending at once, each exactly once', async () => {
        const tenants = [tenant(), tenant(), tenant()];
        const limits = { tokens_per_hour: 100_000, max_concurrent: 100 };
        const ended = await Promise.all(
          tenants.flatMap((t) =>
            Array.from({ length: 50 }, async () => {
              const admitted = await admit(t, limits);
              if (!admitted.ok) throw new Error('refused');
              return {
                reservation: admitted.reservation,
                event: usageEvent(t, { input_tokens: 4, output_tokens: 6 }),
              };
            }),
          ),
        );
        // Every settle and record in one turn, each twice (a replay must not count again).
        await Promise.all(
          [...ended, ...ended].flatMap(({ reservation, event }) => [
            store.settle(reservation, { tokens: 10, usd: 0 }),
            store.record(event),
          ]),
        );
        for (const t of tenants) {
          expect(await store.allTime(t)).toMatchObject({
            requests: 50,
            input_tokens: 200,
            output_tokens: 300,
          });
          // Slots are free and the hour holds 50 x 10 metered tokens (this admission's own
          // reservation is not use).
          const next = await admit(t, limits);
          expect(next.state.tokens?.remaining).toBe(100_000 - 500);
        }
      });

      it('reports an empty hour for a tenant with no usage', async () => {
        const t = tenant();
        expect(await store.currentHour(t, T0)).toMatchObject({ tenant: t, requests: 0, estimated_cost: 0 });
      });
    });

    describe('erasure and health', () => {
      it('erasing a tenant removes its limits and its usage', async () => {
        const t = tenant();
        expect((await admit(t, { requests_per_minute: 1 })).ok).toBe(true);
        await store.record(usageEvent(t));
        expect(await store.eraseTenant(t)).toBeGreaterThan(0);
        expect((await store.currentHour(t, T0 + 6 * MINUTE_MS)).requests).toBe(0);
        expect((await admit(t, { requests_per_minute: 1 }, { now: T0 + 1 })).ok).toBe(true);
      });

      it('reports itself healthy while its backend answers', async () => {
        expect(await store.healthy()).toBe(true);
      });
    });
  });
}
