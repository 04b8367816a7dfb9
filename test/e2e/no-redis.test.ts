/**
 * The one-machine mode end to end: a control plane without Redis and a proxy in
 * control-plane mode with the memory store. Config reaches the proxy by its poll, and usage
 * reaches the ledger over POST /v1/usage-events (the proxy's HTTP usage sink), once per
 * request.
 */
import { createServer, type Server } from 'node:http';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProxy } from '../../proxy/src/main.js';
import { startFedProxy, stopStack } from '../helpers/fed-proxy.js';
import { startControlPlane } from '../../control-plane/src/main.js';
import { call } from '../../control-plane/test/helpers/http.js';
import { createTestEnv, type TestEnv } from '../../control-plane/test/helpers/test-env.js';

let t: TestEnv;
let cp: { url: string; close(): Promise<void> };
let upstream: Server;
let proxy: RunningProxy | undefined;
let dir: string;

const admin = (method: string, path: string, body?: unknown) =>
  call(cp.url, method, path, { token: t.adminToken, body });

function startUpstream(): Promise<Server> {
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const body = JSON.parse(raw || '{}') as { model?: string };
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

async function chat(apiKey: string): Promise<number> {
  const res = await request(`${proxy!.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hello' }] }),
  });
  await res.body.text();
  return res.statusCode;
}

async function within(limitMs: number, check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const ledgerRows = async () =>
  (await t.pool.query(`SELECT count(*)::int AS n FROM usage_ledger WHERE tenant_id = 'acme'`)).rows[0]
    .n as number;

beforeAll(async () => {
  upstream = await startUpstream();
  t = await createTestEnv({ extra: { REDIS_URL: '' } });
  cp = await startControlPlane(t.env);
  await admin('POST', '/v1/plans', { id: 'free', models: { default: 'gpt-4o-mini' } });
  await admin('POST', '/v1/tenants', { id: 'acme', plan: 'free' });
  ({ proxy, dir } = await startFedProxy({ cp, t, upstream, store: 'memory', pollIntervalMs: 100 }));
});

afterAll(() => stopStack({ proxy, cp, t, upstream, dir }));

describe('control plane and proxy without Redis', () => {
  it('gets a key issued after start-up by polling, and books each request once', async () => {
    // Issued after the proxy started: only the poll can bring it (no pub/sub without Redis).
    const key = (await admin('POST', '/v1/tenants/acme/keys')).body.key as string;
    await within(5_000, async () => (await chat(key)) === 200, 'the new key to work');
    expect(await chat(key)).toBe(200);
    const sent = 2; // the successful calls; refused ones (401 before the poll) meter nothing
    await within(5_000, async () => (await ledgerRows()) >= sent, 'booking over HTTP');
    // A little longer: nothing more arrives (no double posting).
    await new Promise((r) => setTimeout(r, 800));
    expect(await ledgerRows()).toBe(sent);
    const row = (await t.pool.query(`SELECT * FROM usage_ledger WHERE tenant_id = 'acme' LIMIT 1`)).rows[0];
    expect(row).toMatchObject({ model: 'gpt-4o-mini', input_tokens: 12, output_tokens: 3 });
    const usage = await admin('GET', '/v1/tenants/acme/usage');
    expect(JSON.stringify(usage.body)).toContain('"input_tokens":24');
  });

  it('flushes what is queued when the proxy shuts down', async () => {
    const start = await ledgerRows();
    const key = (await admin('POST', '/v1/tenants/acme/keys')).body.key as string;
    await within(5_000, async () => (await chat(key)) === 200, 'the new key to work');
    await within(5_000, async () => (await ledgerRows()) === start + 1, 'the first request booked');
    const before = start + 1;
    // Closed at once: the sink's batch timer has not fired, close() must send it.
    const status = await chat(key);
    expect(status).toBe(200);
    await proxy!.close(1000);
    proxy = undefined;
    expect(await ledgerRows()).toBe(before + 1);
  });
});
