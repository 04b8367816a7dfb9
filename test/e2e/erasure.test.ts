/**
 * Erasure end to end across Qdrant (the in-repo test server, which can inject a failure),
 * Redis (keys and stream events written by the proxy's own Redis store) and PostgreSQL
 * (ledger rows booked by the running ledger): a failure halfway, a retry that resumes, no
 * trace left but the one audit record, the other tenant untouched, a repeated DELETE that
 * answers with the same report, and the pseudonymising retention setting.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisStore } from '../../proxy/src/store/redis.js';
import type { Store } from '../../proxy/src/store/store.js';
import type { UsageEvent } from '@lanekeeper/contract';
import { startControlPlane } from '../../control-plane/src/main.js';
import { call } from '../../control-plane/test/helpers/http.js';
import { createTestEnv, REDIS_URL, type TestEnv } from '../../control-plane/test/helpers/test-env.js';
import { startFakeQdrant, type FakeQdrant } from '../fakes/qdrant/fake-qdrant.js';

let t: TestEnv;
let qdrant: FakeQdrant;
let cp: { url: string; close(): Promise<void> };
let store: Store;

const admin = (method: string, path: string, body?: unknown, base = cp.url) =>
  call(base, method, path, { token: t.adminToken, body });

function event(tenant: string): UsageEvent {
  return {
    v: 1,
    request_id: randomUUID(),
    ts: new Date().toISOString(),
    tenant,
    plan: 'free',
    dialect: 'openai',
    endpoint: 'chat',
    model: 'gpt-4o-mini',
    model_requested: null,
    upstream_model: 'gpt-4o-mini',
    input_tokens: 10,
    output_tokens: 5,
    cached_input_tokens: 0,
    cache_write_tokens: 0,
    reasoning_tokens: 0,
    cost_usd: 0.00001,
    status: 200,
    stream: false,
    provenance: 'reported',
    latency_ms: 10,
    ttfb_ms: 4,
  };
}

async function collections(): Promise<string[]> {
  const body = (await (await fetch(`${qdrant.url}/collections`)).json()) as {
    result: { collections: { name: string }[] };
  };
  return body.result.collections.map((c) => c.name);
}

async function until(check: () => Promise<boolean>, what: string, limitMs = 20_000) {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const rows = async (sql: string, params: unknown[] = []) => (await t.pool.query(sql, params)).rows;

async function tenantKeys(tenant: string): Promise<string[]> {
  return t.redis.keys(`${t.prefix}{${tenant}}:*`);
}

async function streamMentions(tenant: string): Promise<number> {
  const entries = await t.redis.xrange(`${t.prefix}usage`, '-', '+');
  return entries.filter(([, fields]) => fields[1]?.includes(`"tenant":"${tenant}"`)).length;
}

beforeAll(async () => {
  qdrant = await startFakeQdrant();
  t = await createTestEnv({ extra: { QDRANT_URL: qdrant.url, LANEKEEPER_LEDGER_CLAIM_IDLE_MS: '1000' } });
  cp = await startControlPlane(t.env);
  store = createRedisStore({
    redis: REDIS_URL,
    key_prefix: t.prefix,
    cluster: false,
    timeout_ms: 2000,
    usage_stream: 'usage',
    usage_stream_maxlen: 100_000,
    retention_hours: 48,
  });
  await admin('POST', '/v1/plans', { id: 'free', models: { default: 'gpt-4o-mini' } });
  for (const id of ['acme', 'beta']) {
    expect((await admin('POST', '/v1/tenants', { id, plan: 'free' })).status).toBe(201);
    await admin('POST', `/v1/tenants/${id}/keys`);
  }
  for (let i = 0; i < 3; i++) await store.record(event('acme'));
  for (let i = 0; i < 2; i++) await store.record(event('beta'));
  await until(
    async () => (await rows(`SELECT count(*)::int AS n FROM usage_ledger`))[0].n === 5,
    'the ledger',
  );
});

afterAll(async () => {
  await store?.close();
  await cp?.close();
  await t?.dispose();
  await qdrant?.close();
});

describe('tenant erasure', () => {
  it('onboarding created each tenant its collection', async () => {
    expect(await collections()).toEqual(
      expect.arrayContaining(['tenant_acme_documents', 'tenant_beta_documents']),
    );
  });

  it('stops at a vector-store failure with the tenant already refused, then resumes on retry', async () => {
    qdrant.failNext({ method: 'DELETE', path: /tenant_acme_documents/, status: 500 });
    const failed = await admin('DELETE', '/v1/tenants/acme');
    expect(failed.status).toBe(502);
    expect(failed.body.error.message).toContain('stopped at step "vector"');

    // Proxies already refuse the tenant: it is gone from their config.
    const config = await call(cp.url, 'GET', '/v1/config', { token: t.proxyToken });
    expect(config.body.tenants.map((x: { id: string }) => x.id)).toEqual(['beta']);
    expect((await admin('GET', '/v1/tenants/acme')).status).toBe(404);

    const resumed = await admin('DELETE', '/v1/tenants/acme');
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({
      tenant: 'acme',
      usage_retention: 'deleted',
      attempts: 2,
      vector: { collectionsDeleted: ['tenant_acme_documents'] },
      redis: { stream_events_deleted: 3 },
      postgres: { usage_rows: 3, api_keys_deleted: 1, tenant_deleted: true },
    });
    expect(resumed.body.redis.keys_deleted).toBeGreaterThan(0);
  });

  it('leaves no trace of the tenant except its one audit record', async () => {
    expect(await collections()).not.toContain('tenant_acme_documents');
    // Only the tombstone stays (holding no data, expiring on its own), so a request still in
    // flight anywhere cannot write the tenant back.
    expect(await tenantKeys('acme')).toEqual([`${t.prefix}{acme}:erased`]);
    expect(await t.redis.ttl(`${t.prefix}{acme}:erased`)).toBeGreaterThan(3600);
    expect(await streamMentions('acme')).toBe(0);
    for (const [table, column] of [
      ['tenants', 'id'],
      ['api_keys', 'tenant_id'],
      ['usage_ledger', 'tenant_id'],
      ['usage_hourly', 'tenant_id'],
      ['erasure_jobs', 'tenant_id'],
    ]) {
      expect(await rows(`SELECT 1 FROM ${table} WHERE ${column} = 'acme'`)).toEqual([]);
    }
    const audit = await rows(`SELECT action FROM audit_log WHERE resource LIKE 'tenants/acme%'`);
    expect(audit).toEqual([{ action: 'tenant.erase' }]);
  });

  it('leaves the other tenant untouched', async () => {
    expect(await collections()).toContain('tenant_beta_documents');
    expect((await tenantKeys('beta')).length).toBeGreaterThan(0);
    expect(await streamMentions('beta')).toBe(2);
    expect(await rows(`SELECT 1 FROM usage_ledger WHERE tenant_id = 'beta'`)).toHaveLength(2);
    expect(await rows(`SELECT 1 FROM api_keys WHERE tenant_id = 'beta'`)).toHaveLength(1);
  });

  it('answers a repeated DELETE with the recorded report, sweeping Redis again', async () => {
    const again = await admin('DELETE', '/v1/tenants/acme');
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({
      tenant: 'acme',
      attempts: 2,
      already_erased: true,
      resweep: { keys_deleted: 0, stream_events_deleted: 0 },
    });
  });

  it('pseudonymises usage rows instead when billing records must be kept', async () => {
    const retaining = await startControlPlane({
      ...t.env,
      LANEKEEPER_ERASURE_RETAIN_BILLING: 'true',
      LANEKEEPER_LEDGER_ENABLED: 'false',
    });
    try {
      const erased = await admin('DELETE', '/v1/tenants/beta', undefined, retaining.url);
      expect(erased.status).toBe(200);
      expect(erased.body.usage_retention).toBe('pseudonymised');
      expect(erased.body.pseudonym).toMatch(/^erased-/);
      expect(await rows(`SELECT 1 FROM usage_ledger WHERE tenant_id = 'beta'`)).toEqual([]);
      expect(
        await rows(`SELECT input_tokens FROM usage_ledger WHERE tenant_id = $1`, [erased.body.pseudonym]),
      ).toHaveLength(2);
      expect(await rows(`SELECT 1 FROM api_keys WHERE tenant_id = 'beta'`)).toEqual([]);
    } finally {
      await retaining.close();
    }
  });
});
