/**
 * The admin API end to end over raw HTTP against real PostgreSQL and Redis: onboarding
 * (plan, tenant, key), what /v1/config then serves, bad input refused with the field named
 * and nothing written, and 401 on every documented route without the right token.
 */
import { createHash } from 'node:crypto';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INCARNATION_PATTERN } from '@lanekeeper/contract';
import { startControlPlane } from '../src/main.js';
import { call } from './helpers/http.js';
import { createTestEnv, type TestEnv } from './helpers/test-env.js';
import { startFakeQdrant, type FakeQdrant } from '../../test/fakes/qdrant/fake-qdrant.js';

let t: TestEnv;
let qdrant: FakeQdrant;
let cp: { url: string; close(): Promise<void> };

beforeAll(async () => {
  // The in-repo Qdrant test server, so the collection routes are mounted and checked too.
  qdrant = await startFakeQdrant();
  t = await createTestEnv({ extra: { QDRANT_URL: qdrant.url } });
  cp = await startControlPlane(t.env);
});
afterAll(async () => {
  await cp?.close();
  await t?.dispose();
  await qdrant?.close();
});

const admin = (method: string, path: string, body?: unknown) =>
  call(cp.url, method, path, { token: t.adminToken, body });
const proxyConfig = (headers: Record<string, string> = {}) =>
  call(cp.url, 'GET', '/v1/config', { token: t.proxyToken, headers });

