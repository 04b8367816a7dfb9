/**
 * The part of the shared store suite about reservations: tokens per hour and spend budgets,
 * where each admission reserves its worst case and settling replaces it with what was used.
 * Registered by describeStore (store-suite.ts) with that suite's store and helpers.
 */
import { describe, expect, it } from 'vitest';
import type { RateLimits } from '../config/schema.js';
import { T0 } from './store-fixtures.js';
import {
  HOUR_MS,
  MINUTE_MS,
  budgetResets,
  type AdmitRequest,
  type AdmitResult,
  type Store,
} from './store.js';

/** What the reservation tests need from the suite that registers them. */
export interface SuiteContext {
  store(): Store;
  /** A fresh tenant id, erased after the suite. */
  tenant(): string;
  admit(tenant: string, limits: RateLimits, over?: Partial<AdmitRequest>): Promise<AdmitResult>;
}

/** The granted output of an admission; throws on a refusal. */
export function granted(result: AdmitResult): number {
  if (!result.ok) throw new Error(`expected an admission, got a refusal by ${result.limit}`);
  return result.grantedOutput ?? Number.NaN;
}

/** Registers the tokens-per-hour and budget tests. */
export function describeReservations(ctx: SuiteContext): void {
  const { tenant, admit } = ctx;

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
      await ctx.store().settle(a.reservation, { tokens: 150, usd: 0 });
      expect(granted(await admit(t, limits, { promptTokens: 100, maxOutput: undefined }))).toBe(750);
    });

    it('settling twice counts the tokens once', async () => {
      const t = tenant();
      const limits = { tokens_per_hour: 1000 };
      const a = await admit(t, limits, { maxOutput: 0 });
      if (!a.ok) throw new Error('refused');
      await ctx.store().settle(a.reservation, { tokens: 300, usd: 0 });
      await ctx.store().settle(a.reservation, { tokens: 300, usd: 0 });
      const next = await admit(t, limits, { promptTokens: 100, maxOutput: undefined });
      expect(granted(next)).toBe(600);
    });

    it('metered tokens leave the window an hour later, and Retry-After says when', async () => {
      const t = tenant();
      const limits = { tokens_per_hour: 1000 };
      const a = await admit(t, limits, { maxOutput: 0 });
      if (!a.ok) throw new Error('refused');
      await ctx.store().settle(a.reservation, { tokens: 900, usd: 0 });
      const refused = await admit(t, limits, { now: T0 + 30 * MINUTE_MS, promptTokens: 200 });
      expect(refused.ok === false && refused.limit).toBe('tokens_per_hour');
      expect(refused.ok === false && refused.retryAfterS).toBe(30 * 60);
      expect((await admit(t, limits, { now: T0 + HOUR_MS, promptTokens: 200 })).ok).toBe(true);
    });

    it('with more than 64 in flight, Retry-After is no sooner than the 64th reservation to expire', async () => {
      const t = tenant();
      const limits = { tokens_per_hour: 100 * 200 };
      // Admitted a second apart, so each expires a second after the one before.
      for (let i = 0; i < 100; i++) {
        const a = await admit(t, limits, { now: T0 + i * 1000, promptTokens: 100, maxOutput: 100 });
        expect(a.ok).toBe(true);
      }
      const refused = await admit(t, limits, { now: T0 + 100_000, promptTokens: 100, maxOutput: 100 });
      expect(refused.ok === false && refused.limit).toBe('tokens_per_hour');
      // The first to expire frees enough: its expiry, as with every reservation read.
      expect(refused.ok === false && refused.retryAfterS).toBe((10 * MINUTE_MS) / 1000 - 100);
      const some = await admit(t, limits, { now: T0 + 100_000, promptTokens: 40 * 200, maxOutput: 100 });
      // 40 reservations' worth and a token: the 41st to expire frees it.
      expect(some.ok === false && some.retryAfterS).toBe((10 * MINUTE_MS) / 1000 - 100 + 40);
      const more = await admit(t, limits, { now: T0 + 100_000, promptTokens: 65 * 200, maxOutput: 100 });
      // More than the 64 read free, which end 63 s after the first.
      expect(more.ok === false && more.retryAfterS).toBe((10 * MINUTE_MS) / 1000 - 100 + 63);
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

    it('unsettled reservations with different TTLs each free their tokens at their own expiry', async () => {
      const t = tenant();
      const limits = { tokens_per_hour: 1000 };
      const hold = (now: number, slotTtlMs: number) =>
        admit(t, limits, { now, promptTokens: 400, maxOutput: 0, slotTtlMs });
      expect((await hold(T0, 30_000)).ok).toBe(true);
      expect((await hold(T0, 5_000)).ok).toBe(true);
      expect((await hold(T0 + 4_999, 60_000)).ok).toBe(false);
      expect((await hold(T0 + 5_000, 60_000)).ok).toBe(true);
      expect((await hold(T0 + 29_999, 60_000)).ok).toBe(false);
      expect(
        granted(await admit(t, limits, { now: T0 + 30_000, promptTokens: 100, maxOutput: undefined })),
      ).toBe(500);
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
      await ctx.store().settle(a.reservation, { tokens: 110, usd: 0.0095 });
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
      await ctx.store().settle(a.reservation, { tokens: 110, usd: 0.0499 });
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
      await ctx.store().settle(a.reservation, { tokens: 0, usd: 0.01 });
      const refused = await admit(t, limits, { now: T0 + 1 });
      expect(refused.ok === false && refused.limit).toBe('budget_usd_per_day');
    });
  });
}
