/**
 * Erasure of a tenant's rejected events. A reject is an event that broke the contract, so its
 * writer need not have been the reference proxy: the same tenant may be spelled with spaces
 * around the colon, with JSON escapes, or in a payload that is no JSON at all. Matched as
 * `"tenant":"<id>"` text alone, two of three such rejects outlived an erasure that reported
 * success. Another tenant's rejects, a longer id with the same start included, stay.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookEvents, type StreamEntry } from '../src/ledger/book-events.js';
import { call } from './helpers/http.js';
import { startSeeded, stopSeeded } from './helpers/seeded.js';
import type { TestEnv } from './helpers/test-env.js';
import { usageEvent } from './helpers/usage-event.js';

let t: TestEnv;
let cp: { url: string; close(): Promise<void> };

beforeAll(async () => {
  ({ t, cp } = await startSeeded({
    extra: { LANEKEEPER_LEDGER_ENABLED: 'false' },
    tenants: ['secret', 'secret-two'],
  }));
});
afterAll(() => stopSeeded({ t, cp }));

/** A version-2 event (the ledger knows version 1 only): rejected, kept whole. */
function rejectable(tenant: string, marker: string): Record<string, unknown> {
  const event = usageEvent({ tenant, ts: new Date().toISOString(), model: 'm', input: 1, output: 1 });
  return { ...event, v: 2, email: `${marker}@example.com` };
}

describe('erasing a tenant', () => {
  it("deletes its rejects however the payload spells it, and no other tenant's", async () => {
    const compact = JSON.stringify(rejectable('secret', 'compact'));
    const entries: StreamEntry[] = [
      { id: '1-1', fields: ['event', compact] },
      { id: '1-2', fields: ['event', JSON.stringify(rejectable('secret', 'spaced'), null, 1)] },
      {
        id: '1-3',
        fields: [
          'event',
          JSON.stringify(rejectable('secret', 'escaped')).replace(
            '"tenant":"secret"',
            '"tenant":"\\u0073ecret"',
          ),
        ],
      },
      // Cut short: no JSON, so only its text names the tenant.
      { id: '1-4', fields: ['event', `{"tenant" : "secret", "email": "cut@example.com", "v": 2`] },
      { id: '1-5', fields: ['event', JSON.stringify(rejectable('secret-two', 'neighbour'), null, 1)] },
      { id: '1-6', fields: ['event', `{"tenant": "secret-two", "email": "neighbour-cut@example.com"`] },
    ];
    const booked = await bookEvents(t.pool, entries);
    expect(booked.rejected).toBe(6);

    const erased = await call(cp.url, 'DELETE', '/v1/tenants/secret', { token: t.adminToken });
    expect(erased.status).toBe(200);
    expect(erased.body.postgres.rejected_events).toBe(4);
    const left = await t.pool.query<{ stream_id: string }>('SELECT stream_id FROM usage_rejects ORDER BY 1');
    expect(left.rows.map((r) => r.stream_id)).toEqual(['1-5', '1-6']);
    const traces = await t.pool.query(
      `SELECT 1 FROM usage_rejects WHERE payload ~ '"(compact|spaced|escaped|cut)@'`,
    );
    expect(traces.rowCount).toBe(0);
  });
});
