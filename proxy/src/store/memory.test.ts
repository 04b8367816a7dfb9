// The in-memory store against the shared store suite, and what only it keeps.
import { describe, expect, it } from 'vitest';
import { createMemoryStore } from './memory.js';
import { T0, admitRequest, freshTenant } from './store-fixtures.js';
import { MINUTE_MS } from './store.js';
import { describeStore } from './store-suite.js';

describeStore('memory', (options) => createMemoryStore(options));

describe('memory store, the sliding hour of tokens', () => {
  it('reports what remains and the reset from the minutes still in the hour, settled in any order', async () => {
    const store = createMemoryStore();
    const tenant = freshTenant();
    const limits = { tokens_per_hour: 10_000 };
    const admitAt = async (now: number) => {
      const result = await store.admit(admitRequest(tenant, limits, { now }));
      if (!result.ok) throw new Error('refused');
      return result;
    };
    const first = await admitAt(T0);
    const second = await admitAt(T0 + 10 * MINUTE_MS);
    // The later request settles first: its minute is counted before the earlier one's.
    await store.settle(second.reservation, { tokens: 300, usd: 0 });
    await store.settle(first.reservation, { tokens: 500, usd: 0 });

    const third = await admitAt(T0 + 30 * MINUTE_MS);
    expect(third.state.tokens).toEqual({ limit: 10_000, remaining: 9_200, resetS: 40 * 60 });
    await store.settle(third.reservation, { tokens: 0, usd: 0 });

    // Minute 0 has left the hour, minute 10 has not.
    const fourth = await admitAt(T0 + 60 * MINUTE_MS + 1_000);
    expect(fourth.state.tokens).toEqual({ limit: 10_000, remaining: 9_700, resetS: 599 });
    await store.settle(fourth.reservation, { tokens: 0, usd: 0 });

    const fifth = await admitAt(T0 + 70 * MINUTE_MS);
    expect(fifth.state.tokens).toEqual({ limit: 10_000, remaining: 10_000, resetS: 0 });
    await store.settle(fifth.reservation, { tokens: 40, usd: 0 });
    const sixth = await admitAt(T0 + 71 * MINUTE_MS);
    expect(sixth.state.tokens).toEqual({ limit: 10_000, remaining: 9_960, resetS: 59 * 60 });
    await store.close();
  });
});

describe('memory store, daily budgets across midnight', () => {
  it('books each settle in its own day, a late one of yesterday included', async () => {
    const store = createMemoryStore();
    const tenant = freshTenant();
    const limits = { budget_usd_per_day: 1 };
    const DAY = 24 * 60 * MINUTE_MS;
    const midnight = Math.ceil(T0 / DAY) * DAY;
    const admitAt = (now: number) => store.admit(admitRequest(tenant, limits, { now }));
    const spent = async (now: number, usd: number) => {
      const result = await admitAt(now);
      if (!result.ok) throw new Error(`refused: ${result.limit}`);
      await store.settle(result.reservation, { tokens: 0, usd });
    };
    const late = await admitAt(midnight - 1_000); // admitted yesterday, settled after midnight
    await spent(midnight - 500, 0.6);
    expect((await admitAt(midnight - 100)).ok).toBe(true);
    await spent(midnight + 1_000, 0.7); // today
    if (!late.ok) throw new Error('refused');
    await store.settle(late.reservation, { tokens: 0, usd: 0.5 }); // yesterday: 1.1 now
    expect((await admitAt(midnight + 2_000)).ok).toBe(true); // today holds 0.7
    await spent(midnight + 3_000, 0.4); // today: 1.1
    const refused = await admitAt(midnight + 4_000);
    expect(refused.ok ? undefined : refused.limit).toBe('budget_usd_per_day');
    expect((await admitAt(midnight + DAY)).ok).toBe(true);
    await store.close();
  });
});
