/**
 * The control plane without Redis (REDIS_URL unset): it is ready, proxies get config by
 * polling GET /v1/config, the console signs in (sessions in memory), and usage arrives over
 * POST /v1/usage-events, booked once however often a batch is posted. Hostile bodies and
 * the wrong tokens are refused with a clear error.
 */
import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../src/main.js';
import { call } from './helpers/http.js';
import { createTestEnv, type TestEnv } from './helpers/test-env.js';
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
  t = await createTestEnv({ extra: { REDIS_URL: '' } });
  cp = await startControlPlane(t.env);
  await call(cp.url, 'POST', '/v1/plans', {
    token: t.adminToken,
    body: { id: 'free', models: { default: 'm' } },
  });
  await call(cp.url, 'POST', '/v1/tenants', { token: t.adminToken, body: { id: 'acme', plan: 'free' } });
});
afterAll(async () => {
  await cp?.close();
  await t?.dispose();
});

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

  it('books an event with a fresh request id after the refusals', async () => {
    const event = {
      ...usageEvent({ tenant: 'acme', ts: new Date().toISOString(), model: 'm', input: 1, output: 1 }),
      request_id: randomUUID(),
    };
    expect(await post({ events: [event] })).toMatchObject({ status: 200, body: { inserted: 1 } });
    expect(await ledgerRows('acme')).toBe(3);
  });
});
