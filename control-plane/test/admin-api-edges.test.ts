/**
 * Admin API paths the CLI's end-to-end tests reached first, now checked over HTTP directly:
 * two PUTs racing to create one plan (the loser gets 409, not a 500 or a lost write), and the
 * range GET /v1/tenants/{id}/usage/by-model accepts (at most 31 days; reversed, empty,
 * ill-formed and out-of-range dates refused with the field named).
 */
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../src/main.js';
import { call } from './helpers/http.js';
import { usageEvent } from './helpers/usage-event.js';
import { startSeeded, stopSeeded } from './helpers/seeded.js';
import { ON_PGLITE, type TestEnv } from './helpers/test-env.js';

let t: TestEnv;
let cp: RunningControlPlane;
const admin = (method: string, path: string, body?: unknown) =>
  call(cp.url, method, path, { token: t.adminToken, body });

beforeAll(async () => {
  ({ t, cp } = await startSeeded({ extra: { LANEKEEPER_LEDGER_ENABLED: 'false' }, tenants: ['acme'] }));
});
afterAll(() => stopSeeded({ t, cp }));

const auditOf = async (id: string) =>
  (await t.pool.query(`SELECT action, after FROM audit_log WHERE resource = $1 ORDER BY id`, [`plans/${id}`]))
    .rows as { action: string; after: { models: { default: string } } }[];

describe('PUT /v1/plans/{id} with two writers at once', () => {
  it.skipIf(ON_PGLITE)(
    'creates the plan once and answers the writer that lost the race 409, leaving the winner whole',
    async () => {
      // Hold the config-version row, which every change bumps just before it commits: the first
      // writer then waits there with its plan inserted, and the second, having also found no
      // plan, waits on that insert. Releasing the row lets the first commit and the second
      // meet the conflict: the path two real writers take when their reads interleave.
      const holder = new pg.Client({ connectionString: t.databaseUrl });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT version FROM config_version WHERE id = 1 FOR UPDATE');
        const writers = ['m-a', 'm-b'].map((model) =>
          admin('PUT', '/v1/plans/raced', { models: { default: model } }),
        );
        // Polled from another connection: inside the holder's transaction pg_stat_activity
        // would be one frozen snapshot.
        for (let waiting = 0, polls = 0; waiting < 2; polls++) {
          if (polls > 500) throw new Error('the two writers never both waited on a lock');
          await delay(20);
          const { rows } = await t.pool.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'`,
          );
          waiting = rows[0].n;
        }
        await holder.query('COMMIT');
        const replies = await Promise.all(writers);
        expect(replies.map((r) => r.status).sort()).toEqual([201, 409]);
        const loser = replies.find((r) => r.status === 409)!;
        expect(loser.body.error).toMatchObject({ code: 'CP_ERR_CONFLICT' });
        expect(loser.body.error.message).toContain('created concurrently; retry');
        const winner = replies.find((r) => r.status === 201)!;
        const stored = await admin('GET', '/v1/plans/raced');
        expect(stored.body.models).toEqual(winner.body.models);
        // One creation audited; the loser wrote nothing.
        expect((await auditOf('raced')).map((a) => a.action)).toEqual(['plan.create']);
        // The loser's retry replaces the plan, as documented.
        const retried = await admin('PUT', '/v1/plans/raced', { models: { default: 'm-retry' } });
        expect(retried.status).toBe(200);
      } finally {
        await holder.end();
      }
    },
  );

  it('never loses or half-applies a write when many writers PUT one plan at once', async () => {
    const models = Array.from({ length: 8 }, (_, i) => `m-${i}`);
    const replies = await Promise.all(
      models.map((model) => admin('PUT', '/v1/plans/crowded', { models: { default: model } })),
    );
    const statuses = replies.map((r) => r.status);
    // Exactly one creation; the rest replaced it or lost the creation race, never a 500.
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.every((s) => [200, 201, 409].includes(s))).toBe(true);
    // The audit log holds one record per successful write, and the plan is the last of them.
    const audit = await auditOf('crowded');
    expect(audit).toHaveLength(statuses.filter((s) => s !== 409).length);
    expect(audit.map((a) => a.action).filter((a) => a === 'plan.create')).toHaveLength(1);
    const stored = await admin('GET', '/v1/plans/crowded');
    expect(stored.body.models).toEqual(audit.at(-1)!.after.models);
  });
});

