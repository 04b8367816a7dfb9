/**
 * Concurrent posts of usage that meet in PostgreSQL: the same events in other orders, and a
 * deadlock PostgreSQL breaks. Booking goes in one order whatever the batch's, so overlapping
 * batches wait for each other instead of deadlocking; a deadlock that happens anyway is a 503
 * to retry, with nothing written, not a 500 logged with its stack.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../src/main.js';
import { call } from './helpers/http.js';
import { startSeeded, stopSeeded } from './helpers/seeded.js';
import type { TestEnv } from './helpers/test-env.js';
import { usageEvent } from './helpers/usage-event.js';

let t: TestEnv;
let cp: RunningControlPlane;
const post = (events: unknown[]) =>
  call(cp.url, 'POST', '/v1/usage-events', { token: t.proxyToken, body: { events } });
const rows = async (ids: string[]) =>
  (await t.pool.query(`SELECT count(*)::int AS n FROM usage_ledger WHERE request_id = ANY($1)`, [ids]))
    .rows[0].n as number;

beforeAll(async () => {
  ({ t, cp } = await startSeeded({ extra: { REDIS_URL: '' }, tenants: ['acme', 'beta'] }));
});
afterAll(() => stopSeeded({ t, cp }));

describe('usage posted at the same time', () => {
  it('books overlapping batches in opposite orders once each, none refused', async () => {
    const ts = new Date(Date.now() - 60_000).toISOString();
    for (let round = 0; round < 10; round++) {
      const events = Array.from({ length: 200 }, (_, i) =>
        usageEvent({ tenant: i % 2 ? 'acme' : 'beta', ts, model: 'm', input: 3, output: 2 }),
      );
      const answers = await Promise.all([post(events), post([...events].reverse()), post(events)]);
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
      expect(answers.reduce((sum, a) => sum + (a.body.inserted as number), 0)).toBe(200);
      expect(await rows(events.map((e) => e.request_id))).toBe(200);
    }
  });

  it('answers a deadlock PostgreSQL broke with a 503 to retry, having written nothing', async () => {
    const ts = new Date(Date.now() - 60_000).toISOString();
    const hour = new Date(ts);
    hour.setUTCMinutes(0, 0, 0);
    // The tenant's row for that hour exists, so booking updates it.
    const seed = usageEvent({ tenant: 'acme', ts, model: 'm', input: 1, output: 1 });
    expect((await post([seed])).status).toBe(200);
    const event = usageEvent({ tenant: 'acme', ts, model: 'm', input: 5, output: 5 });

    const other = new pg.Client({ connectionString: t.databaseUrl });
    await other.connect();
    try {
      await other.query('BEGIN');
      // Another writer holds the hour's rollup row...
      await other.query(`SELECT 1 FROM usage_hourly WHERE tenant_id = 'acme' AND hour = $1 FOR UPDATE`, [
        hour,
      ]);
      // ...so the post inserts its ledger row and then waits on the rollup.
      const posting = post([event]);
      for (let i = 0; i < 100; i++) {
        const waiting = await t.pool.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
        );
        if (waiting.rows[0].n > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // Then the other writer wants that same ledger row: a cycle, which PostgreSQL breaks by
      // failing the post's transaction (it waited first, so it checks first).
      const blocked = other
        .query(
          `INSERT INTO usage_ledger
           SELECT (jsonb_populate_record(NULL::usage_ledger, to_jsonb(u) || jsonb_build_object('request_id', $1::text))).*
             FROM usage_ledger u WHERE u.request_id = $2`,
          [event.request_id, seed.request_id],
        )
        .catch((error: Error) => error);
      const answer = await posting;
      expect(answer.status).toBe(503);
      expect(answer.headers['retry-after']).toBe('1');
      expect(answer.body.error.code).toBe('CP_ERR_RETRY');
      expect(await blocked).not.toBeInstanceOf(Error);
      await other.query('ROLLBACK');
    } finally {
      await other.end();
    }
    expect(await rows([event.request_id])).toBe(0);
    const again = await post([event]);
    expect(again.status).toBe(200);
    expect(again.body.inserted).toBe(1);
  });
});
