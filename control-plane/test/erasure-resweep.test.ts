/**
 * An erasure's second sweep, run by its own timer against real PostgreSQL and Redis, when the
 * tenant id has been created again in the meantime: the new tenant's ledger rows, rollups,
 * Redis keys, stream events and rejects survive, even those stamped with a time before its
 * creation, while what the erased tenant left (a row booked while the id had no tenant, a
 * reject) is removed, or re-keyed to the erasure's pseudonym when billing records are kept.
 * An id that was not created again is still swept whole, and one erased again is left to the
 * later erasure.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../src/main.js';
import { call } from './helpers/http.js';
import { createTestEnv, type TestEnv } from './helpers/test-env.js';
import { usageEvent } from './helpers/usage-event.js';

/** Long enough for a test to erase, create again and book before the sweep; short enough to wait for. */
const RESWEEP_MS = 3000;

let t: TestEnv;
let deleting: RunningControlPlane;
let retaining: RunningControlPlane;

const admin = (cp: RunningControlPlane, method: string, path: string, body?: unknown) =>
  call(cp.url, method, path, { token: t.adminToken, body });
const post = (cp: RunningControlPlane, events: unknown[]) =>
  call(cp.url, 'POST', '/v1/usage-events', { token: t.proxyToken, body: { events } });
const rows = async (sql: string, params: unknown[] = []) => (await t.pool.query(sql, params)).rows;

const ledgerIds = async (tenant: string) =>
  (await rows(`SELECT request_id FROM usage_ledger WHERE tenant_id = $1 ORDER BY 1`, [tenant])).map(
    (r) => r.request_id as string,
  );

/** The tenant's rollups must sum exactly its ledger rows, hour by hour. */
async function expectRollupsToMatchLedger(tenant: string): Promise<void> {
  const fromLedger = await rows(
    `SELECT date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, count(*)::int AS requests,
            sum(input_tokens)::int AS input_tokens, count(*) FILTER (WHERE cost_usd IS NULL)::int AS unpriced
       FROM usage_ledger WHERE tenant_id = $1 GROUP BY 1 ORDER BY 1`,
    [tenant],
  );
  const rollups = await rows(
    `SELECT hour, requests::int, input_tokens::int, unpriced_requests::int AS unpriced
       FROM usage_hourly WHERE tenant_id = $1 ORDER BY 1`,
    [tenant],
  );
  expect(rollups, `rollups of ${tenant}`).toEqual(fromLedger);
}

/**
 * A row the ledger booked, with its rollup, the way a booking that straddled the first sweep
 * leaves one: the id has no tenant now, so the ledger itself would drop the event.
 */
async function bookedDuringErasure(tenant: string, ts: Date): Promise<string> {
  const id = `race-${randomUUID()}`;
  await t.pool.query(
    `INSERT INTO usage_ledger (request_id, tenant_id, ts, plan, dialect, endpoint, model, input_tokens,
       output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, status, stream, provenance,
       latency_ms, stream_id)
     VALUES ($1, $2, $3, 'free', 'openai', 'chat', 'm', 40, 4, 0, 0, 0, 200, false, 'reported', 10, 'race')`,
    [id, tenant, ts],
  );
  await t.pool.query(
    `INSERT INTO usage_hourly AS h VALUES ($1, date_trunc('hour', $2::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       1, 40, 4, 0, 0, 0, 0, 1)
     ON CONFLICT (tenant_id, hour) DO UPDATE SET requests = h.requests + 1, input_tokens = h.input_tokens + 40,
       output_tokens = h.output_tokens + 4, unpriced_requests = h.unpriced_requests + 1`,
    [tenant, ts],
  );
  return id;
}

const streamKey = () => `${t.prefix}usage`;
const streamRequestIds = async (tenant: string) =>
  (await t.redis.xrange(streamKey(), '-', '+'))
    .map(([, fields]) => JSON.parse(fields[1]!) as { tenant: string; request_id: string })
    .filter((e) => e.tenant === tenant)
    .map((e) => e.request_id)
    .sort();
const rejectIds = async (tenant: string) =>
  (
    await rows(`SELECT stream_id FROM usage_rejects WHERE payload LIKE $1 ORDER BY 1`, [
      `%"tenant":"${tenant}"%`,
    ])
  ).map((r) => r.stream_id as string);

/** The audit records of the tenant's second sweeps, oldest first. */
async function resweepRecords(tenant: string): Promise<Record<string, unknown>[]> {
  const found = await rows(
    `SELECT after FROM audit_log WHERE action = 'tenant.erase.resweep' AND resource = $1 ORDER BY id`,
    [`tenants/${tenant}`],
  );
  return found.map((r) => r.after as Record<string, unknown>);
}