describe('usage totals', () => {
  it("are PostgreSQL's exact sums, not the parts' floats added (0.3, not 0.30000000000000004)", async () => {
    await admin('POST', '/v1/plans', { id: 'sums', models: { default: 'm' } });
    await admin('POST', '/v1/tenants', { id: 'sums', plan: 'sums' });
    const prices = { 'sum-a': { input: 1, output: 0 }, 'sum-b': { input: 1, output: 0 } };
    expect(
      (await admin('POST', '/v1/pricing/versions', { effective_from: '2026-10-01T00:00:00Z', prices }))
        .status,
    ).toBe(201);
    // $0.1 in one hour on one model, $0.2 in the next on another, two days ago (the route
    // books the last 7 days).
    const day = new Date(Date.now() - 2 * 86_400_000).toISOString().slice(0, 10);
    const next = new Date(Date.parse(day) + 86_400_000).toISOString().slice(0, 10);
    const events = [
      {
        ...usageEvent({
          tenant: 'sums',
          ts: `${day}T10:05:00Z`,
          model: 'sum-a',
          input: 100_000,
          output: 0,
        }),
      },
      {
        ...usageEvent({
          tenant: 'sums',
          ts: `${day}T11:05:00Z`,
          model: 'sum-b',
          input: 200_000,
          output: 0,
        }),
      },
    ];
    const booked = await call(cp.url, 'POST', '/v1/usage-events', { token: t.proxyToken, body: { events } });
    expect(booked.body.inserted).toBe(2);
    const range = `from=${day}T00:00:00Z&to=${next}T00:00:00Z`;
    const hourly = await admin('GET', `/v1/tenants/sums/usage?granularity=hour&${range}`);
    expect(hourly.body.buckets.map((b: { cost_usd: number }) => b.cost_usd)).toEqual([0.1, 0.2]);
    expect(hourly.body.total).toMatchObject({ requests: 2, input_tokens: 300_000, cost_usd: 0.3 });
    const byModel = await admin('GET', `/v1/tenants/sums/usage/by-model?${range}`);
    expect(byModel.body.models.map((m: { model: string }) => m.model)).toEqual(['sum-a', 'sum-b']);
    expect(byModel.body.total).toMatchObject({ requests: 2, cost_usd: 0.3 });
    // No usage: a total of zeros, not nulls.
    const none = await admin(
      'GET',
      '/v1/tenants/sums/usage?granularity=day&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z',
    );
    expect(none.body.buckets).toEqual([]);
    expect(none.body.total).toEqual({
      requests: 0,
      input_tokens: 0,
      output_tokens: 0,
      cached_input_tokens: 0,
      cache_write_tokens: 0,
      reasoning_tokens: 0,
      cost_usd: 0,
      unpriced_requests: 0,
    });
  });
});

describe('GET /v1/tenants/{id}/usage/by-model ranges', () => {
  const byModel = (query: string) => admin('GET', `/v1/tenants/acme/usage/by-model?${query}`);

  it('answers a range of exactly 31 days, and defaults to the last 24 hours', async () => {
    const ok = await byModel('from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({
      tenant: 'acme',
      from: '2026-01-01T00:00:00.000Z',
      to: '2026-02-01T00:00:00.000Z',
      models: [],
    });
    const defaulted = await admin('GET', '/v1/tenants/acme/usage/by-model');
    expect(defaulted.status).toBe(200);
    expect(Date.parse(defaulted.body.to) - Date.parse(defaulted.body.from)).toBe(86_400_000);
  });

  it.each([
    [
      '31 days and a second',
      'from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:01Z',
      'querystring.from',
      /at most 31 days/,
    ],
    ['a year', 'from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z', 'querystring.from', /at most 31 days/],
    ['from after to', 'from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z', 'querystring.from', /before "to"/],
    [
      'from equal to to',
      'from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z',
      'querystring.from',
      /before "to"/,
    ],
    [
      'from only, 40 days ago',
      `from=${new Date(Date.now() - 40 * 86_400_000).toISOString()}`,
      'querystring.from',
      /at most 31 days/,
    ],
    ['from in the future, to defaulted', 'from=2999-01-01T00:00:00Z', 'querystring.from', /before "to"/],
    ['February 30th', 'from=2026-02-30T00:00:00Z&to=2026-03-02T00:00:00Z', 'querystring.from', /date-time/],
    ['hour 25', 'from=2026-01-01T25:00:00Z&to=2026-01-02T00:00:00Z', 'querystring.from', /date-time/],
    ['a date without a time', 'from=2026-01-01&to=2026-01-02T00:00:00Z', 'querystring.from', /date-time/],
    [
      'a five-digit year',
      'from=10000-01-01T00:00:00Z&to=10000-01-02T00:00:00Z',
      'querystring.from',
      /date-time/,
    ],
    ['an expanded year beyond Date', 'to=%2B275761-01-01T00:00:00Z', 'querystring.to', /date-time/],
    ['a negative year', 'to=-000001-01-01T00:00:00Z', 'querystring.to', /date-time/],
    ['a number', 'from=1700000000000&to=1700000001000', 'querystring.from', /date-time/],
    ['empty', 'from=&to=2026-01-02T00:00:00Z', 'querystring.from', /date-time/],
    [
      'a repeated from',
      'from=2026-01-01T00:00:00Z&from=2026-01-02T00:00:00Z&to=2026-01-03T00:00:00Z',
      'querystring.from',
      /string/,
    ],
    [
      'script',
      `from=${encodeURIComponent('<script>')}&to=2026-01-02T00:00:00Z`,
      'querystring.from',
      /date-time/,
    ],
    [
      'an unknown parameter',
      'from=2026-01-01T00:00:00Z&granularity=day',
      'querystring.granularity',
      /granularity/,
    ],
  ])('refuses %s with 400, naming the field', async (_name, query, field, message) => {
    const reply = await byModel(query);
    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe('CP_ERR_BAD_REQUEST');
    expect(reply.body.error.details[0].field).toBe(field);
    expect(reply.body.error.message).toMatch(message);
    expect(reply.body.error.message).not.toContain('<script>');
  });

  it('takes the year 9999 and time-zone offsets at face value', async () => {
    const late = await byModel('from=9999-12-01T00:00:00Z&to=9999-12-31T23:59:59Z');
    expect(late.status).toBe(200);
    const offset = await byModel('from=2026-01-01T00:00:00%2B14:00&to=2026-01-01T00:00:00-12:00');
    expect(offset.status).toBe(200);
    expect(offset.body).toMatchObject({ from: '2025-12-31T10:00:00.000Z', to: '2026-01-01T12:00:00.000Z' });
  });

  it('answers 404 for a tenant that does not exist, and 400 for an ill-formed id, before reading', async () => {
    const range = 'from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z';
    expect((await admin('GET', `/v1/tenants/nobody/usage/by-model?${range}`)).status).toBe(404);
    expect((await admin('GET', `/v1/tenants/Bad%20Id/usage/by-model?${range}`)).status).toBe(400);
  });
});

