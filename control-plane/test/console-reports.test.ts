/**
 * The console's reports over rows booked by the real ledger code (bookEvents) in a real
 * PostgreSQL: the export's lines per UTC day, model and price version with exact decimals,
 * the tenant list's cost this month and last request, per-model buckets without gaps, and the
 * overview's windows and ranking. Times are fixed, so the windows' edges are tested exactly.
 */
import type { UsageEvent } from '@lanekeeper/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { overview, tenantSummaries, usageByModel, usageExport, windowStart } from '../src/console/reports.js';
import { bookEvents } from '../src/ledger/book-events.js';
import { insertPriceVersion } from '../src/stores/pricing.js';
import { createTestEnv, type TestEnv } from './helpers/test-env.js';
import { usageEvent } from './helpers/usage-event.js';

let t: TestEnv;
const NOW = new Date('2026-03-15T12:30:00Z');
let stream = 0;

function event(tenant: string, ts: string, model = 'small', input = 1000, output = 500): UsageEvent {
  return usageEvent({ tenant, ts, model, input, output });
}

async function book(events: UsageEvent[]) {
  const result = await bookEvents(
    t.pool,
    events.map((e) => ({ id: `${++stream}-0`, fields: ['event', JSON.stringify(e)] })),
  );
  expect(result.inserted).toBe(events.length);
}

beforeAll(async () => {
  t = await createTestEnv();
  await t.pool.query(`INSERT INTO plans (id, body) VALUES ('free', '{"models":{"default":"small"}}')`);
  await t.pool.query(
    `INSERT INTO tenants (id, plan) VALUES ('acme', 'free'), ('beta', 'free'), ('idle', 'free')`,
  );
  // USD per million tokens; the price changes at noon on March 14th.
  await insertPriceVersion(t.pool, new Date('2026-01-01T00:00:00Z'), {
    small: { input: 1, output: 2 },
    large: { input: 10, output: 20 },
  });
  await insertPriceVersion(t.pool, new Date('2026-03-14T12:00:00Z'), { small: { input: 3, output: 6 } });
  await book([
    event('acme', '2026-02-27T10:00:00Z'), // last month: 0.002
    event('acme', '2026-03-14T11:59:59Z'), // old price: 0.002
    event('acme', '2026-03-14T12:00:00Z'), // new price: 0.006
    event('acme', '2026-03-14T23:59:59Z', 'large'), // unpriced since the new version
    event('acme', '2026-03-15T12:10:00Z'), // 0.006
    event('beta', '2026-03-15T11:00:00Z', 'small', 1_000_000, 1_000_000), // 9
  ]);
});

afterAll(async () => {
  await t?.dispose();
});

