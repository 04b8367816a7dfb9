/**
 * Start-up and operations: migrations are idempotent, a control plane refuses a schema that
 * is not current (and says to run `npx lanekeeper migrate`), and the health, readiness and
 * metrics endpoints answer without a token and without tenant data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, SchemaNotCurrentError, startControlPlane } from '../src/main.js';
import { call } from './helpers/http.js';
import { createTestEnv, type TestEnv } from './helpers/test-env.js';

let t: TestEnv;

beforeAll(async () => {
  t = await createTestEnv({ migrated: false });
});
afterAll(async () => {
  await t?.dispose();
});

describe('start-up', () => {
  it('refuses to start on an unmigrated database and names the command that fixes it', async () => {
    const error = await startControlPlane(t.env).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaNotCurrentError);
    expect((error as Error).message).toContain('npx lanekeeper migrate');
  });

  it('migrates, and migrating again changes nothing', async () => {
    await migrate(t.env);
    const applied = async () =>
      (await t.pool.query(`SELECT name FROM schema_migrations ORDER BY id`)).rows.map((r) => r.name);
    expect(await applied()).toEqual([
      '0001_initial',
      '0002_invalid_provenance',
      '0003_auth_failures',
      '0004_tenant_incarnation',
      '0005_reject_tenant',
      '0006_usage_time_indexes',
    ]);
    await migrate(t.env);
    expect(await applied()).toEqual([
      '0001_initial',
      '0002_invalid_provenance',
      '0003_auth_failures',
      '0004_tenant_incarnation',
      '0005_reject_tenant',
      '0006_usage_time_indexes',
    ]);
  });

  it('refuses a database migrated by a newer build', async () => {
    await t.pool.query(`INSERT INTO schema_migrations (name, run_on) VALUES ('9999_future', now())`);
    try {
      await expect(startControlPlane(t.env)).rejects.toThrow(/newer control plane/);
    } finally {
      await t.pool.query(`DELETE FROM schema_migrations WHERE name = '9999_future'`);
    }
  });

  it('serves health, readiness and metrics without a token', async () => {
    const cp = await startControlPlane(t.env);
    try {
      expect((await call(cp.url, 'GET', '/healthz')).status).toBe(200);
      const ready = await call(cp.url, 'GET', '/readyz');
      expect(ready).toMatchObject({ status: 200, body: { ready: true, postgres: true, redis: true } });
      await call(cp.url, 'GET', '/v1/plans', { token: t.adminToken });
      const metrics = await call(cp.url, 'GET', '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.body).toContain('lanekeeper_cp_ledger_lag_entries');
      expect(metrics.body).toContain('lanekeeper_cp_ledger_consumer_errors_total');
      expect(metrics.body).toMatch(
        /lanekeeper_cp_api_request_duration_seconds_count\{[^}]*route="\/v1\/plans"[^}]*\} 1/,
      );
    } finally {
      await cp.close();
    }
  });

  it('starts without Redis, reports it not ready, keeps the admin API up and stops promptly', async () => {
    const cp = await startControlPlane({ ...t.env, REDIS_URL: 'redis://127.0.0.1:1' });
    try {
      const ready = await call(cp.url, 'GET', '/readyz');
      expect(ready).toMatchObject({ status: 503, body: { ready: false, postgres: true, redis: false } });
      const created = await call(cp.url, 'POST', '/v1/plans', {
        token: t.adminToken,
        body: { id: 'offline', models: { default: 'm' } },
      });
      expect(created.status).toBe(201);
      const metrics = await call(cp.url, 'GET', '/metrics');
      expect(metrics.body).toMatch(/lanekeeper_cp_config_publish_failures_total 1/);
    } finally {
      await cp.close();
    }
  });
});
