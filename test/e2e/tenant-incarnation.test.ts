/**
 * A tenant id erased and created again, through a real proxy in control-plane mode: the config
 * pushed to the proxy names each tenant's incarnation, the proxy's usage events carry it, and
 * an event of the erased tenant that reaches the ledger only after the id was created again
 * (a proxy's backlog, replayed here by appending the very entry the proxy wrote) is dropped and
 * counted as an erased tenant's, while the new tenant's usage is booked to it.
 */
import { createServer, type Server } from 'node:http';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INCARNATION_PATTERN } from '@lanekeeper/contract';
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
    req.resume();
    req.on('end', () => {
      const text = JSON.stringify({
        id: 'chatcmpl-test',
        object: 'chat.completion',
        created: 1,
        model: 'gpt-4o-mini',
        choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Sends one chat request with `key`; returns its status and the proxy's request id. */
async function chat(key: string): Promise<{ status: number; id: string }> {
  const res = await request(`${proxy!.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hello' }] }),
  });
  await res.body.text();
  return { status: res.statusCode, id: res.headers['x-lanekeeper-request-id'] as string };
}

async function within(limitMs: number, check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function servedIncarnation(tenant: string): Promise<string> {
  const config = await call(cp.url, 'GET', '/v1/config', { token: t.proxyToken });
  return config.body.tenants.find((x: { id: string }) => x.id === tenant)?.incarnation;
}

/** Ledger rows the control plane counted as an erased tenant's so far. */
async function erasedCount(): Promise<number> {
  const metrics = await call(cp.url, 'GET', '/metrics');
  const line = String(metrics.body)
    .split('\n')
    .find((l) => l.startsWith('lanekeeper_cp_ledger_rows_total{') && l.includes('outcome="erased_tenant"'));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

const ledgerIds = async (tenant: string) =>
  (
    await t.pool.query(`SELECT request_id FROM usage_ledger WHERE tenant_id = $1 ORDER BY 1`, [tenant])
  ).rows.map((r) => r.request_id as string);

/** The stream entry the proxy wrote for `requestId`, as its raw `event` field. */
async function streamed(requestId: string): Promise<string> {
  let found: string | undefined;
  await within(
    10_000,
    async () => {
      const entries = await t.redis.xrange(`${t.prefix}usage`, '-', '+');
      found = entries.map(([, fields]) => fields[1]!).find((e) => e.includes(`"request_id":"${requestId}"`));
      return found !== undefined;
    },
    'the usage event',
  );
  return found!;
}

beforeAll(async () => {
  upstream = await startUpstream();
  t = await createTestEnv({ extra: { LANEKEEPER_ERASURE_RESWEEP_MS: '3600000' } });
  cp = await startControlPlane(t.env);
  await admin('POST', '/v1/plans', { id: 'free', models: { default: 'gpt-4o-mini' } });
  ({ proxy, dir } = await startFedProxy({ cp, t, upstream, store: 'redis', pollIntervalMs: 5000 }));
});

afterAll(() => stopStack({ proxy, cp, t, upstream, dir }));

describe('a tenant id erased and created again, through a proxy', () => {
  it("books the erased tenant's late event to no one and the new tenant's usage to it", async () => {
    await admin('POST', '/v1/tenants', { id: 'acme', plan: 'free' });
    const firstKey = (await admin('POST', '/v1/tenants/acme/keys')).body.key as string;
    const first = await servedIncarnation('acme');
    expect(first).toMatch(INCARNATION_PATTERN);

    let old = { status: 0, id: '' };
    await within(2000, async () => (old = await chat(firstKey)).status === 200, 'the new tenant');
    const backlog = await streamed(old.id);
    expect(JSON.parse(backlog)).toMatchObject({ tenant: 'acme', tenant_incarnation: first });
    await within(10_000, async () => (await ledgerIds('acme')).includes(old.id), 'the first booking');

    expect((await admin('DELETE', '/v1/tenants/acme')).status).toBe(200);
    await admin('POST', '/v1/tenants', { id: 'acme', plan: 'free' });
    const secondKey = (await admin('POST', '/v1/tenants/acme/keys')).body.key as string;
    const second = await servedIncarnation('acme');
    expect(second).toMatch(INCARNATION_PATTERN);
    expect(second).not.toBe(first);

    let fresh = { status: 0, id: '' };
    await within(
      2000,
      async () => (fresh = await chat(secondKey)).status === 200,
      'the tenant created again',
    );
    expect(JSON.parse(await streamed(fresh.id))).toMatchObject({
      tenant: 'acme',
      tenant_incarnation: second,
    });
    await within(10_000, async () => (await ledgerIds('acme')).includes(fresh.id), 'the new booking');

    // The erased tenant's event arrives now, as a proxy cut off from Redis would deliver it.
    const erasedBefore = await erasedCount();
    await t.redis.xadd(`${t.prefix}usage`, '*', 'event', backlog);
    await within(
      10_000,
      async () => (await erasedCount()) === erasedBefore + 1,
      'the late event to be dropped',
    );

    expect(await ledgerIds('acme')).toEqual([fresh.id]);
    const usage = await admin('GET', '/v1/tenants/acme/usage?granularity=hour');
    expect(usage.body.total).toMatchObject({ requests: 1, input_tokens: 12 });
    const rejects = await t.pool.query(`SELECT 1 FROM usage_rejects WHERE payload LIKE $1`, [`%${old.id}%`]);
    expect(rejects.rowCount).toBe(0);
  });
});