describe('console reports', () => {
  it('exports one line per UTC day, model and price version, with exact costs', async () => {
    const rows = await usageExport(
      t.pool,
      'acme',
      new Date('2026-03-14T00:00:00Z'),
      new Date('2026-03-16T00:00:00Z'),
    );
    expect(
      rows.map((r) => [
        r.day,
        r.model,
        r.price_version,
        r.provenance,
        r.requests,
        r.cost_usd,
        r.unpriced_requests,
      ]),
    ).toEqual([
      ['2026-03-14', 'large', '2', 'reported', '1', '0', '1'],
      ['2026-03-14', 'small', '1', 'reported', '1', '0.002', '0'],
      ['2026-03-14', 'small', '2', 'reported', '1', '0.006', '0'],
      ['2026-03-15', 'small', '2', 'reported', '1', '0.006', '0'],
    ]);
    expect(rows[0]).toMatchObject({ input_tokens: '1000', output_tokens: '500' });
    // The range's end is exclusive, and other tenants never appear.
    expect(
      await usageExport(t.pool, 'acme', new Date('2026-03-15T12:10:01Z'), new Date('2026-03-16T00:00:00Z')),
    ).toEqual([]);
  });

  it('puts invalid usage on lines of its own, so an invoice is reviewed before it is sent', async () => {
    // Outside every other test's window: a day in January.
    const reported = event('acme', '2026-01-10T09:00:00Z');
    const invalid = {
      ...event('acme', '2026-01-10T10:00:00Z'),
      input_tokens: 1e12,
      provenance: 'invalid' as const,
    };
    await book([reported, invalid]);
    const rows = await usageExport(
      t.pool,
      'acme',
      new Date('2026-01-10T00:00:00Z'),
      new Date('2026-01-11T00:00:00Z'),
    );
    expect(rows.map((r) => [r.model, r.provenance, r.requests, r.input_tokens, r.cost_usd])).toEqual([
      ['small', 'invalid', '1', '1000000000000', '1000000.001'],
      ['small', 'reported', '1', '1000', '0.002'],
    ]);
  });

  it('lists tenants with their cost since the start of the UTC month and their last request', async () => {
    const rows = await tenantSummaries(t.pool, { limit: 10, now: NOW });
    expect(rows).toEqual([
      {
        id: 'acme',
        plan: 'free',
        status: 'active',
        cost_month_usd: 0.014,
        unpriced_month_requests: 1,
        last_request_at: '2026-03-15T12:10:00.000Z',
      },
      {
        id: 'beta',
        plan: 'free',
        status: 'active',
        cost_month_usd: 9,
        unpriced_month_requests: 0,
        last_request_at: '2026-03-15T11:00:00.000Z',
      },
      {
        id: 'idle',
        plan: 'free',
        status: 'active',
        cost_month_usd: 0,
        unpriced_month_requests: 0,
        last_request_at: null,
      },
    ]);
    expect((await tenantSummaries(t.pool, { limit: 10, after: 'acme', now: NOW })).map((r) => r.id)).toEqual([
      'beta',
      'idle',
    ]);
  });

  it('splits usage by model into every bucket of the window, zeros included', async () => {
    const from = windowStart(NOW, 'day', 3);
    expect(from.toISOString()).toBe('2026-03-13T00:00:00.000Z');
    const series = await usageByModel(t.pool, { tenant: 'acme', from, granularity: 'day', count: 3 });
    expect(series.buckets).toEqual([
      '2026-03-13T00:00:00.000Z',
      '2026-03-14T00:00:00.000Z',
      '2026-03-15T00:00:00.000Z',
    ]);
    expect(series.models).toEqual({
      large: { cost_usd: [0, 0, 0], tokens: [0, 1500, 0], requests: [0, 1, 0], unpriced_requests: [0, 1, 0] },
      small: {
        cost_usd: [0, 0.008, 0.006],
        tokens: [0, 3000, 1500],
        requests: [0, 2, 1],
        unpriced_requests: [0, 0, 0],
      },
    });
  });

  it('sums the last 24 hours and 30 days and ranks tenants by cost', async () => {
    const view = await overview(t.pool, NOW);
    // 24 hours = the hour buckets from 13:00 on the 14th to this hour.
    // The unpriced request of "large" is counted apart: its cost is in no cost_usd.
    expect(view.last_24h).toEqual({ requests: 3, tokens: 2_003_000, cost_usd: 9.006, unpriced_requests: 1 });
    expect(view.last_30d.requests).toBe(6);
    expect(view.top_tenants.map((r) => r.tenant)).toEqual(['beta', 'acme']);
    expect(view.cost_per_hour.buckets).toHaveLength(24);
    expect(view.cost_per_hour.models.small!.cost_usd.at(-1)).toBe(0.006);
  });

  it('counts 30 UTC days on the overview, as a tenant page does, and nothing dated ahead', async () => {
    await book([
      // Within 720 hours of NOW, but before the first of the 30 UTC days (from 02-14).
      event('idle', '2026-02-13T20:00:00Z'),
      // Two days ahead: a proxy with a fast clock.
      event('idle', '2026-03-17T12:00:00Z'),
    ]);
    const view = await overview(t.pool, NOW);
    expect(view.last_30d.requests).toBe(6);
    expect(view.last_24h.requests).toBe(3);
    expect(view.top_tenants.map((r) => r.tenant)).toEqual(['beta', 'acme']);
    const idle = (await tenantSummaries(t.pool, { limit: 10, now: NOW })).find((r) => r.id === 'idle');
    // Its last request is the one in February: the one dated ahead has not happened.
    expect(idle).toMatchObject({ cost_month_usd: 0, last_request_at: '2026-02-13T20:00:00.000Z' });
  });
});