describe('paths the router cannot read', () => {
  it('answers a malformed or over-long path in the API error shape, without echoing it', async () => {
    const long = `x${'y'.repeat(299)}`;
    const cases = [
      { path: `/v1/tenants/${long}`, status: 414 },
      { path: `/v1/tenants/${long}/keys`, status: 414 },
      { path: '/v1/tenants/%E0%A4%A', status: 400 },
      { path: '/v1/plans/%zz', status: 400 },
    ];
    // With the admin token and without one: either way the router refuses it before any route.
    for (const token of [t.adminToken, undefined])
      for (const { path, status } of cases) {
        const res = await call(cp.url, 'GET', path, { token });
        const label = `${path.slice(0, 24)} ${token ? 'admin' : 'anonymous'}`;
        expect([label, res.status]).toEqual([label, status]);
        expect([label, res.headers['content-type']]).toEqual([
          label,
          expect.stringContaining('application/json'),
        ]);
        const body = res.body as { error: { code: string; message: string } };
        expect([label, body.error.code]).toEqual([label, 'CP_ERR_BAD_REQUEST']);
        expect(body.error.message).not.toContain(long);
        expect(body.error.message).not.toContain('%');
        expect(JSON.stringify(body)).not.toContain('FST_ERR');
      }
  });

  it('counts them in the API latency histogram, as unmatched, by method and status', async () => {
    const count = async (method: string, status: number) => {
      const text = (await call(cp.url, 'GET', '/metrics')).body as string;
      const line = text
        .split('\n')
        .find(
          (l) =>
            l.startsWith('lanekeeper_cp_api_request_duration_seconds_count{') &&
            l.includes(`method="${method}"`) &&
            l.includes('route="unmatched"') &&
            l.includes(`status="${status}"`),
        );
      return line === undefined ? 0 : Number(line.split(' ').pop());
    };
    const before = {
      get400: await count('GET', 400),
      get414: await count('GET', 414),
      del400: await count('DELETE', 400),
    };
    await call(cp.url, 'GET', '/v1/plans/%zz');
    await call(cp.url, 'GET', '/v1/plans/%E0%A4%A', { token: t.adminToken });
    await call(cp.url, 'GET', `/v1/tenants/${'z'.repeat(101)}`);
    await call(cp.url, 'DELETE', '/v1/tenants/%G0', { token: t.adminToken });
    expect(await count('GET', 400)).toBe(before.get400 + 2);
    expect(await count('GET', 414)).toBe(before.get414 + 1);
    expect(await count('DELETE', 400)).toBe(before.del400 + 1);
    // The path itself is never a label value.
    const text = (await call(cp.url, 'GET', '/metrics')).body as string;
    expect(text).not.toContain('%zz');
    expect(text).not.toContain('zzzzzzzzzz');
  });
});
