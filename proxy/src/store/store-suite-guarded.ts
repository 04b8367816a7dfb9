/**
 * The failure-detector part of the shared suite: the store behind the guard with the
 * strictest detector (down after one failure), so any call the deadline wrongly judged
 * failed would show. Slowing and stopping Redis itself needs a private server
 * (test/store/failure-detector.test.ts); this part shows that every store, memory, Redis
 * and Cluster, stays up through a burst and through a blocked event loop.
 */
import { describe, expect, it } from 'vitest';
import { Metrics } from '../metrics.js';
import { guardStore } from './guarded.js';
import { admitRequest, freshTenant } from './store-fixtures.js';
import type { Store } from './store.js';
import { silentLogger } from './store-logger.js';

const strict = { consecutiveFailures: 1, failureRatio: 1, windowMs: 10_000, minCalls: 1 };

export function describeGuarded(makeStore: () => Store | Promise<Store>): void {
  describe('behind the guard, with a detector that trips on one failure', () => {
    it('stays up, with no errors, through a burst and a 400 ms block of the event loop', async () => {
      const metrics = new Metrics(10);
      const store = guardStore(await makeStore(), {
        onStoreError: 'fail_closed',
        metrics,
        logger: silentLogger,
        failureDetector: strict,
      });
      const tenant = freshTenant();
      try {
        const burst = await Promise.all(
          Array.from({ length: 50 }, () => store.admit(admitRequest(tenant, { requests_per_minute: 1000 }))),
        );
        expect(burst.every((r) => r.ok)).toBe(true);
        const inFlight = store.admit(admitRequest(tenant, { requests_per_minute: 1000 }));
        const until = Date.now() + 400;
        while (Date.now() < until); // the proxy is busy, not the store
        expect((await inFlight).ok).toBe(true);
        expect((await metrics.storeUp.get()).values[0]?.value).toBe(1);
        expect((await metrics.storeErrors.get()).values.reduce((sum, v) => sum + v.value, 0)).toBe(0);
      } finally {
        await store.eraseTenant(tenant);
        await store.close();
      }
    });
  });
}
