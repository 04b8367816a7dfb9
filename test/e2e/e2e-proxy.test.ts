/**
 * The whole loop through a real proxy: a tenant onboarded over the admin API calls a fake
 * OpenAI upstream through the proxy with its new key; the request lands in the ledger; a
 * plan change, a key revocation and a suspension reach the proxy within one second (the
 * product's promise, so it is the bound here) through the control-plane source.
 *
 * The proxy is started in control-plane mode (`control_plane: {url, token}` in its config),
 * exactly as `lanekeeper proxy --config` runs it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxy, type RunningProxy } from '../../proxy/src/main.js';
import { startControlPlane } from '../../control-plane/src/main.js';
import { call } from '../../control-plane/test/helpers/http.js';
import { createTestEnv, REDIS_URL, type TestEnv } from '../../control-plane/test/helpers/test-env.js';

let t: TestEnv;
let cp: { url: string; close(): Promise<void> };
let upstream: Server;
let upstreamUrl: string;
let proxy: RunningProxy | undefined;
let dir: string;
let key: string;
const seenModels: string[] = [];

const admin = (method: string, path: string, body?: unknown) =>
  call(cp.url, method, path, { token: t.adminToken, body });

/** A minimal OpenAI chat completions upstream that echoes the model it was asked for. */
function startUpstream(): Promise<Server> {
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const body = JSON.parse(raw || '{}') as { model?: string };
      seenModels.push(body.model ?? '');
      const text = JSON.stringify({
        id: 'chatcmpl-test',
        object: 'chat.completion',
        created: 1,
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** The proxy's own file config in control-plane mode: plans, tenants and pricing come from the control plane. */
function proxyConfig() {
  return {
    listen: '127.0.0.1:0',
    admin_listen: '127.0.0.1:0',
    upstream: { url: upstreamUrl, dialect: 'openai' },
    store: { redis: REDIS_URL, key_prefix: t.prefix },
    log: { level: 'silent' },
    control_plane: {
      url: cp.url,
      token: t.proxyToken,
      poll_interval_ms: 5000,
      snapshot_path: join(dir, 'snapshot.json'),
    },
  };
}

async function chat(apiKey = key): Promise<{ status: number; body: unknown }> {
  const res = await request(`${proxy!.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hello' }] }),
  });
  return { status: res.statusCode, body: await res.body.json() };
}

/** Retries `check` until it holds, failing after `limitMs`. */
async function within(limitMs: number, check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  upstream = await startUpstream();
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  dir = await mkdtemp(join(tmpdir(), 'lk-e2e-'));
  t = await createTestEnv();
  cp = await startControlPlane(t.env);
  await admin('POST', '/v1/plans', { id: 'free', models: { default: 'gpt-4o-mini', smart: 'gpt-4o' } });
  await admin('POST', '/v1/pricing/versions', {
    effective_from: '2026-01-01T00:00:00Z',
    prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 }, 'gpt-4o': { input: 2.5, output: 10 } },
  });
  await admin('POST', '/v1/tenants', { id: 'acme', plan: 'free' });
  key = (await admin('POST', '/v1/tenants/acme/keys')).body.key;

  proxy = await startProxy({ config: proxyConfig(), logger: pino({ level: 'silent' }) });
});

afterAll(async () => {
  await proxy?.close(0);
  await cp?.close();
  await t?.dispose();
  await new Promise((r) => upstream?.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe('control plane and proxy together', () => {
  it('meters a request made with a freshly issued key into the ledger', async () => {
    const reply = await chat();
    expect(reply.status).toBe(200);
    expect(seenModels.at(-1)).toBe('gpt-4o-mini');
    await within(
      10_000,
      async () => (await t.pool.query(`SELECT 1 FROM usage_ledger WHERE tenant_id = 'acme'`)).rowCount === 1,
      'booking',
    );
    const row = (await t.pool.query(`SELECT * FROM usage_ledger WHERE tenant_id = 'acme'`)).rows[0];
    expect(row).toMatchObject({
      model: 'gpt-4o-mini',
      input_tokens: 12,
      output_tokens: 3,
      provenance: 'reported',
      price_version: 1,
    });
    expect(Number(row.cost_usd)).toBeCloseTo((12 * 0.15 + 3 * 0.6) / 1e6, 12);
    // The usage event names the key's hash, so the key list shows when it was last used.
    const keys = (await admin('GET', '/v1/tenants/acme/keys')).body.items as {
      last_used_at: string | null;
    }[];
    expect(keys[0]?.last_used_at).not.toBeNull();
  });

  it('applies a plan change to requests within one second', async () => {
    await admin('PATCH', '/v1/plans/free', { models: { default: 'gpt-4o' } });
    await within(
      1000,
      async () => (await chat()).status === 200 && seenModels.at(-1) === 'gpt-4o',
      'the plan change',
    );
  });

  it('refuses a suspended tenant with 403 within one second, and serves it again when reactivated', async () => {
    await admin('PATCH', '/v1/tenants/acme', { status: 'suspended' });
    await within(1000, async () => (await chat()).status === 403, 'the suspension');
    await admin('PATCH', '/v1/tenants/acme', { status: 'active' });
    await within(1000, async () => (await chat()).status === 200, 'the reactivation');
  });

  it('refuses a revoked key with 401 within one second', async () => {
    const keys = (await admin('GET', '/v1/tenants/acme/keys')).body.items as { id: string }[];
    await admin('DELETE', `/v1/tenants/acme/keys/${keys[0]!.id}`);
    await within(1000, async () => (await chat()).status === 401, 'the revocation');
  });
});

describe('erasing a tenant', () => {
  it('makes every proxy refuse it within one second and reports what was removed', async () => {
    await admin('POST', '/v1/tenants', { id: 'hooli', plan: 'free' });
    const hooliKey = (await admin('POST', '/v1/tenants/hooli/keys')).body.key as string;
    await within(1000, async () => (await chat(hooliKey)).status === 200, 'the new tenant');
    const erased = await admin('DELETE', '/v1/tenants/hooli');
    expect(erased.status).toBe(200);
    await within(1000, async () => (await chat(hooliKey)).status === 401, 'the erasure');
    expect((await admin('GET', '/v1/tenants/hooli')).status).toBe(404);
  });
});

describe('a proxy while the control plane is down', () => {
  it('keeps serving from its snapshot, and a new proxy starts from the snapshot on disk', async () => {
    await admin('POST', '/v1/tenants', { id: 'initech', plan: 'free' });
    const initechKey = (await admin('POST', '/v1/tenants/initech/keys')).body.key as string;
    await within(1000, async () => (await chat(initechKey)).status === 200, 'the new tenant');

    await cp.close();
    expect((await chat(initechKey)).status).toBe(200);

    await proxy?.close(0);
    proxy = await startProxy({ config: proxyConfig(), logger: pino({ level: 'silent' }) });
    expect((await chat(initechKey)).status).toBe(200);
    expect((await chat('lk_not_a_key')).status).toBe(401);
  });
});
