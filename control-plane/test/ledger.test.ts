/**
 * Ledger exactness: 1,000 usage events, a quarter of them delivered twice, booked by
 * consumers that are really killed (SIGKILL) mid-run, one of them between COMMIT and XACK.
 * After a restart the ledger holds exactly 1,000 rows, and the rows, the hourly rollups and
 * the usage API all agree with totals computed independently here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLedgerConsumer } from '../src/ledger/consumer.js';
import { startControlPlane } from '../src/main.js';
import { createMetrics } from '../src/metrics.js';
import { createPool } from '../src/stores/postgres.js';
import { call } from './helpers/http.js';
import { createTestEnv, REDIS_URL, type TestEnv } from './helpers/test-env.js';

const CHILD = fileURLToPath(new URL('./helpers/ledger-child.ts', import.meta.url));
const GROUP = 'lanekeeper-ledger';
const PRICE = { input: 0.15, output: 0.6, cached_input: 0.075 };
const HOUR = 3_600_000;

let t: TestEnv;
let cp: { url: string; close(): Promise<void> };
let stream: string;
const children: ChildProcess[] = [];

/** Deterministic pseudo-random numbers (mulberry32), so a failure reproduces. */
function rng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

interface Ev {
  request_id: string;
  ts: string;
  tenant: string;
  model: string;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  reasoning_tokens: number;
}

/** An event of one token in and one out, now, for `tenant` (request_id to be set). */
function oneTokenEach(tenant: string): Ev {
  return {
    request_id: 'x',
    ts: new Date().toISOString(),
    tenant,
    model: 'gpt-4o-mini',
    input_tokens: 1,
    output_tokens: 1,
    cached_input_tokens: 0,
    cache_write_tokens: 0,
    reasoning_tokens: 0,
  };
}

function eventOf(e: Ev) {
  return {
    v: 1,
    ...e,
    plan: 'free',
    dialect: 'openai',
    endpoint: 'chat',
    model_requested: null,
    upstream_model: e.model,
    cost_usd: null,
    status: 200,
    stream: false,
    provenance: 'reported',
    latency_ms: 12,
    ttfb_ms: 5,
  };
}

function costOf(e: Ev): number | null {
  if (e.model !== 'gpt-4o-mini') return null;
  const cached = Math.min(e.cached_input_tokens, e.input_tokens);
  const written = Math.min(e.cache_write_tokens, e.input_tokens - cached);
  const fresh = e.input_tokens - cached - written;
  return (
    (fresh * PRICE.input +
      cached * PRICE.cached_input +
      written * PRICE.input +
      e.output_tokens * PRICE.output) /
    1e6
  );
}

function startChild(consumer: string, extra: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: {
      ...process.env,
      DATABASE_URL: t.databaseUrl,
      REDIS_URL,
      STREAM: stream,
      GROUP,
      CONSUMER: consumer,
      BATCH: '50',
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return child;
}

const exited = (child: ChildProcess) =>
  new Promise<NodeJS.Signals | number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.signalCode ?? child.exitCode);
    else child.once('exit', (code, signal) => resolve(signal ?? code));
  });

async function ledgerRows(): Promise<number> {
  return (await t.pool.query(`SELECT count(*)::int AS n FROM usage_ledger`)).rows[0].n;
}

/** Polls `check` every 50 ms until it holds; fails after `limitMs` (a bound, not a speed assertion). */
async function until(check: () => Promise<boolean>, what: string, limitMs = 60_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs one in-process ledger consumer until the stream has no lag and nothing pending, then stops it. */
async function runUntilCaughtUp(options: {
  streamKey: string;
  consumer: string;
  batch: number;
  claimIdleMs: number;
}): Promise<void> {
  const consumer = createLedgerConsumer({
    redis: new Redis(REDIS_URL, { maxRetriesPerRequest: null }),
    pool: createPool(t.databaseUrl),
    group: GROUP,
    blockMs: 100,
    metrics: createMetrics(),
    logger: pino({ level: 'silent' }),
    ...options,
  });
  await consumer.start();
  try {
    await until(async () => {
      const { lag, pending } = await consumer.lag();
      return lag === 0 && pending === 0;
    }, 'the ledger to catch up');
  } finally {
    await consumer.close();
  }
}

beforeAll(async () => {
  t = await createTestEnv({ extra: { LANEKEEPER_LEDGER_ENABLED: 'false' } });
  stream = `${t.prefix}usage`;
  cp = await startControlPlane(t.env);
  const admin = (method: string, path: string, body?: unknown) =>
    call(cp.url, method, path, { token: t.adminToken, body });
  await admin('POST', '/v1/plans', { id: 'free', models: { default: 'gpt-4o-mini' } });
  await admin('POST', '/v1/tenants', { id: 'acme', plan: 'free' });
  await admin('POST', '/v1/tenants', { id: 'beta', plan: 'free' });
  await admin('POST', '/v1/pricing/versions', {
    effective_from: '2026-01-01T00:00:00Z',
    prices: { 'gpt-4o-mini': PRICE },
  });
});

afterAll(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await cp?.close();
  await t?.dispose();
});