async function waitForResweeps(tenant: string, count = 1): Promise<Record<string, unknown>[]> {
  for (let i = 0; i < 200; i++) {
    const records = await resweepRecords(tenant);
    if (records.length >= count) return records;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`fewer than ${count} second sweeps of ${tenant} were recorded`);
}

interface Incarnations {
  /** Request ids of the tenant created again. */
  current: string[];
  /** Request ids the erased tenant left in the ledger after its erasure. */
  erased: string[];
  pseudonym?: string;
}

/**
 * Erases `tenant`, lets the erased tenant leave a ledger row and a reject behind, creates the
 * id again and uses it; returns once everything is in place and the second sweep has not run.
 */
async function eraseAndCreateAgain(cp: RunningControlPlane, tenant: string): Promise<Incarnations> {
  expect((await admin(cp, 'POST', '/v1/tenants', { id: tenant, plan: 'free' })).status).toBe(201);
  const beforeErasure = new Date();
  const event = (ts: Date, input: number) =>
    usageEvent({ tenant, ts: ts.toISOString(), model: 'm', input, output: 1 });
  expect((await post(cp, [event(beforeErasure, 7)])).body.inserted).toBe(1);
  const erased = await admin(cp, 'DELETE', `/v1/tenants/${tenant}`);
  expect(erased.status).toBe(200);

  // While the id has no tenant: a row booked by a booking that straddled the first sweep, and a
  // rejected event.
  const race = await bookedDuringErasure(tenant, beforeErasure);
  await t.pool.query(`INSERT INTO usage_rejects (stream_id, payload, reason) VALUES ($1, $2, 'test')`, [
    `old-${tenant}`,
    JSON.stringify({ tenant, request_id: 'old-reject' }),
  ]);

  expect((await admin(cp, 'POST', '/v1/tenants', { id: tenant, plan: 'free' })).status).toBe(201);

  // The new tenant's usage. One event is stamped before the erasure even began, as a proxy whose
  // clock runs behind (or stamps whole seconds) can: booked after the creation, it is still the
  // new tenant's.
  const current = [event(new Date(), 3), event(beforeErasure, 5)];
  expect((await post(cp, current)).body.inserted).toBe(2);
  // A reject of the new tenant's (a figure beyond its column, which PostgreSQL refuses).
  const huge = { ...event(new Date(), 1), latency_ms: 1e12 };
  expect((await post(cp, [huge])).body.rejected).toBe(1);
  // Its counters in Redis, and its events in the stream, not yet booked.
  await t.redis.set(`${t.prefix}{${tenant}}:marker`, 'the new tenant');
  for (const streamed of [event(new Date(), 13), event(beforeErasure, 17)])
    await t.redis.xadd(streamKey(), '*', 'event', JSON.stringify(streamed));

  expect(await resweepRecords(tenant), 'the second sweep ran before the test was ready').toEqual([]);
  return {
    current: current.map((e) => e.request_id).sort(),
    erased: [race],
    pseudonym: erased.body.pseudonym,
  };
}

beforeAll(async () => {
  // The ledger consumer is off so that events stay in the stream for the sweep to find.
  t = await createTestEnv({
    extra: { LANEKEEPER_ERASURE_RESWEEP_MS: String(RESWEEP_MS), LANEKEEPER_LEDGER_ENABLED: 'false' },
  });
  deleting = await startControlPlane(t.env);
  retaining = await startControlPlane({ ...t.env, LANEKEEPER_ERASURE_RETAIN_BILLING: 'true' });
  await admin(deleting, 'POST', '/v1/plans', { id: 'free', models: { default: 'm' } });
});
afterAll(async () => {
  await deleting?.close();
  await retaining?.close();
  await t?.dispose();
});

