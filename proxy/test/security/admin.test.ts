/**
 * The admin listener as an attacker on the network would probe it: /v1/usage/{tenant}
 * tells one tenant's usage to anyone who asks unless admin_token guards it, /metrics names
 * every tenant and its cost, and a malformed percent-escape used to be a 500. Raw HTTP.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/schema.js';
import type { ConfigError } from '../../src/errors.js';
import { chatCompletion } from '../helpers/fake-upstream.js';
import { ADMIN_TOKEN, KEYS, startHarness, type Harness } from '../helpers/harness.js';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const reply = () => ({
  kind: 'json' as const,
  body: chatCompletion('small-model', 'ok', { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }),
});

async function get(h: Harness, path: string, headers: Record<string, string> = {}) {
  const res = await request(`${h.proxy.adminUrl}${path}`, { headers });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

describe('the admin listener with admin_token and metrics_token', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ reply, config: (base) => ({ ...base, metrics_token: METRICS_TOKEN }) });
    await request(`${h.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    }).then((r) => r.body.text());
  });
  afterAll(() => h.close());

  it.each([
    ['no Authorization header', {}],
    ['the wrong token', { authorization: 'Bearer wrong-token-0123456789abcdef' }],
    ['a prefix of the token', { authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}` }],
    ['the token with more after it', { authorization: `Bearer ${ADMIN_TOKEN}x` }],
    ['the token with a second word', { authorization: `Bearer ${ADMIN_TOKEN} ${ADMIN_TOKEN}` }],
    ['the token without a scheme', { authorization: ADMIN_TOKEN }],
    ['the token as Basic', { authorization: `Basic ${ADMIN_TOKEN}` }],
    ['an empty bearer', { authorization: 'Bearer ' }],
    ['the metrics token', { authorization: `Bearer ${METRICS_TOKEN}` }],
    ['an 8 KiB token', { authorization: `Bearer ${'a'.repeat(8192)}` }],
    ['the token in x-api-key', { 'x-api-key': ADMIN_TOKEN }],
  ])('refuses usage to %s with 401 and a Bearer challenge, naming no tenant data', async (_n, headers) => {
    const r = await get(h, '/v1/usage/acme', headers);
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer realm="lanekeeper-admin"');
    expect(r.text).not.toContain('input_tokens');
  });

  it('serves usage to the admin token, with the scheme in any case', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const r = await get(h, '/v1/usage/acme', { authorization: `${scheme} ${ADMIN_TOKEN}` });
      expect(r.status).toBe(200);
      expect(JSON.parse(r.text)).toMatchObject({ tenant: 'acme', requests: 1 });
    }
  });

  it.each([
    ['/v1/usage/%zz', 400],
    ['/v1/usage/%', 400],
    ['/v1/usage/%E0%A4%A', 400],
    ['/v1/usage/..%2Facme', 404],
    ['/v1/usage/acme%00', 404],
    ['/v1/usage/', 404],
  ])('answers %s with %i, never 500', async (path, status) => {
    const r = await get(h, path, { authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(r.status).toBe(status);
  });

  it('guards /metrics with the metrics token only', async () => {
    expect((await get(h, '/metrics')).status).toBe(401);
    expect((await get(h, '/metrics', { authorization: `Bearer ${ADMIN_TOKEN}` })).status).toBe(401);
    const ok = await get(h, '/metrics', { authorization: `Bearer ${METRICS_TOKEN}` });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('lanekeeper_requests_total');
  });

  it('leaves the probes open, since kubelets send no token', async () => {
    expect((await get(h, '/healthz')).status).toBe(200);
    expect((await get(h, '/readyz')).status).toBe(200);
  });

  it('refuses other methods with 405', async () => {
    const res = await request(`${h.proxy.adminUrl}/v1/usage/acme`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    await res.body.text();
    expect(res.statusCode).toBe(405);
  });
});

describe('the admin listener without admin_token', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      reply,
      config: (base) => {
        const { admin_token: _dropped, ...rest } = base;
        return rest;
      },
    });
  });
  afterAll(() => h.close());

  it('answers usage 401 and says how to set a token, whatever is sent', async () => {
    for (const headers of [{}, { authorization: `Bearer ${ADMIN_TOKEN}` }] as Record<string, string>[]) {
      const r = await get(h, '/v1/usage/acme', headers);
      expect(r.status).toBe(401);
      expect(r.text).toContain('admin_token');
      expect(r.text).toContain('${LANEKEEPER_ADMIN_TOKEN}');
    }
  });

  it('keeps /metrics open on loopback', async () => {
    expect((await get(h, '/metrics')).status).toBe(200);
  });
});

describe('an admin_listen that is not loopback', () => {
  const base = { upstream: { url: 'http://127.0.0.1:1' } };
  const problems = (raw: Record<string, unknown>) => {
    try {
      parseConfig({ ...base, ...raw });
      return [];
    } catch (error) {
      return (error as ConfigError).problems.map((p) => p.path);
    }
  };

  it.each(['0.0.0.0:9464', '[::]:9464', '10.1.2.3:9464', 'proxy.internal:9464', '127.0.0.1.nip.io:9464'])(
    'needs metrics_token or metrics_public on %s',
    (admin_listen) => {
      expect(problems({ admin_listen })).toEqual(['metrics_token']);
      expect(problems({ admin_listen, metrics_token: METRICS_TOKEN })).toEqual([]);
      expect(problems({ admin_listen, metrics_public: true })).toEqual([]);
    },
  );

  it.each(['127.0.0.1:9464', '127.0.0.2:9464', '[::1]:9464', 'localhost:9464'])(
    'needs neither on %s',
    (admin_listen) => {
      expect(problems({ admin_listen })).toEqual([]);
    },
  );

  it('refuses short or empty tokens and a metrics_public that is not a boolean', () => {
    expect(problems({ admin_token: 'short' })).toEqual(['admin_token']);
    expect(problems({ metrics_token: '' })).toEqual(['metrics_token']);
    expect(problems({ admin_listen: '0.0.0.0:9464', metrics_public: 'yes' })).toContain('metrics_public');
  });
});
