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