describe("an erasure's second sweep, once the tenant id is created again", () => {
  it('deletes only what the erased tenant left, and keeps the new tenant whole', async () => {
    const tenant = 'again';
    const { current, erased } = await eraseAndCreateAgain(deleting, tenant);
    expect(await ledgerIds(tenant)).toEqual([...current, ...erased].sort());

    const [record] = await waitForResweeps(tenant);

    expect(await ledgerIds(tenant)).toEqual(current);
    await expectRollupsToMatchLedger(tenant);
    expect(await t.redis.get(`${t.prefix}{${tenant}}:marker`)).toBe('the new tenant');
    expect(await streamRequestIds(tenant)).toHaveLength(2);
    expect(await rejectIds(tenant)).toHaveLength(1);
    expect(await rejectIds(tenant)).not.toContain(`old-${tenant}`);
    const usage = await admin(deleting, 'GET', `/v1/tenants/${tenant}/usage?granularity=hour`);
    expect(usage.body.total).toMatchObject({ requests: 2, input_tokens: 8 });
    expect(record).toMatchObject({
      scope: 'recreated',
      usage_rows: 1,
      rejected_events: 1,
      keys_deleted: 0,
      stream_events_deleted: 0,
    });
  });

  it('moves only what the erased tenant left to its pseudonym when billing records are kept', async () => {
    const tenant = 'again-kept';
    const { current, erased, pseudonym } = await eraseAndCreateAgain(retaining, tenant);
    expect(pseudonym).toMatch(/^erased-/);
    const pseudonymised = await ledgerIds(pseudonym!);

    const [record] = await waitForResweeps(tenant);

    expect(await ledgerIds(tenant)).toEqual(current);
    expect(await ledgerIds(pseudonym!)).toEqual([...pseudonymised, ...erased].sort());
    await expectRollupsToMatchLedger(tenant);
    await expectRollupsToMatchLedger(pseudonym!);
    expect(await t.redis.get(`${t.prefix}{${tenant}}:marker`)).toBe('the new tenant');
    expect(await streamRequestIds(tenant)).toHaveLength(2);
    expect(record).toMatchObject({ scope: 'recreated', usage_rows: 1, keys_deleted: 0 });
  });
});

describe("an erasure's second sweep, when the id was not created again", () => {
  /** Erases `tenant`, then leaves behind what a request in flight during the erasure could. */
  async function eraseWithLeftovers(cp: RunningControlPlane, tenant: string) {
    expect((await admin(cp, 'POST', '/v1/tenants', { id: tenant, plan: 'free' })).status).toBe(201);
    const erased = await admin(cp, 'DELETE', `/v1/tenants/${tenant}`);
    expect(erased.status).toBe(200);
    const race = await bookedDuringErasure(tenant, new Date(Date.now() - 1000));
    // The tombstone still stands, so the sweep may take every key of the id.
    await t.redis.set(`${t.prefix}{${tenant}}:late`, '1');
    const late = usageEvent({ tenant, ts: new Date().toISOString(), model: 'm', input: 1, output: 1 });
    await t.redis.xadd(streamKey(), '*', 'event', JSON.stringify(late));
    return { race, pseudonym: erased.body.pseudonym as string | undefined };
  }

  it('still sweeps everything under the id', async () => {
    const tenant = 'gone';
    await eraseWithLeftovers(deleting, tenant);
    const [record] = await waitForResweeps(tenant);
    expect(await ledgerIds(tenant)).toEqual([]);
    expect(await rows(`SELECT 1 FROM usage_hourly WHERE tenant_id = $1`, [tenant])).toEqual([]);
    expect(await t.redis.keys(`${t.prefix}{${tenant}}:*`)).toEqual([`${t.prefix}{${tenant}}:erased`]);
    expect(await streamRequestIds(tenant)).toEqual([]);
    expect(record).toMatchObject({
      scope: 'erased',
      usage_rows: 1,
      keys_deleted: 1,
      stream_events_deleted: 1,
    });
  });

  it('moves the rows and their rollups together to the pseudonym when billing records are kept', async () => {
    const tenant = 'gone-kept';
    const { race, pseudonym } = await eraseWithLeftovers(retaining, tenant);
    const [record] = await waitForResweeps(tenant);
    expect(await ledgerIds(tenant)).toEqual([]);
    expect(await rows(`SELECT 1 FROM usage_hourly WHERE tenant_id = $1`, [tenant])).toEqual([]);
    expect(await ledgerIds(pseudonym!)).toEqual([race]);
    await expectRollupsToMatchLedger(pseudonym!);
    expect(record).toMatchObject({ scope: 'erased', usage_rows: 1 });
  });
});

describe("an erasure's second sweep, when the id was erased again since", () => {
  it('leaves the id to the later erasure, whose pseudonym gets what was booked after it', async () => {
    const tenant = 'twice';
    const erase = async () => {
      expect((await admin(retaining, 'POST', '/v1/tenants', { id: tenant, plan: 'free' })).status).toBe(201);
      const erased = await admin(retaining, 'DELETE', `/v1/tenants/${tenant}`);
      expect(erased.status).toBe(200);
      return erased.body.pseudonym as string;
    };
    const first = await erase();
    const second = await erase();
    const race = await bookedDuringErasure(tenant, new Date());

    const [earlier, later] = await waitForResweeps(tenant, 2);

    expect(await ledgerIds(first)).toEqual([]);
    expect(await ledgerIds(second)).toEqual([race]);
    await expectRollupsToMatchLedger(second);
    expect(earlier).toMatchObject({ scope: 'superseded', usage_rows: 0 });
    expect(later).toMatchObject({ scope: 'erased', usage_rows: 1 });
  });
});