/** Row counts of every table an API call could write. */
async function counts() {
  const tables = ['plans', 'tenants', 'api_keys', 'price_versions', 'audit_log', 'erasure_jobs'];
  const out: Record<string, number> = {};
  for (const table of tables)
    out[table] = (await t.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n;
  out.version = (await t.pool.query(`SELECT version FROM config_version`)).rows[0].version;
  return out;
}

describe('onboarding through the admin API', () => {
  it('creates a plan, a tenant and a key, and serves them to proxies in the YAML shapes', async () => {
    const plan = await admin('POST', '/v1/plans', {
      id: 'free',
      models: { default: 'gpt-4o-mini' },
      rate_limits: { requests_per_minute: 10 },
    });
    expect(plan.status).toBe(201);
    expect(plan.body).toMatchObject({ id: 'free', models: { default: 'gpt-4o-mini' }, features: [] });

    const tenant = await admin('POST', '/v1/tenants', { id: 'acme', plan: 'free' });
    expect(tenant.status).toBe(201);
    expect(tenant.body).toMatchObject({ id: 'acme', plan: 'free', status: 'active', overrides: {} });

    const key = await admin('POST', '/v1/tenants/acme/keys');
    expect(key.status).toBe(201);
    expect(key.body.key).toMatch(/^lk_[A-Za-z0-9_-]{43,}$/);
    const sha = createHash('sha256').update(key.body.key).digest('hex');

    const stored = await t.pool.query(`SELECT * FROM api_keys WHERE id = $1`, [key.body.id]);
    expect(stored.rows[0].sha256).toBe(sha);
    expect(JSON.stringify(stored.rows[0])).not.toContain(key.body.key);

    const listed = await admin('GET', '/v1/tenants/acme/keys');
    expect(listed.body.items).toEqual([
      {
        id: key.body.id,
        prefix: key.body.key.slice(0, 11),
        created_at: expect.any(String),
        last_used_at: null,
        revoked_at: null,
      },
    ]);

    const config = await proxyConfig();
    expect(config.status).toBe(200);
    expect(config.body.plans).toEqual({
      free: {
        models: { default: 'gpt-4o-mini' },
        rate_limits: { requests_per_minute: 10 },
        features: [],
        custom_prompts: {},
        enforce_mid_stream: false,
        max_output_tokens: 4096,
        allow_paths: [],
      },
    });
    expect(config.body.tenants).toEqual([
      {
        id: 'acme',
        plan: 'free',
        status: 'active',
        api_key_sha256: [sha],
        overrides: {},
        incarnation: expect.stringMatching(INCARNATION_PATTERN),
      },
    ]);
    // The version and a digest of the bytes (its templates included).
    expect(config.headers.etag).toMatch(new RegExp(`^"${config.body.version}-[0-9a-f]{16}"$`));
    expect(config.body.vector.templates.map((t: { name: string }) => t.name)).toContain('documents');
  });

  it('answers 304 to a matching If-None-Match and a new ETag after a change', async () => {
    const first = await proxyConfig();
    const same = await proxyConfig({ 'if-none-match': first.headers.etag as string });
    expect(same.status).toBe(304);

    await admin('PATCH', '/v1/plans/free', { rate_limits: { requests_per_minute: 20 } });
    const changed = await proxyConfig({ 'if-none-match': first.headers.etag as string });
    expect(changed.status).toBe(200);
    expect(changed.body.version).toBeGreaterThan(first.body.version);
    expect(changed.body.plans.free.rate_limits).toEqual({ requests_per_minute: 20 });
  });

  it('drops a revoked key from the config and keeps it listed as revoked', async () => {
    const key = await admin('POST', '/v1/tenants/acme/keys');
    const sha = createHash('sha256').update(key.body.key).digest('hex');
    expect((await proxyConfig()).body.tenants[0].api_key_sha256).toContain(sha);

    const revoked = await admin('DELETE', `/v1/tenants/acme/keys/${key.body.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked_at).toEqual(expect.any(String));
    expect((await proxyConfig()).body.tenants[0].api_key_sha256).not.toContain(sha);
    const listed = await admin('GET', '/v1/tenants/acme/keys');
    expect(listed.body.items.find((k: { id: string }) => k.id === key.body.id).revoked_at).not.toBeNull();
  });

  it('suspends a tenant and moves it between plans with PATCH', async () => {
    await admin('POST', '/v1/plans', { id: 'pro', models: { default: 'gpt-4o' }, features: ['rag'] });
    const patched = await admin('PATCH', '/v1/tenants/acme', { plan: 'pro', status: 'suspended' });
    expect(patched.status).toBe(200);
    expect((await proxyConfig()).body.tenants[0]).toMatchObject({ plan: 'pro', status: 'suspended' });
    await admin('PATCH', '/v1/tenants/acme', { status: 'active' });
    expect((await admin('GET', '/v1/tenants/acme')).body.status).toBe('active');
  });

  it('refuses to delete a plan while a tenant uses it, and deletes it once unused', async () => {
    await admin('PATCH', '/v1/tenants/acme', { plan: 'free' });
    const inUse = await admin('DELETE', '/v1/plans/free');
    expect(inUse.status).toBe(409);
    expect(inUse.body.error.message).toContain('used by 1 tenant');
    expect((await admin('GET', '/v1/plans/free')).status).toBe(200);
    expect((await admin('DELETE', '/v1/plans/pro')).status).toBe(204);
    expect((await admin('GET', '/v1/plans/pro')).status).toBe(404);
  });

  it('pages through tenants with limit and cursor', async () => {
    for (const id of ['t-1', 't-2', 't-3']) await admin('POST', '/v1/tenants', { id, plan: 'free' });
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const reply: { body: { items: { id: string }[]; next_cursor: string | null } } = await admin(
        'GET',
        `/v1/tenants?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(reply.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...reply.body.items.map((i) => i.id));
      cursor = reply.body.next_cursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(['acme', 't-1', 't-2', 't-3']);
  });

  it('records every change in the audit log with actor, before and after', async () => {
    await call(cp.url, 'PATCH', '/v1/tenants/t-1', {
      token: t.adminToken,
      body: { status: 'suspended' },
      headers: { 'x-lanekeeper-actor': 'alice@example.com' },
    });
    const audit = await admin('GET', '/v1/audit?limit=1');
    expect(audit.body.items[0]).toMatchObject({
      actor: 'admin:alice@example.com',
      action: 'tenant.update',
      resource: 'tenants/t-1',
      before: { status: 'active' },
      after: { status: 'suspended' },
    });
    // The name as declared finds the change, as the whole actor does; another name does not.
    for (const actor of ['alice%40example.com', 'admin%3Aalice%40example.com'])
      expect(
        (await admin('GET', `/v1/audit?actor=${actor}`)).body.items.map((i: { actor: string }) => i.actor),
      ).toEqual(['admin:alice@example.com']);
    expect((await admin('GET', '/v1/audit?actor=alice')).body.items).toEqual([]);
    expect((await admin('GET', '/v1/audit?actor=%27%20OR%201%3D1--')).body.items).toEqual([]);
    const keyAudit = await admin('GET', '/v1/audit?action=key.create');
    expect(keyAudit.body.items.length).toBe(2);
    expect(JSON.stringify(keyAudit.body)).not.toMatch(/lk_[A-Za-z0-9_-]{43}/);
  });

  it("refuses an API caller signing its change as the web console's, and writes nothing", async () => {
    const before = (await admin('GET', '/v1/audit?limit=1')).body.items[0].id;
    // An invisible or non-ASCII character (latin1 on the wire) would pass for "console" in
    // the audit page; an over-long name is refused rather than cut.
    for (const actor of [
      'console',
      '  console  ',
      'CONSOLE',
      'console\u00ad',
      '\u00adconsole',
      'cons\u00f3le',
      'a'.repeat(201),
    ]) {
      const reply = await call(cp.url, 'PATCH', '/v1/tenants/t-1', {
        token: t.adminToken,
        body: { status: 'active' },
        headers: { 'x-lanekeeper-actor': actor },
      });
      expect([reply.status, reply.body.error.code]).toEqual([400, 'CP_ERR_BAD_REQUEST']);
      expect(reply.body.error.message).toContain('x-lanekeeper-actor');
    }
    // Without the token the answer is still 401: nothing is said about the header.
    const anonymous = await call(cp.url, 'GET', '/v1/tenants', {
      headers: { 'x-lanekeeper-actor': 'console' },
    });
    expect(anonymous.status).toBe(401);
    expect((await admin('GET', '/v1/audit?limit=1')).body.items[0].id).toBe(before);
    // Inner spaces, punctuation and 200 characters are a name.
    for (const actor of ['Alice Smith <alice@example.com>', 'b'.repeat(200)]) {
      const signed = await call(cp.url, 'PATCH', '/v1/tenants/t-1', {
        token: t.adminToken,
        body: { status: 'suspended' },
        headers: { 'x-lanekeeper-actor': actor },
      });
      expect(signed.status).toBe(200);
      expect((await admin('GET', '/v1/audit?limit=1')).body.items[0].actor).toBe(`admin:${actor}`);
    }
    expect((await admin('GET', '/v1/tenants/t-1')).body.status).toBe('suspended');
  });

  it('versions the price table and serves the version in force', async () => {
    const past = await admin('POST', '/v1/pricing/versions', {
      effective_from: '2026-01-01T00:00:00Z',
      prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6, cached_input: 0.075 } },
    });
    expect(past.status).toBe(201);
    await admin('POST', '/v1/pricing/versions', {
      effective_from: '2999-01-01T00:00:00Z',
      prices: { 'gpt-4o-mini': { input: 1, output: 2 } },
    });
    const pricing = await admin('GET', '/v1/pricing');
    expect(pricing.body.current.id).toBe(past.body.id);
    expect(pricing.body.versions).toHaveLength(2);
    expect((await proxyConfig()).body.pricing).toEqual({
      'gpt-4o-mini': { input: 0.15, output: 0.6, cached_input: 0.075 },
    });
  });
});

