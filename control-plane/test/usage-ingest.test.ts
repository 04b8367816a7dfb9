/**
 * The control plane without Redis (REDIS_URL unset): it is ready, proxies get config by
 * polling GET /v1/config, the console signs in (sessions in memory), and usage arrives over
 * POST /v1/usage-events, booked once however often a batch is posted. Hostile bodies and
 * the wrong tokens are refused with a clear error.
 */
import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookEvents } from '../src/ledger/book-events.js';
import type { RunningControlPlane } from '../src/main.js';
import { call } from './helpers/http.js';
import { startSeeded, stopSeeded } from './helpers/seeded.js';
import type { TestEnv } from './helpers/test-env.js';
import { usageEvent } from './helpers/usage-event.js';

let t: TestEnv;
let cp: RunningControlPlane;

/** Posts with the proxy token, another token, or (null) none. */
const post = (body: unknown, token: string | null = t.proxyToken) =>
  call(cp.url, 'POST', '/v1/usage-events', { ...(token === null ? {} : { token }), body });
const ledgerRows = async (tenant: string) =>
  (await t.pool.query(`SELECT count(*)::int AS n FROM usage_ledger WHERE tenant_id = $1`, [tenant])).rows[0]
    .n;

beforeAll(async () => {
  // An empty REDIS_URL means unset, as in a shell or a compose file.
  ({ t, cp } = await startSeeded({ extra: { REDIS_URL: '' }, tenants: ['acme'] }));
});
afterAll(() => stopSeeded({ t, cp }));

