/**
 * Erasure in one call, with the tenant's traffic running: a real proxy in control-plane
 * mode on a real Redis, streams in flight through a slow upstream, and DELETE in the middle
 * of it. Before the tombstone, requests that ended after the sweep wrote their counters and
 * usage events back (7 keys and 6 events were left until a second DELETE). After the one
 * DELETE: no key but the tombstone, no event, no ledger row, the key refused, and the
 * automatic second sweep's result in the audit log.
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
let key: string;

const admin = (method: string, path: string, body?: unknown) =>
  call(cp.url, method, path, { token: t.adminToken, body });

/**
 * An OpenAI-style upstream that streams slowly (about 2 s, longer than the propagation
 * window) and reports usage at the end: streams in flight at DELETE end after the sweep.
 */
function startSlowUpstream(): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let i = 0;
      const chunk = (body: unknown) => res.write(`data: ${JSON.stringify(body)}\n\n`);
      const timer = setInterval(() => {
        if (i++ < 40)
          return void chunk({
            id: 'c',
            object: 'chat.completion.chunk',
            model: 'gpt-4o-mini',
            choices: [{ index: 0, delta: { content: 'x' } }],
            usage: null,
          });
        clearInterval(timer);
        chunk({
          id: 'c',
          object: 'chat.completion.chunk',
          model: 'gpt-4o-mini',
          choices: [],
          usage: { prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 },
        });
        res.end('data: [DONE]\n\n');
      }, 50);
      res.on('close', () => clearInterval(timer));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function tenantKeys(): Promise<string[]> {
  return (await t.redis.keys(`${t.prefix}{acme}:*`)).sort();
}

async function streamMentions(): Promise<number> {
  const entries = await t.redis.xrange(`${t.prefix}usage`, '-', '+');
  return entries.filter(([, fields]) => fields[1]?.includes('"tenant":"acme"')).length;
}

async function chat(): Promise<number> {
  try {
    const res = await request(`${proxy!.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ stream: true, messages: [{ role: 'user', content: 'hello' }] }),
    });
    await res.body.text();
    return res.statusCode;
  } catch {
    return 0;
  }
}

beforeAll(async () => {
  upstream = await startSlowUpstream();
  t = await createTestEnv({
    extra: { LANEKEEPER_ERASURE_RESWEEP_MS: '1500', LANEKEEPER_ERASURE_PROPAGATION_MS: '300' },
  });
  cp = await startControlPlane(t.env);
  await admin('POST', '/v1/plans', {
    id: 'free',
    models: { default: 'gpt-4o-mini' },
    rate_limits: { requests_per_minute: 100_000, tokens_per_hour: 100_000_000, max_concurrent: 100 },
  });
  await admin('POST', '/v1/pricing/versions', {
    effective_from: '2026-01-01T00:00:00Z',
    prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 } },
  });
  await admin('POST', '/v1/tenants', { id: 'acme', plan: 'free' });
  key = (await admin('POST', '/v1/tenants/acme/keys')).body.key;
  ({ proxy, dir } = await startFedProxy({ cp, t, upstream, store: 'redis', pollIntervalMs: 5000 }));
});

afterAll(() => stopStack({ proxy, cp, t, upstream, dir }));

describe('DELETE /v1/tenants/{id} while the tenant has traffic', () => {
  it('leaves nothing behind after one call, and records the automatic second sweep', async () => {
    // Traffic from the tenant: 8 loops of slow streams, running through the DELETE.
    let running = true;
    const statuses: number[] = [];
    const loops = Array.from({ length: 8 }, async () => {
      while (running) statuses.push(await chat());
    });
    await new Promise((r) => setTimeout(r, 2_500));
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    expect((await tenantKeys()).length).toBeGreaterThan(0);

    const erased = await admin('DELETE', '/v1/tenants/acme');
    expect(erased.status).toBe(200);
    // Let the loops run on past the DELETE, as clients do, then let what is in flight end
    // (after the sweep: the streams outlast the propagation window).
    await new Promise((r) => setTimeout(r, 300));
    running = false;
    await Promise.all(loops);
    await new Promise((r) => setTimeout(r, 300));

    expect(await tenantKeys()).toEqual([`${t.prefix}{acme}:erased`]);
    expect(await streamMentions()).toBe(0);
    // Whatever the ledger had read is booked or rejected by now; none of it may remain.
    await new Promise((r) => setTimeout(r, 1_000));
    for (const [table, where] of [
      ['usage_ledger', `tenant_id = 'acme'`],
      ['usage_hourly', `tenant_id = 'acme'`],
      ['usage_rejects', `payload LIKE '%"tenant":"acme"%'`],
      ['api_keys', `tenant_id = 'acme'`],
      ['tenants', `id = 'acme'`],
    ])
      expect((await t.pool.query(`SELECT 1 FROM ${table} WHERE ${where}`)).rowCount, table).toBe(0);
    expect([401, 403]).toContain(await chat());

    // The second sweep runs by itself and says what it found in the audit log.
    let record: { after: Record<string, unknown> } | undefined;
    for (let i = 0; i < 100 && !record; i++) {
      const { rows } = await t.pool.query(
        `SELECT after FROM audit_log WHERE action = 'tenant.erase.resweep' AND resource = 'tenants/acme'`,
      );
      record = rows[0] as typeof record;
      if (!record) await new Promise((r) => setTimeout(r, 50));
    }
    expect(record?.after).toMatchObject({
      tenant: 'acme',
      keys_deleted: 0,
      stream_events_deleted: 0,
      usage_rows: 0,
    });
    expect(await tenantKeys()).toEqual([`${t.prefix}{acme}:erased`]);
  }, 30_000);

  it('lifts the tombstone when the tenant id is created anew', async () => {
    await admin('POST', '/v1/tenants', { id: 'acme', plan: 'free' });
    key = (await admin('POST', '/v1/tenants/acme/keys')).body.key;
    expect(await tenantKeys()).not.toContain(`${t.prefix}{acme}:erased`);
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = await chat();
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(200);
  });
});