describe('the usage ledger', () => {
  it('books exactly 1,000 rows from 1,250 deliveries across two killed consumers', async () => {
    const random = rng(42);
    const base = Date.now() - 5 * HOUR;
    const events: Ev[] = Array.from({ length: 1000 }, (_, i) => {
      const input = 1 + Math.floor(random() * 5000);
      return {
        request_id: `req-${i}`,
        ts: new Date(base + Math.floor(random() * 5 * HOUR)).toISOString(),
        tenant: random() < 0.6 ? 'acme' : 'beta',
        model: random() < 0.9 ? 'gpt-4o-mini' : 'unpriced-model',
        input_tokens: input,
        output_tokens: Math.floor(random() * 2000),
        cached_input_tokens: Math.floor(random() * input),
        cache_write_tokens: Math.floor(random() * 100),
        reasoning_tokens: Math.floor(random() * 50),
      };
    });
    // Every fourth event is delivered twice, the copy somewhere later in the stream.
    const deliveries = [...events];
    events.forEach((e, i) => {
      if (i % 4 === 0)
        deliveries.splice(Math.min(deliveries.length, i + 1 + Math.floor(random() * 400)), 0, e);
    });
    expect(deliveries).toHaveLength(1250);
    const redis = new Redis(REDIS_URL);
    await redis.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM');
    const pipeline = redis.pipeline();
    for (const e of deliveries) pipeline.xadd(stream, '*', 'event', JSON.stringify(eventOf(e)));
    pipeline.xadd(stream, '*', 'event', '{"not": "an event"');
    await pipeline.exec();

    // 1. A consumer that dies right after committing its 5th batch, before acknowledging it.
    const crasher = startChild('c1', { CRASH_AFTER_BATCHES: '5' });
    expect(await exited(crasher)).toBe('SIGKILL');
    const afterCrash = await ledgerRows();
    expect(afterCrash).toBeGreaterThan(0);
    const pendingC1 = (await redis.xpending(stream, GROUP)) as [number, ...unknown[]];
    expect(pendingC1[0]).toBe(50); // the committed-but-unacknowledged batch

    // 2. Another consumer, killed from outside at an arbitrary moment while it books.
    const victim = startChild('c2');
    await until(async () => (await ledgerRows()) > afterCrash + 150, 'the second consumer to book rows');
    victim.kill('SIGKILL');
    expect(await exited(victim)).toBe('SIGKILL');

    // 3. c1 comes back: its own pending batch first, then c2's abandoned entries, then the rest.
    await runUntilCaughtUp({ streamKey: stream, consumer: 'c1', batch: 50, claimIdleMs: 0 });
    await redis.quit();

    expect(await ledgerRows()).toBe(1000);
    const rejects = await t.pool.query(`SELECT reason FROM usage_rejects`);
    expect(rejects.rows).toEqual([{ reason: 'the event field is not JSON' }]);

    for (const tenant of ['acme', 'beta']) {
      const mine = events.filter((e) => e.tenant === tenant);
      const expected = {
        requests: mine.length,
        input_tokens: mine.reduce((s, e) => s + e.input_tokens, 0),
        output_tokens: mine.reduce((s, e) => s + e.output_tokens, 0),
        cached_input_tokens: mine.reduce((s, e) => s + e.cached_input_tokens, 0),
        cache_write_tokens: mine.reduce((s, e) => s + e.cache_write_tokens, 0),
        reasoning_tokens: mine.reduce((s, e) => s + e.reasoning_tokens, 0),
        unpriced_requests: mine.filter((e) => costOf(e) === null).length,
      };
      const cost = mine.reduce((s, e) => s + (costOf(e) ?? 0), 0);

      const ledger = await t.pool.query(
        `SELECT count(*)::int AS requests, sum(input_tokens)::int AS input_tokens, sum(output_tokens)::int AS output_tokens,
                sum(cached_input_tokens)::int AS cached_input_tokens, sum(cache_write_tokens)::int AS cache_write_tokens,
                sum(reasoning_tokens)::int AS reasoning_tokens, count(*) FILTER (WHERE cost_usd IS NULL)::int AS unpriced_requests,
                sum(cost_usd)::float8 AS cost, count(DISTINCT price_version)::int AS versions
           FROM usage_ledger WHERE tenant_id = $1`,
        [tenant],
      );
      const { cost: ledgerCost, versions, ...ledgerSums } = ledger.rows[0];
      expect(ledgerSums).toEqual(expected);
      expect(ledgerCost).toBeCloseTo(cost, 9);
      expect(versions).toBe(1);

      const report = await call(
        cp.url,
        'GET',
        `/v1/tenants/${tenant}/usage?granularity=hour&from=${new Date(base - HOUR).toISOString()}`,
        {
          token: t.adminToken,
        },
      );
      expect(report.status).toBe(200);
      const { cost_usd: reportCost, ...reportSums } = report.body.total;
      expect(reportSums).toEqual(expected);
      expect(reportCost).toBeCloseTo(cost, 9);
      expect(report.body.buckets.length).toBeGreaterThanOrEqual(5);

      const daily = await call(cp.url, 'GET', `/v1/tenants/${tenant}/usage?granularity=day`, {
        token: t.adminToken,
      });
      expect(daily.body.total.requests).toBe(expected.requests);
    }
  });

  it('isolates an event PostgreSQL refuses, drops events of an erased tenant, books the rest and marks the key used', async () => {
    const key = `${t.prefix}usage-b`;
    await t.pool.query(
      `INSERT INTO audit_log (actor, action, resource, after) VALUES ('admin', 'tenant.erase', 'tenants/gone', '{}')`,
    );
    const sample = oneTokenEach('acme');
    const redis = new Redis(REDIS_URL);
    await redis.xadd(key, '*', 'event', JSON.stringify(eventOf({ ...sample, request_id: 'ok-1' })));
    await redis.xadd(
      key,
      '*',
      'event',
      JSON.stringify({ ...eventOf({ ...sample, request_id: 'huge' }), latency_ms: 1e12 }),
    );
    await redis.xadd(
      key,
      '*',
      'event',
      JSON.stringify(eventOf({ ...sample, request_id: 'late', tenant: 'gone' })),
    );
    const issued = await call(cp.url, 'POST', '/v1/tenants/acme/keys', { token: t.adminToken });
    const sha = createHash('sha256').update(issued.body.key).digest('hex');
    const usedAt = '2026-11-29T10:00:00.000Z';
    await redis.xadd(
      key,
      '*',
      'event',
      JSON.stringify({ ...eventOf({ ...sample, request_id: 'ok-2', ts: usedAt }), api_key_sha256: sha }),
    );
    try {
      await runUntilCaughtUp({ streamKey: key, consumer: 'solo', batch: 10, claimIdleMs: 60_000 });
    } finally {
      await redis.quit();
    }
    const booked = await t.pool.query(
      `SELECT request_id FROM usage_ledger WHERE request_id IN ('ok-1', 'huge', 'late', 'ok-2') ORDER BY 1`,
    );
    expect(booked.rows.map((r) => r.request_id)).toEqual(['ok-1', 'ok-2']);
    const rejected = await t.pool.query(`SELECT reason FROM usage_rejects WHERE payload LIKE '%"huge"%'`);
    expect(rejected.rows[0].reason).toContain('refused by PostgreSQL');
    const keys = await call(cp.url, 'GET', '/v1/tenants/acme/keys', { token: t.adminToken });
    expect(keys.body.items.find((k: { id: string }) => k.id === issued.body.id).last_used_at).toBe(usedAt);
  });

  it('books events holding text PostgreSQL cannot store with it escaped, rejects a payload with a raw U+0000, books the rest', async () => {
    const key = `${t.prefix}usage-c`;
    const sample = oneTokenEach('beta');
    const redis = new Redis(REDIS_URL);
    const add = (payload: string) => redis.xadd(key, '*', 'event', payload);
    try {
      await add(JSON.stringify(eventOf({ ...sample, request_id: 'ok-c1' })));
      await add(
        JSON.stringify({ ...eventOf({ ...sample, request_id: 'nul-c' }), upstream_model: 'gpt\u0000' }),
      );
      await add(
        JSON.stringify({ ...eventOf({ ...sample, request_id: 'sur-c' }), model_requested: 'x\ud800' }),
      );
      // Not JSON at all (a raw U+0000 may not stand in a JSON string), so it is kept as it came.
      await add(`{"v":1,"request_id":"raw-c","tenant":"beta","model":"gpt\u0000"}`);
      await add(JSON.stringify(eventOf({ ...sample, request_id: 'ok-c2' })));
      await runUntilCaughtUp({ streamKey: key, consumer: 'solo-c', batch: 10, claimIdleMs: 60_000 });
    } finally {
      await redis.quit();
    }
    const booked = await t.pool.query(
      `SELECT request_id FROM usage_ledger WHERE request_id IN ('ok-c1', 'nul-c', 'sur-c', 'raw-c', 'ok-c2') ORDER BY 1`,
    );
    expect(booked.rows.map((r) => r.request_id)).toEqual(['nul-c', 'ok-c1', 'ok-c2', 'sur-c']);
    const text = await t.pool.query(
      `SELECT upstream_model, model_requested FROM usage_ledger WHERE request_id IN ('nul-c', 'sur-c') ORDER BY request_id`,
    );
    expect(text.rows[0].upstream_model).toBe('gpt\\u0000');
    expect(text.rows[1].model_requested).toBe('x\\ud800');
    const reject = async (requestId: string) =>
      (
        await t.pool.query(`SELECT payload, reason FROM usage_rejects WHERE payload LIKE $1`, [
          `%"${requestId}"%`,
        ])
      ).rows;
    expect(await reject('nul-c')).toEqual([]);
    expect(await reject('sur-c')).toEqual([]);
    // Kept with the U+0000 written as its escape, the one change that lets PostgreSQL store it.
    expect(await reject('raw-c')).toEqual([
      {
        payload: `{"v":1,"request_id":"raw-c","tenant":"beta","model":"gpt\\u0000"}`,
        reason: 'the event field is not JSON',
      },
    ]);
  });
});