describe('a control plane without Redis', () => {
  it('is ready, and says Redis is not configured rather than down', async () => {
    expect(await call(cp.url, 'GET', '/readyz')).toMatchObject({
      status: 200,
      body: { ready: true, postgres: true, redis: 'not configured' },
    });
  });

  it('serves config changes to a polling proxy', async () => {
    const before = await call(cp.url, 'GET', '/v1/config', { token: t.proxyToken });
    expect(before.status).toBe(200);
    expect(before.body.tenants.map((x: { id: string }) => x.id)).toContain('acme');
    await call(cp.url, 'POST', '/v1/tenants', { token: t.adminToken, body: { id: 'beta', plan: 'free' } });
    const after = await call(cp.url, 'GET', '/v1/config', {
      token: t.proxyToken,
      headers: { 'if-none-match': String(before.headers.etag) },
    });
    expect(after.status).toBe(200);
    expect(after.body.version).toBeGreaterThan(before.body.version);
    expect(after.body.tenants.map((x: { id: string }) => x.id)).toContain('beta');
  });

  it('signs in to the console with sessions kept in memory', async () => {
    const res = await request(`${cp.url}/console/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: t.adminToken }).toString(),
    });
    await res.body.text();
    expect(res.statusCode).toBe(303);
    const cookie = String(res.headers['set-cookie']).split(';')[0]!;
    const tenants = await call(cp.url, 'GET', '/console/api/v1/tenants', { headers: { cookie } });
    expect(tenants.status).toBe(200);
    expect(JSON.stringify(tenants.body)).toContain('"acme"');
  });

  it('answers the live current-hour counters with a clear error: there are none', async () => {
    const r = await call(cp.url, 'GET', '/v1/tenants/acme/usage/current-hour', { token: t.adminToken });
    expect(r.status).toBe(502);
    expect(r.body.error.message).toContain('without Redis');
  });
});

describe('POST /v1/usage-events', () => {
  it('books a batch once, even when it is posted twice', async () => {
    const ts = new Date().toISOString();
    const events = [
      usageEvent({ tenant: 'acme', ts, model: 'm', input: 10, output: 5 }),
      usageEvent({ tenant: 'acme', ts, model: 'm', input: 7, output: 3 }),
    ];
    const first = await post({ events });
    expect(first).toMatchObject({ status: 200, body: { inserted: 2, duplicates: 0 } });
    const again = await post({ events });
    expect(again).toMatchObject({ status: 200, body: { inserted: 0, duplicates: 2 } });
    expect(await ledgerRows('acme')).toBe(2);
    const usage = await call(cp.url, 'GET', '/v1/tenants/acme/usage', { token: t.adminToken });
    expect(usage.status).toBe(200);
    expect(JSON.stringify(usage.body)).toMatch(/"input_tokens":17/);
  });

  it('refuses a call without a token, and one with the admin token', async () => {
    const event = usageEvent({
      tenant: 'acme',
      ts: new Date().toISOString(),
      model: 'm',
      input: 1,
      output: 1,
    });
    const none = await post({ events: [event] }, null);
    expect(none.status).toBe(401);
    expect(none.body.error.message).toContain('missing bearer token');
    const admin = await post({ events: [event] }, t.adminToken);
    expect(admin.status).toBe(401);
    expect(admin.body.error.message).toContain('wrong proxy token');
    expect(await ledgerRows('acme')).toBe(2);
  });

  it.each([
    ['a body that is not an object', [1, 2], /body/],
    ['no events', {}, /events/],
    ['an empty batch', { events: [] }, /events/],
    ['events that are not objects', { events: ['x'] }, /events/],
    ['an unknown top-level field', { events: [], tenant: 'acme' }, /./],
    ['an event missing its fields', { events: [{ v: 1, request_id: 'r-1' }] }, /events\[0\]\./],
  ])('refuses %s with 400', async (_name, body, message) => {
    const r = await post(body);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('CP_ERR_BAD_REQUEST');
    expect(r.body.error.message).toMatch(message);
  });

  it('refuses a batch of more than 500 events, and a body over 1 MiB', async () => {
    const ts = new Date().toISOString();
    const many = Array.from({ length: 501 }, () =>
      usageEvent({ tenant: 'acme', ts, model: 'm', input: 1, output: 1 }),
    );
    const tooMany = await post({ events: many });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.message).toMatch(/events.*500/);
    const huge = await call(cp.url, 'POST', '/v1/usage-events', {
      token: t.proxyToken,
      rawBody: JSON.stringify({ events: [{ pad: 'x'.repeat(1100 * 1024) }] }),
    });
    expect(huge.status).toBe(413);
    expect(await ledgerRows('acme')).toBe(2);
  });

  it.each([`acme'; DROP TABLE tenants; --`, 'ACME', '../acme', 'acme\u0000', '*'])(
    'refuses the tenant id %j and books nothing of its batch',
    async (tenant) => {
      const ts = new Date().toISOString();
      const good = usageEvent({ tenant: 'acme', ts, model: 'm', input: 1, output: 1 });
      const bad = { ...usageEvent({ tenant: 'acme', ts, model: 'm', input: 1, output: 1 }), tenant };
      const r = await post({ events: [good, bad] });
      expect(r.status).toBe(400);
      expect(r.body.error.message).toContain('events[1].tenant');
      expect(await ledgerRows('acme')).toBe(2);
      expect((await t.pool.query(`SELECT count(*)::int AS n FROM tenants`)).rows[0].n).toBe(2);
    },
  );

  // The proxy token sits on every proxy: leaked, one event booked $4,000,000 into a bill of
  // March of the year before. A proxy posts within seconds; far older or ahead is kept aside.
  it('keeps an event dated over 7 days ago or over 5 minutes ahead in usage_rejects, unbooked', async () => {
    const day = 86_400_000;
    const at = (ms: number) => new Date(Date.now() + ms).toISOString();
    const events = [
      usageEvent({ tenant: 'acme', ts: '2025-03-15T12:00:00Z', model: 'm', input: 2e9, output: 2e9 }),
      usageEvent({ tenant: 'acme', ts: at(-7 * day - 60_000), model: 'm', input: 1, output: 1 }),
      usageEvent({ tenant: 'acme', ts: at(10 * 60_000), model: 'm', input: 1, output: 1 }),
      usageEvent({ tenant: 'acme', ts: at(-6 * day), model: 'm', input: 4, output: 4 }),
    ];
    const before = await ledgerRows('acme');
    const res = await post({ events });
    expect(res).toMatchObject({ status: 200, body: { inserted: 1, rejected: 3 } });
    expect(res.body.rejects.map((r: { index: number }) => r.index)).toEqual([0, 1, 2]);
    expect(res.body.rejects[0].reason).toContain('the last 7 days');
    expect(await ledgerRows('acme')).toBe(before + 1);
    const kept = await t.pool.query(
      `SELECT count(*)::int AS n FROM usage_rejects WHERE stream_id = ANY($1)`,
      [events.slice(0, 3).map((e) => `http:${e.request_id}`)],
    );
    expect(kept.rows[0].n).toBe(3);
  });

  it('books an event with a fresh request id after the refusals', async () => {
    const event = {
      ...usageEvent({ tenant: 'acme', ts: new Date().toISOString(), model: 'm', input: 1, output: 1 }),
      request_id: randomUUID(),
    };
    expect(await post({ events: [event] })).toMatchObject({ status: 200, body: { inserted: 1 } });
    expect(await ledgerRows('acme')).toBe(4);
  });
});

describe('POST /v1/usage-events with an event PostgreSQL cannot store', () => {
  // Strings JSON allows and PostgreSQL refuses (text and jsonb refuse U+0000, jsonb an unpaired
  // surrogate), each a prefix, a suffix and alone so no position is missed.
  const HOSTILE: [string, string][] = [
    ['U+0000', 'gpt-4o\u0000'],
    ['a lone high surrogate', 'x\ud800'],
    ['a lone low surrogate', '\udc00y'],
  ];
  // Every string field the schema leaves free-form; the others are refused by the schema below.
  const FREE_TEXT = ['plan', 'dialect', 'endpoint', 'model', 'model_requested', 'upstream_model'] as const;
  const cases = FREE_TEXT.flatMap((field, f) =>
    HOSTILE.map(([name, value], h) => [field, name, value, `hostile-d${f}${h}`] as const),
  );
  const ts = new Date().toISOString();
  const event = (tenant: string) => usageEvent({ tenant, ts, model: 'm', input: 3, output: 2 });
  const booked = async (ids: string[]) =>
    (
      await t.pool.query(`SELECT request_id FROM usage_ledger WHERE request_id = ANY($1) ORDER BY 1`, [ids])
    ).rows.map((r) => r.request_id as string);
  /** What the ledger stores for text PostgreSQL cannot hold: the characters JSON-escaped. */
  const escaped = (text: string) => JSON.stringify(text).slice(1, -1);

  it.each(cases)(
    'books a batch whose event has %s holding %s, that event with the text escaped, once',
    async (field, _name, value, tenant) => {
      const good = [event('hostile-a'), event('hostile-b'), event('hostile-c')];
      const bad = { ...event(tenant), [field]: value };
      const batch = [good[0], bad, good[1], good[2]];
      const first = await post({ events: batch });
      expect(first.status).toBe(200);
      expect(first.body).toEqual({ inserted: 4, duplicates: 0, erased: 0, rejected: 0, rejects: [] });
      // The proxy re-sends a batch whose reply it lost: nothing is booked twice.
      const again = await post({ events: batch });
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ inserted: 0, duplicates: 4, rejected: 0 });
      const goodIds = good.map((e) => e.request_id);
      expect(await booked(goodIds)).toEqual([...goodIds].sort());
      // The usage is real: billed to its tenant, the odd text kept readable.
      expect(await ledgerRows(tenant)).toBe(1);
      const row = (await t.pool.query(`SELECT * FROM usage_ledger WHERE tenant_id = $1`, [tenant])).rows[0];
      expect(row[field]).toBe(escaped(value));
      expect(row.input_tokens).toBe(3);
    },
  );

  it('books the rest of a batch with an event out of a column range, which PostgreSQL alone refuses', async () => {
    const good = event('hostile-a');
    const huge = { ...event('hostile-b'), latency_ms: 1e12 };
    const r = await post({ events: [huge, good] });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      inserted: 1,
      rejected: 1,
      rejects: [{ index: 0, request_id: huge.request_id }],
    });
    expect(r.body.rejects[0].reason).toContain('refused by PostgreSQL');
    expect(await booked([good.request_id, huge.request_id])).toEqual([good.request_id]);
  });

  it('books every hostile event of one batch, each once', async () => {
    const good = event('hostile-a');
    const bad = HOSTILE.map(([, value]) => ({ ...event('hostile-b'), upstream_model: value }));
    const r = await post({ events: [...bad, good] });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ inserted: 4, rejected: 0 });
    expect(await booked([good.request_id, ...bad.map((e) => e.request_id)])).toHaveLength(4);
  });

  it.each(
    ['request_id', 'tenant', 'ts', 'provenance', 'api_key_sha256'].flatMap((field) =>
      HOSTILE.map(([name, value]) => [field, name, value] as const),
    ),
  )(
    'refuses the whole batch with 400 when %s, which the schema constrains, has %s',
    async (field, _n, value) => {
      const good = event('hostile-a');
      const r = await post({ events: [good, { ...event('hostile-b'), [field]: value }] });
      expect(r.status).toBe(400);
      expect(r.body.error.message).toContain(`events[1].${field}`);
      expect(await booked([good.request_id])).toEqual([]);
    },
  );

  // An id escaped for storage could equal another request's literal id, which would then be
  // taken for a duplicate and never billed: ids are visible ASCII, so none is escaped.
  it.each([
    ['request_id', '', 'events[0].request_id'],
    ['request_id', 'id with space', 'events[0].request_id'],
    ['request_id', 'x'.repeat(201), 'events[0].request_id'],
    ['tenant', 'ACME/../x', 'events[0].tenant'],
    ['tenant', 'a'.repeat(64), 'events[0].tenant'],
    ['status', -5, 'events[0].status'],
    // Past the proxy's own bound (it books 10^12 at most): 2^53 overflowed the hourly rollup.
    ['input_tokens', 1e12 + 1, 'events[0].input_tokens'],
    ['output_tokens', Number.MAX_SAFE_INTEGER, 'events[0].output_tokens'],
    ['reasoning_tokens', 2 ** 60, 'events[0].reasoning_tokens'],
  ] as const)('refuses %s %j with 400 naming it', async (field, value, named) => {
    const r = await post({ events: [{ ...event('hostile-a'), [field]: value }] });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain(named);
  });

  it('rejects on the stream what it refuses over HTTP: a tenant no tenant id can be, a negative status', async () => {
    const entries = [
      { ...event('hostile-a'), tenant: 'ACME/../x' },
      { ...event('hostile-a'), status: -5 },
      { ...event('hostile-a'), request_id: 'rid\u0000' },
    ].map((e, i) => ({ id: `9-${i}`, fields: ['event', JSON.stringify(e)] }));
    const result = await bookEvents(t.pool, entries);
    expect(result).toMatchObject({ inserted: 0, rejected: 3 });
    const kept = await t.pool.query(
      `SELECT stream_id FROM usage_rejects WHERE stream_id LIKE '9-%' ORDER BY 1`,
    );
    expect(kept.rows.map((r) => r.stream_id)).toEqual(['9-0', '9-1', '9-2']);
  });

  it('books figures up to 10^12 tokens, the most the proxy ever sends', async () => {
    const big = {
      ...event('hostile-a'),
      request_id: `max-${randomUUID()}`,
      input_tokens: 1e12,
      output_tokens: 1e12,
    };
    const r = await post({ events: [big] });
    expect(r.status).toBe(200);
    expect(r.body.inserted).toBe(1);
  });

  it('books an id that reads like an escape as the text it is, apart from any other', async () => {
    const literal = { ...event('hostile-a'), request_id: `rid\\u0000-${Date.now()}` };
    const r = await post({ events: [literal] });
    expect(r.body).toMatchObject({ inserted: 1, duplicates: 0 });
    expect(await booked([literal.request_id])).toEqual([literal.request_id]);
  });
});
