/**
 * A batch PostgreSQL cannot take whole: its events go as one jsonb value, which PostgreSQL
 * caps at 256 MB (SQLSTATE 54000). Each event is bookable alone, so the ledger must book
 * them one by one; before, the error was not taken for the batch's content, the consumer
 * read the same pending batch again, and nothing behind it was ever booked, for any tenant.
 * On PostgreSQL only (vitest.config.ts): it tests PostgreSQL's own limit.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookOrIsolate } from '../src/ledger/book-or-isolate.js';
import type { StreamEntry } from '../src/ledger/book-events.js';
import { createTestEnv, type TestEnv } from './helpers/test-env.js';
import { usageEvent } from './helpers/usage-event.js';

let t: TestEnv;
beforeAll(async () => {
  t = await createTestEnv({ extra: { LANEKEEPER_LEDGER_ENABLED: 'false' } });
});
afterAll(async () => {
  await t?.dispose();
});

describe('a batch past PostgreSQL jsonb limit', () => {
  it('is booked event by event, the small event with it', async () => {
    // 30 events of ~9.5 MB (under the proxy's 10 MiB body limit): ~285 MB in all.
    const big = 'x'.repeat(9_500_000);
    const ts = new Date().toISOString();
    const entries: StreamEntry[] = Array.from({ length: 30 }, (_, i) => ({
      id: `1-${i}`,
      fields: [
        'event',
        JSON.stringify({
          ...usageEvent({ tenant: 'acme', ts, model: 'm', input: 1, output: 1 }),
          model_requested: big,
        }),
      ],
    }));
    const small = {
      ...usageEvent({ tenant: 'acme', ts, model: 'm', input: 1, output: 1 }),
      request_id: randomUUID(),
    };
    entries.push({ id: '2-0', fields: ['event', JSON.stringify(small)] });

    const booked = await bookOrIsolate(t.pool, entries);
    expect(booked).toMatchObject({ inserted: 31, rejected: 0 });
    const { rows } = await t.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM usage_ledger WHERE tenant_id = $1',
      ['acme'],
    );
    expect(rows[0]!.n).toBe(31);
  }, 120_000);
});
