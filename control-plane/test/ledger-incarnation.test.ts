/**
 * A tenant id erased and created again: the usage events of the erased tenant that reach the
 * ledger only afterwards (a proxy's backlog) name the erased incarnation, and are neither
 * booked to the new tenant nor kept as its rejects; they are counted as an erased tenant's.
 * The new tenant's events, and events naming no incarnation, are booked as before. Real
 * PostgreSQL (or PGlite) and Redis, through the stream consumer and POST /v1/usage-events.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INCARNATION_PATTERN, type UsageEvent } from '@lanekeeper/contract';
import type { BookingResult } from '../src/ledger/book-events.js';
import { createLedgerConsumer } from '../src/ledger/consumer.js';
import type { RunningControlPlane } from '../src/main.js';
import { createMetrics } from '../src/metrics.js';
import { createPool } from '../src/stores/postgres.js';
import { call } from './helpers/http.js';
import { startSeeded, stopSeeded } from './helpers/seeded.js';
import { REDIS_URL, type TestEnv } from './helpers/test-env.js';
import { usageEvent } from './helpers/usage-event.js';

let t: TestEnv;
let cp: RunningControlPlane;

const admin = (method: string, path: string, body?: unknown) =>
  call(cp.url, method, path, { token: t.adminToken, body });
const rows = async (sql: string, params: unknown[] = []) => (await t.pool.query(sql, params)).rows;

/** The incarnation the config served to proxies gives `tenant` (undefined: not served). */
async function servedIncarnation(tenant: string): Promise<string | undefined> {
  const config = await call(cp.url, 'GET', '/v1/config', { token: t.proxyToken });
  expect(config.status).toBe(200);
  return config.body.tenants.find((x: { id: string }) => x.id === tenant)?.incarnation;
}

/** Creates `tenant`, erases it, creates it again; returns both incarnations. */
async function eraseAndCreateAgain(tenant: string): Promise<{ erased: string; current: string }> {
  expect((await admin('POST', '/v1/tenants', { id: tenant, plan: 'free' })).status).toBe(201);
  const erased = await servedIncarnation(tenant);
  expect((await admin('DELETE', `/v1/tenants/${tenant}`)).status).toBe(200);
  expect((await admin('POST', '/v1/tenants', { id: tenant, plan: 'free' })).status).toBe(201);
  const current = await servedIncarnation(tenant);
  const stored = await rows(`SELECT incarnation FROM tenants WHERE id = $1`, [tenant]);
  expect(stored).toEqual([{ incarnation: current }]);
  expect(erased).toMatch(INCARNATION_PATTERN);
  expect(current).toMatch(INCARNATION_PATTERN);
  expect(current).not.toBe(erased);
  return { erased: erased!, current: current! };
}

function event(tenant: string, requestId: string, incarnation?: string): UsageEvent {
  return {
    ...usageEvent({ tenant, ts: new Date().toISOString(), model: 'm', input: 10, output: 1 }),
    request_id: requestId,
    ...(incarnation === undefined ? {} : { tenant_incarnation: incarnation }),
  };
}

