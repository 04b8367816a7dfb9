/**
 * The one behavioural suite every Store must pass (memory.test.ts and
 * test/store/redis.test.ts call it). Time is passed explicitly through `now`, so windows
 * slide without sleeping; each test uses its own random tenant, so a store may be shared.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RateLimits } from '../config/schema.js';
import { T0, admitRequest, freshTenant, usageEvent } from './store-fixtures.js';
import {
  HOUR_MS,
  MINUTE_MS,
  budgetResets,
  type AdmitRequest,
  type AdmitResult,
  type Store,
} from './store.js';

export { T0, admitRequest, freshTenant, usageEvent } from './store-fixtures.js';

function granted(result: AdmitResult): number {
  if (!result.ok) throw new Error(`expected an admission, got a refusal by ${result.limit}`);
  return result.grantedOutput ?? Number.NaN;
}

/** Registers the shared suite for one store implementation. */
export function describeStore(name: string, makeStore: () => Store | Promise<Store>): void {
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
        expect(first.state.tokens).toMatchObject({ limit: 1000, remaining: 800 });
        expect(first.state.requests!.resetS).toBeGreaterThan(0);
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

    describe('tokens per hour', () => {
      it('reserves the worst case and grants only the output that still fits', async () => {
        const t = tenant();
        const limits = { tokens_per_hour: 1000 };
        const over = { promptTokens: 100, maxOutput: 300 };
        expect(granted(await admit(t, limits, over))).toBe(300);
        expect(granted(await admit(t, limits, over))).toBe(300);
        expect(granted(await admit(t, limits, over))).toBe(100);
        const refused = await admit(t, limits, over);
        expect(refused.ok === false && refused.limit).toBe('tokens_per_hour');
        expect(refused.state.tokens?.remaining).toBe(0);
      });

      it('admits a request that produces no output (maxOutput 0) when its prompt alone fits', async () => {
        const t = tenant();
        const limits = { tokens_per_hour: 1000 };
        expect(granted(await admit(t, limits, { promptTokens: 1000, maxOutput: 0 }))).toBe(0);
        const refused = await admit(t, limits, { promptTokens: 1, maxOutput: 0 });
        expect(refused.ok === false && refused.limit).toBe('tokens_per_hour');
        const prices = { inputPrice: 0.001, outputPrice: 0.001 };
        expect(
          (await admit(t, { budget_usd_per_day: 0.1 }, { ...prices, promptTokens: 100, maxOutput: 0 })).ok,
        ).toBe(true);
        const broke = await admit(
          t,
          { budget_usd_per_day: 0.1 },
          { ...prices, promptTokens: 100, maxOutput: 0 },
        );
        expect(broke.ok === false && broke.limit).toBe('budget_usd_per_day');
      });

      it('bounds an unbounded output by what remains', async () => {
        const t = tenant();
        const result = await admit(t, { tokens_per_hour: 1000 }, { promptTokens: 250, maxOutput: undefined });
        expect(granted(result)).toBe(750);
        expect(result.ok && result.reservation.tokens).toBe(1000);
      });

      it('refuses a prompt that alone does not fit, asking to retry after the hour', async () => {
        const t = tenant();
        const refused = await admit(t, { tokens_per_hour: 1000 }, { promptTokens: 1000 });
        expect(refused.ok === false && refused.limit).toBe('tokens_per_hour');
        expect(refused.ok === false && refused.retryAfterS).toBe(3600);
      });

      it('settling replaces the reservation with the metered tokens', async () => {
        const t = tenant();
        const limits = { tokens_per_hour: 1000 };
        const a = await admit(t, limits, { promptTokens: 100, maxOutput: 800 });
        if (!a.ok) throw new Error('refused');
        await store.settle(a.reservation, { tokens: 150, usd: 0 });
        expect(granted(await admit(t, limits, { promptTokens: 100, maxOutput: undefined }))).toBe(750);
      });

      it('settling twice counts the tokens once', async () => {
        const t = tenant();
        const limits = { tokens_per_hour: 1000 };
        const a = await admit(t, limits, { maxOutput: 0 });
        if (!a.ok) throw new Error('refused');
        await store.settle(a.reservation, { tokens: 300, usd: 0 });
        await store.settle(a.reservation, { tokens: 300, usd: 0 });
        const next = await admit(t, limits, { promptTokens: 100, maxOutput: undefined });
        expect(granted(next)).toBe(600);
      });

      it('metered tokens leave the window an hour later, and Retry-After says when', async () => {
        const t = tenant();
        const limits = { tokens_per_hour: 1000 };
        const a = await admit(t, limits, { maxOutput: 0 });
        if (!a.ok) throw new Error('refused');
        await store.settle(a.reservation, { tokens: 900, usd: 0 });
        const refused = await admit(t, limits, { now: T0 + 30 * MINUTE_MS, promptTokens: 200 });
        expect(refused.ok === false && refused.limit).toBe('tokens_per_hour');
        expect(refused.ok === false && refused.retryAfterS).toBe(30 * 60);
        expect((await admit(t, limits, { now: T0 + HOUR_MS, promptTokens: 200 })).ok).toBe(true);
      });

      it('a reservation never settled expires with the slot TTL', async () => {
        const t = tenant();
        const limits = { tokens_per_hour: 1000 };
        expect((await admit(t, limits, { promptTokens: 500, maxOutput: 500, slotTtlMs: 60_000 })).ok).toBe(
          true,
        );
        expect((await admit(t, limits, { now: T0 + 59_000 })).ok).toBe(false);
        expect(granted(await admit(t, limits, { now: T0 + 60_000, maxOutput: undefined }))).toBe(900);
      });

      it('under 100 concurrent admits the granted worst cases never exceed the cap', async () => {
        const t = tenant();
        const cap = 10_000;
        const results = await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            admit(t, { tokens_per_hour: cap }, { promptTokens: 50 + (i % 5) * 10, maxOutput: 400 }),
          ),
        );
        const reserved = results.reduce((sum, r) => sum + (r.ok ? r.reservation.tokens : 0), 0);
        expect(reserved).toBeLessThanOrEqual(cap);
        expect(results.filter((r) => r.ok).length).toBeGreaterThan(10);
        results.forEach((r, i) => {
          if (r.ok) expect(r.reservation.tokens).toBe(50 + (i % 5) * 10 + granted(r));
        });
        expect(results.some((r) => !r.ok && r.limit === 'tokens_per_hour')).toBe(true);
      });
    });

    describe('budgets', () => {
      const prices = { inputPrice: 0.00001, outputPrice: 0.0001 };

      it('grants only the output the day budget can pay for after the prompt', async () => {
        const t = tenant();
        // Prompt: 100 x $0.00001 = $0.001, leaving $0.009 = 90 output tokens at $0.0001.
        const result = await admit(t, { budget_usd_per_day: 0.01 }, { ...prices, maxOutput: 1000 });
        expect(granted(result)).toBe(90);
        expect(result.ok && result.reservation.usd).toBeCloseTo(0.01, 12);
      });

      it('refuses once the day budget is spent, until the UTC day resets', async () => {
        const t = tenant();
        const limits = { budget_usd_per_day: 0.01 };
        const a = await admit(t, limits, { ...prices, maxOutput: 10 });
        if (!a.ok) throw new Error('refused');
        await store.settle(a.reservation, { tokens: 110, usd: 0.0095 });
        const refused = await admit(t, limits, { ...prices, now: T0 + 1000 });
        expect(refused.ok === false && refused.limit).toBe('budget_usd_per_day');
        expect(refused.ok === false && refused.retryAfterS).toBe(budgetResets(T0 + 1000).dayS);
        const tomorrow = Date.UTC(2026, 10, 30, 0, 0, 1);
        expect((await admit(t, limits, { ...prices, now: tomorrow })).ok).toBe(true);
      });

      it('the month budget keeps counting across days and resets with the calendar month', async () => {
        const t = tenant();
        const limits = { budget_usd_per_month: 0.05, budget_usd_per_day: 1 };
        const a = await admit(t, limits, { ...prices, maxOutput: 10 });
        if (!a.ok) throw new Error('refused');
        await store.settle(a.reservation, { tokens: 110, usd: 0.0499 });
        const nextDay = Date.UTC(2026, 10, 30, 9, 0, 0);
        const refused = await admit(t, limits, { ...prices, now: nextDay });
        expect(refused.ok === false && refused.limit).toBe('budget_usd_per_month');
        expect(refused.ok === false && refused.retryAfterS).toBe(budgetResets(nextDay).monthS);
        expect((await admit(t, limits, { ...prices, now: Date.UTC(2026, 11, 1, 0, 0, 0) })).ok).toBe(true);
      });

      it('under 100 concurrent admits the reserved spend never exceeds the budget', async () => {
        const t = tenant();
        const budget = 0.5;
        const results = await Promise.all(
          Array.from({ length: 100 }, () =>
            admit(t, { budget_usd_per_day: budget }, { ...prices, promptTokens: 100, maxOutput: 200 }),
          ),
        );
        const reserved = results.reduce((sum, r) => sum + (r.ok ? r.reservation.usd : 0), 0);
        expect(reserved).toBeLessThanOrEqual(budget + 1e-9);
        expect(results.filter((r) => r.ok).length).toBeGreaterThan(5);
        expect(results.some((r) => !r.ok && r.limit === 'budget_usd_per_day')).toBe(true);
      });

      it('a model without prices is still refused once the budget is spent', async () => {
        const t = tenant();
        const limits = { budget_usd_per_day: 0.01 };
        const a = await admit(t, limits, prices);
        if (!a.ok) throw new Error('refused');
        await store.settle(a.reservation, { tokens: 0, usd: 0.01 });
        const refused = await admit(t, limits, { now: T0 + 1 });
        expect(refused.ok === false && refused.limit).toBe('budget_usd_per_day');
      });
    });

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