describe('bad input', () => {
  const long = 'a'.repeat(64);
  const cases: {
    name: string;
    method: string;
    path: string;
    body?: unknown;
    raw?: string;
    status: number;
    field?: string;
  }[] = [
    {
      name: 'an unknown field in a plan',
      method: 'POST',
      path: '/v1/plans',
      body: { id: 'p1', models: { default: 'm' }, colour: 'red' },
      status: 400,
      field: 'body.colour',
    },
    {
      name: 'an unknown nested field in a plan',
      method: 'POST',
      path: '/v1/plans',
      body: { id: 'p1', models: { default: 'm' }, rate_limits: { rpm: 1 } },
      status: 400,
      field: 'body.rate_limits.rpm',
    },
    {
      name: 'a string where a number belongs',
      method: 'POST',
      path: '/v1/plans',
      body: { id: 'p1', models: { default: 'm' }, rate_limits: { requests_per_minute: '10' } },
      status: 400,
      field: 'body.rate_limits.requests_per_minute',
    },
    {
      name: 'a plan without models.default',
      method: 'POST',
      path: '/v1/plans',
      body: { id: 'p1', models: { fast: 'm' } },
      status: 400,
      field: 'body.models',
    },
    {
      name: 'a plan without models',
      method: 'POST',
      path: '/v1/plans',
      body: { id: 'p1' },
      status: 400,
      field: 'body.models',
    },
    {
      name: 'an over-long tenant id',
      method: 'POST',
      path: '/v1/tenants',
      body: { id: long, plan: 'free' },
      status: 400,
      field: 'body.id',
    },
    {
      name: 'an ill-formed tenant id',
      method: 'POST',
      path: '/v1/tenants',
      body: { id: 'Acme_Corp', plan: 'free' },
      status: 400,
      field: 'body.id',
    },
    {
      name: 'a tenant id with a path separator',
      method: 'POST',
      path: '/v1/tenants',
      body: { id: 'a/b', plan: 'free' },
      status: 400,
      field: 'body.id',
    },
    {
      name: 'a plan that does not exist',
      method: 'POST',
      path: '/v1/tenants',
      body: { id: 'newco', plan: 'nope' },
      status: 400,
      field: 'body.plan',
    },
    {
      name: 'an unknown tenant field',
      method: 'POST',
      path: '/v1/tenants',
      body: { id: 'newco', plan: 'free', owner: 'x' },
      status: 400,
      field: 'body.owner',
    },
    {
      name: 'an unknown status',
      method: 'POST',
      path: '/v1/tenants',
      body: { id: 'newco', plan: 'free', status: 'paused' },
      status: 400,
      field: 'body.status',
    },
    {
      name: 'an unknown override',
      method: 'POST',
      path: '/v1/tenants',
      body: { id: 'newco', plan: 'free', overrides: { rate_limits: { rpm: 1 } } },
      status: 400,
      field: 'body.overrides.rate_limits.rpm',
    },
    {
      name: 'a wrong type in a tenant',
      method: 'POST',
      path: '/v1/tenants',
      body: { id: 42, plan: 'free' },
      status: 400,
      field: 'body.id',
    },
    {
      name: 'a duplicate tenant',
      method: 'POST',
      path: '/v1/tenants',
      body: { id: 'acme', plan: 'free' },
      status: 409,
    },
    {
      name: 'a move to a plan that does not exist',
      method: 'PATCH',
      path: '/v1/tenants/acme',
      body: { plan: 'nope' },
      status: 400,
      field: 'body.plan',
    },
    {
      name: 'an empty PATCH',
      method: 'PATCH',
      path: '/v1/tenants/acme',
      body: {},
      status: 400,
      field: 'body',
    },
    {
      name: 'a PATCH of an unknown tenant',
      method: 'PATCH',
      path: '/v1/tenants/ghost',
      body: { status: 'suspended' },
      status: 404,
    },
    {
      name: 'an ill-formed tenant id in the path',
      method: 'GET',
      path: '/v1/tenants/Not_Valid',
      status: 400,
      field: 'params.id',
    },
    {
      name: 'an over-long tenant id in the path',
      method: 'GET',
      path: `/v1/tenants/${long}`,
      status: 400,
      field: 'params.id',
    },
    { name: 'a key for an unknown tenant', method: 'POST', path: '/v1/tenants/ghost/keys', status: 404 },
    {
      name: 'revoking an unknown key',
      method: 'DELETE',
      path: '/v1/tenants/acme/keys/key_nope',
      status: 404,
    },
    { name: 'an unknown tenant erased', method: 'DELETE', path: '/v1/tenants/ghost', status: 404 },
    {
      name: 'a price version with a bad date',
      method: 'POST',
      path: '/v1/pricing/versions',
      body: { effective_from: 'tomorrow', prices: { m: { input: 1, output: 1 } } },
      status: 400,
      field: 'body.effective_from',
    },
    {
      name: 'a negative price',
      method: 'POST',
      path: '/v1/pricing/versions',
      body: { effective_from: '2026-01-01T00:00:00Z', prices: { m: { input: -1, output: 1 } } },
      status: 400,
      field: 'body.prices.m.input',
    },
    {
      // Its costs would overflow a double: shown as null ("no cost") in the usage API.
      name: 'a price past a million USD per million tokens',
      method: 'POST',
      path: '/v1/pricing/versions',
      body: { effective_from: '2026-01-01T00:00:00Z', prices: { m: { input: 1, output: 1e300 } } },
      status: 400,
      field: 'body.prices.m.output',
    },
    { name: 'malformed JSON', method: 'POST', path: '/v1/tenants', raw: '{"id": "x",', status: 400 },
    {
      name: 'a limit of zero',
      method: 'GET',
      path: '/v1/tenants?limit=0',
      status: 400,
      field: 'querystring.limit',
    },
    {
      name: 'a cursor this API never issued',
      method: 'GET',
      path: '/v1/tenants?cursor=garbage',
      status: 400,
      field: 'querystring.cursor',
    },
    {
      name: 'an unknown granularity',
      method: 'GET',
      path: '/v1/tenants/acme/usage?granularity=week',
      status: 400,
      field: 'querystring.granularity',
    },
    {
      name: 'an unknown query parameter',
      method: 'GET',
      path: '/v1/tenants?sort=id',
      status: 400,
      field: 'querystring.sort',
    },
  ];

  it.each(cases)('refuses $name with $status, naming the field, and writes nothing', async (c) => {
    const before = await counts();
    const reply = await call(cp.url, c.method, c.path, { token: t.adminToken, body: c.body, rawBody: c.raw });
    expect(reply.status).toBe(c.status);
    expect(reply.body.error.message).toEqual(expect.any(String));
    expect(reply.body.error.message.length).toBeGreaterThan(5);
    if (c.field) {
      expect(reply.body.error.details.map((d: { field: string }) => d.field)).toContain(c.field);
    }
    expect(await counts()).toEqual(before);
  });
});