/** Appends `payloads` to a fresh stream and books them with the real consumer; returns the sums. */
async function bookThroughStream(payloads: string[]): Promise<BookingResult> {
  const streamKey = `${t.prefix}usage-${randomUUID()}`;
  for (const payload of payloads) await t.redis.xadd(streamKey, '*', 'event', payload);
  const total: BookingResult = { inserted: 0, duplicates: 0, rejected: 0, erased: 0 };
  let booked = 0;
  const pool = createPool(t.databaseUrl, 2);
  const consumer = createLedgerConsumer({
    redis: new Redis(REDIS_URL, { maxRetriesPerRequest: null }),
    pool,
    streamKey,
    group: 'ledger',
    consumer: 'solo',
    batch: 50,
    claimIdleMs: 60_000,
    blockMs: 100,
    metrics: createMetrics(),
    logger: pino({ level: 'silent' }),
    afterCommit: (ids, result) => {
      booked += ids.length;
      for (const key of ['inserted', 'duplicates', 'rejected', 'erased'] as const) total[key] += result[key];
    },
  });
  await consumer.start();
  try {
    for (let i = 0; booked < payloads.length; i++) {
      if (i > 600) throw new Error('the ledger did not book the stream');
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await consumer.close();
    await pool.end();
  }
  return total;
}

const ledgerIds = async (tenant: string) =>
  (await rows(`SELECT request_id FROM usage_ledger WHERE tenant_id = $1 ORDER BY 1`, [tenant])).map(
    (r) => r.request_id as string,
  );
const hourlyRequests = async (tenant: string) =>
  (
    await rows(`SELECT coalesce(sum(requests), 0)::int AS n FROM usage_hourly WHERE tenant_id = $1`, [tenant])
  )[0].n as number;
const rejectsOf = async (requestId: string) =>
  (await rows(`SELECT reason FROM usage_rejects WHERE payload LIKE $1`, [`%"${requestId}"%`])).map(
    (r) => r.reason as string,
  );

beforeAll(async () => {
  ({ t, cp } = await startSeeded({
    extra: { LANEKEEPER_LEDGER_ENABLED: 'false', LANEKEEPER_ERASURE_RESWEEP_MS: '3600000' },
  }));
});

afterAll(() => stopSeeded({ t, cp }));

describe('the ledger and a tenant id created again', () => {
  it('books an event of the erased incarnation to no one, counted as erased; the new one and one without an incarnation are booked', async () => {
    const { erased, current } = await eraseAndCreateAgain('again');
    const result = await bookThroughStream([
      JSON.stringify(event('again', 'late-old', erased)),
      JSON.stringify(event('again', 'new', current)),
      JSON.stringify(event('again', 'unnamed')),
    ]);

    expect(result).toEqual({ inserted: 2, duplicates: 0, rejected: 0, erased: 1 });
    expect(await ledgerIds('again')).toEqual(['new', 'unnamed']);
    expect(await hourlyRequests('again')).toBe(2);
    expect(await rejectsOf('late-old')).toEqual([]);
    const usage = await admin('GET', '/v1/tenants/again/usage?granularity=hour');
    expect(usage.body.total).toMatchObject({ requests: 2, input_tokens: 20 });
  });

  it('answers the same over POST /v1/usage-events', async () => {
    const { erased, current } = await eraseAndCreateAgain('again-http');
    const posted = await call(cp.url, 'POST', '/v1/usage-events', {
      token: t.proxyToken,
      body: {
        events: [
          event('again-http', 'http-old', erased),
          event('again-http', 'http-new', current),
          event('again-http', 'http-unnamed'),
        ],
      },
    });
    expect(posted.status).toBe(200);
    expect(posted.body).toMatchObject({ inserted: 2, erased: 1, rejected: 0 });
    expect(await ledgerIds('again-http')).toEqual(['http-new', 'http-unnamed']);
    expect(await hourlyRequests('again-http')).toBe(2);
  });

  it('keeps no reject of the erased incarnation under the new tenant, and keeps the new tenant’s', async () => {
    const { erased, current } = await eraseAndCreateAgain('again-rejects');
    // One PostgreSQL refuses (latency beyond its column), one that is not a valid event.
    const refused = (id: string, incarnation: string) =>
      JSON.stringify({ ...event('again-rejects', id, incarnation), latency_ms: 1e12 });
    const invalid = (id: string, incarnation: string) =>
      JSON.stringify({ ...event('again-rejects', id, incarnation), input_tokens: -1 });
    const result = await bookThroughStream([
      refused('refused-old', erased),
      refused('refused-new', current),
      invalid('invalid-old', erased),
      invalid('invalid-new', current),
      // A version this ledger does not know is parked whatever it names: its fields may mean
      // something else.
      JSON.stringify({ ...event('again-rejects', 'future-old', erased), v: 2 }),
      JSON.stringify(event('again-rejects', 'fine', current)),
    ]);

    expect(result).toEqual({ inserted: 1, duplicates: 0, rejected: 3, erased: 2 });
    expect(await ledgerIds('again-rejects')).toEqual(['fine']);
    expect(await rejectsOf('refused-old')).toEqual([]);
    expect(await rejectsOf('invalid-old')).toEqual([]);
    expect(await rejectsOf('refused-new')).toEqual([expect.stringContaining('refused by PostgreSQL')]);
    expect(await rejectsOf('invalid-new')).toEqual([expect.stringContaining('input_tokens')]);
    expect(await rejectsOf('future-old')).toEqual([expect.stringMatching(/^v: /)]);
  });

  it('drops an event naming an incarnation once its id has no tenant, with or without one', async () => {
    expect((await admin('POST', '/v1/tenants', { id: 'gone', plan: 'free' })).status).toBe(201);
    const incarnation = await servedIncarnation('gone');
    expect((await admin('DELETE', '/v1/tenants/gone')).status).toBe(200);
    const result = await bookThroughStream([
      JSON.stringify(event('gone', 'gone-named', incarnation)),
      JSON.stringify(event('gone', 'gone-unnamed')),
    ]);
    expect(result).toEqual({ inserted: 0, duplicates: 0, rejected: 0, erased: 2 });
    expect(await ledgerIds('gone')).toEqual([]);
  });
});

describe('a hostile tenant_incarnation', () => {
  const HOSTILE: [string, unknown][] = [
    ['a number', 42],
    ['null', null],
    ['an object', { $ne: null }],
    ['an empty string', ''],
    ['a 10 KB string', 'a'.repeat(10_240)],
    ['a UUID with a NUL', '00000000-0000-4000-8000-00000000000\u0000'],
    ['a UUID with a newline', '00000000-0000-4000-8000-000000000000\n'],
    ['an upper-case UUID', '0A0A0A0A-0000-4000-8000-000000000000'],
    ['SQL', "' OR 1=1 --"],
  ];

  it.each(HOSTILE)(
    'in the stream: %s is rejected, naming the field, and books nothing',
    async (_name, value) => {
      const requestId = `hostile-${randomUUID()}`;
      const payload = JSON.stringify({ ...event('hostile', requestId), tenant_incarnation: value });
      const result = await bookThroughStream([payload]);
      expect(result).toEqual({ inserted: 0, duplicates: 0, rejected: 1, erased: 0 });
      expect(await rows(`SELECT 1 FROM usage_ledger WHERE request_id = $1`, [requestId])).toEqual([]);
      const reasons = await rejectsOf(requestId);
      expect(reasons).toHaveLength(1);
      expect(reasons[0]).toMatch(/^tenant_incarnation: /);
      expect(reasons[0]!.length).toBeLessThan(200);
    },
  );

  it.each(HOSTILE)('over HTTP: %s refuses the batch with 400 naming the field', async (_name, value) => {
    const posted = await call(cp.url, 'POST', '/v1/usage-events', {
      token: t.proxyToken,
      body: { events: [{ ...event('hostile', `hostile-${randomUUID()}`), tenant_incarnation: value }] },
    });
    expect(posted.status).toBe(400);
    expect(posted.body.error.message).toMatch(/^events\[0\]\.tenant_incarnation: /);
  });
});
