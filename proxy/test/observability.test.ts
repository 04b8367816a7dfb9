/**
 * What operators see: the admin listener (/metrics, /healthz, /readyz, /v1/usage/{tenant}),
 * the bounded tenant label, unpriced models, and the access log, which must never carry a
 * credential or a body.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatCompletion } from './helpers/fake-upstream.js';
import { ADMIN_AUTH, KEYS, metricValue, startHarness, type Harness } from './helpers/harness.js';

let h: Harness;
const SECRET_PROMPT = 'my-secret-prompt-text-42';

beforeAll(async () => {
  h = await startHarness({
    reply: (req) => ({
      kind: 'json',
      body: chatCompletion((req.body as { model?: string } | undefined)?.model ?? 'none', 'ok', {
        prompt_tokens: 10,
        completion_tokens: 20,
        total_tokens: 30,
      }),
    }),
    config: (base) => {
      const plans = base.plans as Record<string, Record<string, unknown>>;
      return {
        ...base,
        metrics: { max_tenants: 2 },
        plans: {
          ...plans,
          // The operator opened the files listing to free-plan tenants: forwarded, unmetered.
          free: { ...plans.free, allow_paths: [{ method: 'GET', path: '/v1/files' }] },
          pro: {
            ...plans.pro,
            models: { default: 'small-model', free_model: 'unpriced-model', odd_model: 'constructor' },
            // A wildcard over the first two segments: the tenant picks the second.
            allow_paths: [{ method: 'GET', path: '/v1/*' }],
          },
        },
      };
    },
  });
});
afterAll(() => h.close());

async function chat(key: string, model = 'small-model') {
  const res = await request(`${h.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: SECRET_PROMPT }] }),
  });
  await res.body.text();
  return res.statusCode;
}

const metrics = async () => (await fetch(`${h.proxy.adminUrl}/metrics`)).text();

describe('the admin listener', () => {
  it('serves health and readiness', async () => {
    expect((await fetch(`${h.proxy.adminUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${h.proxy.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', store: { kind: 'memory', up: true } });
  });

  it('is not reachable on the traffic port', async () => {
    const res = await request(`${h.proxy.url}/metrics`, {
      headers: { authorization: `Bearer ${KEYS.free}` },
    });
    expect(await res.body.text()).not.toContain('lanekeeper_requests_total');
  });

  it('reports the current hour of a tenant from its meters', async () => {
    const before = (await (
      await fetch(`${h.proxy.adminUrl}/v1/usage/acme`, { headers: ADMIN_AUTH })
    ).json()) as Record<string, number>;
    const count = h.accessLogs().length;
    expect(await chat(KEYS.free)).toBe(200);
    await h.settled(count + 1);
    const usage = (await (
      await fetch(`${h.proxy.adminUrl}/v1/usage/acme`, { headers: ADMIN_AUTH })
    ).json()) as Record<string, unknown>;
    expect(usage.tenant).toBe('acme');
    expect(usage.hour).toBe(new Date(Date.now() - (Date.now() % 3_600_000)).toISOString());
    expect(usage.requests).toBe((before.requests ?? 0) + 1);
    expect(usage.input_tokens).toBe((before.input_tokens ?? 0) + 10);
    expect(usage.output_tokens).toBe((before.output_tokens ?? 0) + 20);
    expect(usage.estimated_cost as number).toBeCloseTo(
      (before.estimated_cost ?? 0) + (10 * 1 + 20 * 2) / 1e6,
      12,
    );
    expect((await fetch(`${h.proxy.adminUrl}/v1/usage/nobody`, { headers: ADMIN_AUTH })).status).toBe(404);
  });
});

describe('metric labels', () => {
  it('counts tenants past metrics.max_tenants under "_other", and says so', async () => {
    await chat(KEYS.free);
    await chat(KEYS.pro);
    await chat(KEYS.pro2);
    await h.settled(h.accessLogs().length);
    const text = await metrics();
    expect(metricValue(text, 'lanekeeper_requests_total', { tenant: '_other' })).toBeGreaterThanOrEqual(1);
    expect(text).not.toContain('tenant="hooli"');
    expect(metricValue(text, 'lanekeeper_tenant_label_overflow_total', {})).toBeGreaterThanOrEqual(1);
  });

  it('never books a model without a price as $0: its tokens are counted as unpriced, with one warning', async () => {
    const count = h.accessLogs().length;
    await chat(KEYS.pro, 'free_model');
    await chat(KEYS.pro, 'free_model');
    await h.settled(count + 2);
    const text = await metrics();
    expect(metricValue(text, 'lanekeeper_unpriced_tokens_total', { model: 'unpriced-model' })).toBe(60);
    expect(metricValue(text, 'lanekeeper_cost_usd_total', { model: 'unpriced-model' })).toBeUndefined();
    expect(h.logs.filter((l) => String(l.msg).includes('no pricing entry'))).toHaveLength(1);
    const line = h.accessLogs().at(-1)!;
    expect(line.cost_usd).toBeNull();
  });
});

describe('a model named like a property of every object', () => {
  it('is unpriced, not priced by Object.prototype (no NaN cost)', async () => {
    const count = h.accessLogs().length;
    expect(await chat(KEYS.pro, 'odd_model')).toBe(200);
    await h.settled(count + 1);
    const line = h.accessLogs().at(-1)!;
    expect(line).toMatchObject({ model: 'constructor', input_tokens: 10, output_tokens: 20 });
    expect(line.cost_usd).toBeNull();
    const text = await metrics();
    expect(metricValue(text, 'lanekeeper_unpriced_tokens_total', { model: 'constructor' })).toBe(30);
    expect(text).not.toContain('NaN');
  });
});

describe('the access log', () => {
  it('has one JSON line per request with the fields billing needs, and no credential or body', async () => {
    const count = h.accessLogs().length;
    await chat(KEYS.free);
    await chat('lk_wrong_key_value');
    await h.settled(count + 2);
    const [ok, refused] = h.accessLogs().slice(count);
    expect(ok).toMatchObject({
      tenant: 'acme',
      plan: 'free',
      model: 'small-model',
      status: 200,
      input_tokens: 10,
      output_tokens: 20,
    });
    expect(typeof ok!.request_id).toBe('string');
    expect(typeof ok!.latency_ms).toBe('number');
    expect(refused).toMatchObject({ tenant: null, status: 401, error: 'invalid_api_key' });
    const all = JSON.stringify(h.logs);
    for (const secret of [KEYS.free, 'lk_wrong_key_value', 'sk-upstream-secret', SECRET_PROMPT])
      expect(all).not.toContain(secret);
  });
});

describe('blind spots', () => {
  it('forwards an allowed request no dialect meters, with identity applied, and counts it as unmetered', async () => {
    const before =
      metricValue(await metrics(), 'lanekeeper_unmetered_requests_total', {
        tenant: 'acme',
        route: '/v1/files',
      }) ?? 0;
    const lines = h.accessLogs().length;
    const res = await request(`${h.proxy.url}/v1/files?purpose=batch`, {
      headers: { authorization: `Bearer ${KEYS.free}` },
    });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    const got = h.upstream.received.at(-1)!;
    expect(got.path).toBe('/v1/files');
    expect(got.headers.authorization).toBe('Bearer sk-upstream-secret');
    expect(got.headers['x-tenant-id']).toBe('acme');
    await h.settled(lines + 1);
    const after = metricValue(await metrics(), 'lanekeeper_unmetered_requests_total', {
      tenant: 'acme',
      route: '/v1/files',
    });
    expect(after).toBe(before + 1);
    const refused = await request(`${h.proxy.url}/v1/files`);
    await refused.body.text();
    expect(refused.statusCode).toBe(401);
  });

  it('labels unmetered requests by the allow_paths pattern, not by paths a tenant makes up', async () => {
    const lines = h.accessLogs().length;
    for (let i = 0; i < 20; i++) {
      const res = await request(`${h.proxy.url}/v1/made-up-${i}`, {
        headers: { authorization: `Bearer ${KEYS.pro}` },
      });
      await res.body.text();
      expect(res.statusCode).toBe(200);
    }
    expect(h.upstream.received.at(-1)!.path).toBe('/v1/made-up-19');
    await h.settled(lines + 20);
    const text = await metrics();
    expect(
      metricValue(text, 'lanekeeper_unmetered_requests_total', { tenant: 'globex', route: '/v1/*' }),
    ).toBe(20);
    expect(text).not.toContain('made-up');
  });
});
