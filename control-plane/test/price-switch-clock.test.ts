/**
 * Which price version is in force is read by the database's clock, not each replica's.
 * Replicas a few seconds apart around a switch each bumped the config version to their own
 * idea of the prices in force, and proxies flipped between the two (found by review). Here
 * this replica's clock runs ten minutes ahead of the database's.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { msToNextPriceSwitch } from '../src/stores/pricing.js';
import { call } from './helpers/http.js';
import { startSeeded, stopSeeded, type Seeded } from './helpers/seeded.js';

let s: Seeded;
const admin = (method: string, path: string, body?: unknown) =>
  call(s.cp.url, method, path, { token: s.t.adminToken, body });

beforeAll(async () => {
  s = await startSeeded({ extra: { LANEKEEPER_LEDGER_ENABLED: 'false' } });
});
afterEach(() => vi.useRealTimers());
afterAll(() => stopSeeded(s ?? {}));

describe('the price version in force', () => {
  it("is the database clock's, whatever this replica's clock says", async () => {
    const now = Date.now();
    const at = (ms: number) => new Date(now + ms).toISOString();
    expect(
      (
        await admin('POST', '/v1/pricing/versions', {
          effective_from: at(-60_000),
          prices: { m: { input: 1, output: 1 } },
        })
      ).status,
    ).toBe(201);
    expect(
      (
        await admin('POST', '/v1/pricing/versions', {
          effective_from: at(5 * 60_000),
          prices: { m: { input: 9, output: 9 } },
        })
      ).status,
    ).toBe(201);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(now + 10 * 60_000);
    const config = await call(s.cp.url, 'GET', '/v1/config', { token: s.t.proxyToken });
    expect(config.status).toBe(200);
    expect(config.body.pricing).toEqual({ m: { input: 1, output: 1 } });
    // And the switch-over timer waits for the database's five minutes, not this clock's none.
    const wait = await msToNextPriceSwitch(s.t.pool);
    expect(wait).toBeGreaterThan(4 * 60_000);
    expect(wait).toBeLessThanOrEqual(5 * 60_000);
  });
});