describe('authentication', () => {
  async function everyRoute(): Promise<{ method: string; path: string }[]> {
    const doc = (await call(cp.url, 'GET', '/openapi.json')).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    return Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => ({
        method: method.toUpperCase(),
        path: path.replace('{id}', 'acme').replace('{keyId}', 'key_x').replace('{name}', 'documents'),
      })),
    );
  }

  it('documents every admin route in the OpenAPI document', async () => {
    const routes = (await everyRoute()).map((r) => `${r.method} ${r.path}`);
    for (const expected of [
      'POST /v1/plans',
      'GET /v1/plans',
      'GET /v1/plans/acme',
      'PATCH /v1/plans/acme',
      'DELETE /v1/plans/acme',
      'POST /v1/tenants',
      'GET /v1/tenants',
      'GET /v1/tenants/acme',
      'PATCH /v1/tenants/acme',
      'DELETE /v1/tenants/acme',
      'POST /v1/tenants/acme/keys',
      'GET /v1/tenants/acme/keys',
      'DELETE /v1/tenants/acme/keys/key_x',
      'GET /v1/pricing',
      'POST /v1/pricing/versions',
      'GET /v1/tenants/acme/usage',
      'GET /v1/tenants/acme/usage/current-hour',
      'GET /v1/audit',
      'GET /v1/config',
      'GET /v1/tenants/acme/collections',
      'DELETE /v1/tenants/acme/collections/documents',
    ]) {
      expect(routes).toContain(expected);
    }
  });

  it('documents the 401 and the 429 a token route answers before its handler, as it sends them', async () => {
    type Response = {
      headers?: Record<string, unknown>;
      content?: { 'application/json'?: { schema: object } };
    };
    const doc = (await call(cp.url, 'GET', '/openapi.json')).body as {
      paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, Response> }>>;
    };
    const operations = Object.values(doc.paths).flatMap((ops) => Object.values(ops));
    const withToken = operations.filter((op) => (op.security ?? []).length > 0);
    expect(withToken.length).toBeGreaterThan(15);
    for (const op of withToken) {
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['401', '429']));
      expect(op.responses['429']!.headers).toHaveProperty('Retry-After');
    }
    for (const op of operations.filter((op) => (op.security ?? []).length === 0))
      expect(op.responses).not.toHaveProperty('429');
    // The 429 as sent: eleven wrong tokens from one address, then even the right one is refused.
    const from = '127.0.9.9';
    for (let i = 0; i < 11; i++) await call(cp.url, 'GET', '/v1/plans', { token: `wrong-${i}`, from });
    const refused = await call(cp.url, 'GET', '/v1/plans', { token: t.adminToken, from });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    const schema = withToken[0]!.responses['429']!.content!['application/json']!.schema;
    const ajv = new Ajv({ strict: false });
    expect(ajv.validate(schema, refused.body), JSON.stringify(ajv.errors)).toBe(true);
    expect((refused.body as { error: { code: string } }).error.code).toBe('CP_ERR_TOO_MANY_ATTEMPTS');
  });

  it('documents the success status each route really sends, and no 200 where it sends another', async () => {
    type Operation = { responses: Record<string, { content?: unknown }> };
    const doc = (await call(cp.url, 'GET', '/openapi.json')).body as {
      paths: Record<string, Record<string, Operation>>;
    };
    const documented = (method: string, path: string) => Object.keys(doc.paths[path]![method]!.responses);
    const sent: [string, string, number][] = [];
    const send = async (method: string, path: string, docPath: string, body?: unknown) => {
      const reply = await admin(method, path, body);
      sent.push([method.toLowerCase(), docPath, reply.status]);
      return reply;
    };
    await send('POST', '/v1/plans', '/v1/plans', { id: 'doc-a', models: { default: 'gpt-4o-mini' } });
    await send('PUT', '/v1/plans/doc-b', '/v1/plans/{id}', { models: { default: 'gpt-4o-mini' } });
    await send('PUT', '/v1/plans/doc-b', '/v1/plans/{id}', { models: { default: 'gpt-4o' } });
    await send('DELETE', '/v1/plans/doc-b', '/v1/plans/{id}');
    await send('POST', '/v1/tenants', '/v1/tenants', { id: 'doc-t', plan: 'doc-a' });
    await send('POST', '/v1/tenants/doc-t/keys', '/v1/tenants/{id}/keys');
    await send('POST', '/v1/tenants/doc-t/collections', '/v1/tenants/{id}/collections', {
      name: 'documents',
    });
    await send('POST', '/v1/pricing/versions', '/v1/pricing/versions', {
      effective_from: '2998-01-01T00:00:00Z',
      prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 } },
    });
    const full = await proxyConfig();
    sent.push(['get', '/v1/config', full.status]);
    sent.push([
      'get',
      '/v1/config',
      (await proxyConfig({ 'if-none-match': full.headers.etag as string })).status,
    ]);

    expect(sent.map(([, , status]) => status)).toEqual([201, 201, 200, 204, 201, 201, 201, 201, 200, 304]);
    for (const [method, path, status] of sent) expect(documented(method, path)).toContain(String(status));
    for (const [method, path] of [
      ['post', '/v1/plans'],
      ['post', '/v1/tenants'],
      ['post', '/v1/tenants/{id}/keys'],
      ['post', '/v1/pricing/versions'],
      ['delete', '/v1/plans/{id}'],
    ] as const)
      expect(documented(method, path)).not.toContain('200');
    // Sent without a body, so documented without one.
    expect(doc.paths['/v1/plans/{id}']!.delete!.responses['204']).not.toHaveProperty('content');
    expect(doc.paths['/v1/config']!.get!.responses['304']).not.toHaveProperty('content');
    await admin('DELETE', '/v1/tenants/doc-t');
    await admin('DELETE', '/v1/plans/doc-a');
  });

  it('answers 401 without leaking data on every route, for no token, a wrong token and the other token', async () => {
    const routes = await everyRoute();
    expect(routes.length).toBeGreaterThan(15);
    const before = await counts();
    for (const [index, route] of routes.entries()) {
      // The proxies' routes take the proxy token; every other route the admin token.
      const forProxies = ['/v1/config', '/v1/usage-events'].includes(route.path);
      const other = forProxies ? t.adminToken : t.proxyToken;
      for (const token of [undefined, 'wrong-token-of-some-length', other, `${t.adminToken}x`]) {
        const reply = await call(cp.url, route.method, route.path, {
          token,
          // One client address per route: its three wrong tokens stay under the throttle's limit.
          from: `127.0.1.${index + 1}`,
          body: ['POST', 'PATCH'].includes(route.method) ? { id: 'x' } : undefined,
        });
        expect({ route: `${route.method} ${route.path}`, status: reply.status }).toEqual({
          route: `${route.method} ${route.path}`,
          status: 401,
        });
        expect(Object.keys(reply.body)).toEqual(['error']);
        expect(JSON.stringify(reply.body)).not.toContain('acme');
      }
    }
    expect(await counts()).toEqual(before);
  });

  it('checks the token before validating the body', async () => {
    const reply = await call(cp.url, 'POST', '/v1/tenants', { body: { id: 'Bad Id' } });
    expect(reply.status).toBe(401);
  });
});
