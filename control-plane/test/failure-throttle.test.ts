/**
 * The wrong-token throttle against a real database (PostgreSQL, and PGlite in the `pglite`
 * project): the limit and its window, one count for every replica, concurrent guesses decided
 * one at a time, rows that go once their failures age out, and hostile addresses.
 */
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { addressKey, createFailureThrottle, storedKey } from '../src/http/failure-throttle.js';
import { startControlPlane } from '../src/main.js';
import { call } from './helpers/http.js';
import { createTestEnv, type TestEnv } from './helpers/test-env.js';

let t: TestEnv;
beforeAll(async () => {
  t = await createTestEnv({ extra: { LANEKEEPER_LEDGER_ENABLED: 'false' } });
});
afterAll(async () => {
  await t?.dispose();
});
beforeEach(async () => {
  await t.pool.query('DELETE FROM auth_failures');
});

function clocked(db: pg.Pool = t.pool) {
  let now = Date.UTC(2026, 11, 6, 12);
  const throttle = createFailureThrottle(db, { now: () => now });
  return { throttle, advance: (ms: number) => (now += ms) };
}

/** Counts the rows written to auth_failures from now on, by a trigger; returns the reader. */
async function countingWrites(): Promise<() => Promise<number>> {
  await t.pool.query(`CREATE TABLE IF NOT EXISTS auth_writes (n int NOT NULL)`);
  await t.pool.query(`DELETE FROM auth_writes`);
  await t.pool.query(
    `CREATE OR REPLACE FUNCTION count_auth_write() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN INSERT INTO auth_writes VALUES (1); RETURN NULL; END; $$`,
  );
  await stopCountingWrites();
  await t.pool.query(
    `CREATE TRIGGER auth_writes_count AFTER INSERT OR UPDATE OR DELETE ON auth_failures
       FOR EACH ROW EXECUTE FUNCTION count_auth_write()`,
  );
  return async () => (await t.pool.query('SELECT count(*)::int AS n FROM auth_writes')).rows[0].n as number;
}

async function stopCountingWrites(): Promise<void> {
  await t.pool.query(`DROP TRIGGER IF EXISTS auth_writes_count ON auth_failures`);
}

const rows = async () =>
  (
    await t.pool.query<{ address: string; n: number }>(
      'SELECT address, cardinality(times) AS n FROM auth_failures ORDER BY address',
    )
  ).rows;

describe('the wrong-token throttle', () => {
  it('lets an address fail ten times in a minute, then refuses it until the oldest failure ages out', async () => {
    const { throttle, advance } = clocked();
    for (let i = 0; i < 10; i++) {
      expect(await throttle.attempt('10.0.0.1', true)).toBeUndefined();
      advance(1000);
    }
    // The first failure was 10 s ago: 50 s left in its window, for a right token too.
    expect(await throttle.attempt('10.0.0.1', true)).toEqual({ retryAfterS: 50 });
    expect(await throttle.attempt('10.0.0.1', false)).toEqual({ retryAfterS: 50 });
    advance(49_999);
    expect(await throttle.attempt('10.0.0.1', false)).toEqual({ retryAfterS: 1 });
    advance(1);
    // One failure left the window: one more try, and the next refusal waits for the second oldest.
    expect(await throttle.attempt('10.0.0.1', true)).toBeUndefined();
    expect(await throttle.attempt('10.0.0.1', false)).toEqual({ retryAfterS: 1 });
  });

  it('does not count attempts it refuses, nor right tokens, nor requests without a token', async () => {
    const { throttle, advance } = clocked();
    for (let i = 0; i < 10; i++) await throttle.attempt('10.0.0.1', true);
    for (let i = 0; i < 50; i++) expect(await throttle.attempt('10.0.0.1', true)).toBeDefined();
    expect(await rows()).toEqual([{ address: '10.0.0.1', n: 10 }]);
    advance(60_000);
    expect(await throttle.attempt('10.0.0.1', false)).toBeUndefined();
    // An address with no failure in the window keeps no row, whatever it sent.
    expect(await rows()).toEqual([]);
    for (let i = 0; i < 30; i++) expect(await throttle.attempt('10.0.0.2', false)).toBeUndefined();
    expect(await rows()).toEqual([]);
  });

  it('answers a request without a token by one read: the same verdict, no row written or locked', async () => {
    const writes = await countingWrites();
    try {
      const { throttle, advance } = clocked();
      for (let i = 0; i < 200; i++) expect(await throttle.blocked(`10.1.0.${i % 50}`)).toBeUndefined();
      expect(await writes()).toBe(0);
      for (let i = 0; i < 10; i++) await throttle.attempt('10.0.0.9', true);
      advance(15_000);
      const before = await writes();
      expect(await throttle.blocked('10.0.0.9')).toEqual({ retryAfterS: 45 });
      expect(await throttle.blocked('10.0.0.9')).toEqual(await throttle.attempt('10.0.0.9', false));
      // The attempt wrote (it settles under the row lock); the two reads did not.
      expect(await writes()).toBe(before + 1);
      advance(45_000);
      expect(await throttle.blocked('10.0.0.9')).toBeUndefined();
    } finally {
      await stopCountingWrites();
    }
  });

  it('writes nothing for admin API calls that send no token', async () => {
    const cp = await startControlPlane(t.env);
    const writes = await countingWrites();
    try {
      const replies = await Promise.all(
        Array.from({ length: 50 }, () => call(cp.url, 'GET', '/v1/tenants').then((r) => r.status)),
      );
      expect(new Set(replies)).toEqual(new Set([401]));
      expect(await writes()).toBe(0);
    } finally {
      await stopCountingWrites();
      await cp.close();
    }
  });

  it('counts each address on its own, IPv6 per /64', async () => {
    const { throttle } = clocked();
    for (let i = 0; i < 10; i++) await throttle.attempt(`2001:db8:1:2::${i}`, true);
    expect(await throttle.attempt('2001:db8:1:2:ffff::1', false)).toBeDefined();
    expect(await throttle.attempt('2001:db8:1:3::1', false)).toBeUndefined();
    expect(await throttle.attempt('10.0.0.1', false)).toBeUndefined();
  });

  it('is one count for every replica: two throttles on two pools of the same database', async () => {
    const other = new pg.Pool({ connectionString: t.databaseUrl, max: 2 });
    try {
      const a = createFailureThrottle(t.pool);
      const b = createFailureThrottle(other);
      for (let i = 0; i < 5; i++) await a.attempt('198.51.100.9', true);
      for (let i = 0; i < 5; i++) await b.attempt('198.51.100.9', true);
      expect(await a.attempt('198.51.100.9', false)).toBeDefined();
      expect(await b.attempt('198.51.100.9', false)).toBeDefined();
    } finally {
      await other.end();
    }
  });

  it('decides concurrent guesses one at a time: a burst of 60 gets 10 verdicts and 50 refusals', async () => {
    const other = new pg.Pool({ connectionString: t.databaseUrl, max: 8 });
    try {
      const replicas = [createFailureThrottle(t.pool), createFailureThrottle(other)];
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) => replicas[i % 2]!.attempt('203.0.113.50', true)),
      );
      expect(results.filter((r) => r === undefined)).toHaveLength(10);
      expect(await rows()).toEqual([{ address: '203.0.113.50', n: 10 }]);
    } finally {
      await other.end();
    }
  });

  it('deletes the rows of addresses whose failures aged out, so a spray does not pile up', async () => {
    const { throttle, advance } = clocked();
    for (let i = 0; i < 10; i++) await throttle.attempt('192.0.2.1', true);
    for (let i = 0; i < 250; i++) await throttle.attempt(`10.1.${i >> 8}.${i & 255}`, true);
    // No table of addresses to push a counted one out of.
    expect(await throttle.attempt('192.0.2.1', false)).toBeDefined();
    expect(await rows()).toHaveLength(251);
    advance(60_000);
    // Each attempt clears up to 100 aged-out rows of other addresses.
    for (let i = 0; i < 3; i++) await throttle.attempt('10.9.9.9', true);
    expect(await rows()).toEqual([{ address: '10.9.9.9', n: 3 }]);
  });

  it('sweeps every address whose failures have aged out, and keeps the others', async () => {
    const { throttle, advance } = clocked();
    for (let i = 0; i < 150; i++) await throttle.attempt(`10.2.${i >> 8}.${i & 255}`, true);
    advance(30_000);
    await throttle.attempt('10.3.0.1', true);
    expect(await throttle.sweep()).toBe(0);
    advance(30_000);
    expect(await throttle.sweep()).toBe(150);
    expect(await rows()).toEqual([{ address: '10.3.0.1', n: 1 }]);
  });

  it('takes any text as an address without throwing, and stores at most 64 plain characters of it', async () => {
    const { throttle } = clocked();
    const hostile = [
      undefined,
      '',
      ':',
      '::',
      ':::::::::',
      'x'.repeat(100_000),
      '%',
      '__proto__',
      'constructor',
      'a\u0000b',
      "'; DROP TABLE auth_failures; --",
      '\ud800',
      '🦜'.repeat(1000),
      'UPPER.case',
    ];
    for (const address of hostile) {
      for (let i = 0; i < 10; i++) await throttle.attempt(address, true);
      expect(await throttle.attempt(address, false), String(address).slice(0, 20)).toBeDefined();
    }
    const stored = await rows();
    // No token and an empty address share one count, as do the IPv6-like texts of one /64.
    expect(stored).toHaveLength(new Set(hostile.map(storedKey)).size);
    expect(stored.length).toBeGreaterThanOrEqual(hostile.length - 3);
    for (const { address } of stored) expect(address).toMatch(/^(sha256:[0-9a-f]{64}|[0-9a-z.:/]{0,64})$/);
    expect(storedKey('x'.repeat(100_000))).not.toBe(storedKey('x'.repeat(99_999)));
  });
});

describe('addressKey', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['::FFFF:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:db8:1:2::', '2001:db8:1:2::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
  ])('counts %s as %s', (address, key) => {
    expect(addressKey(address)).toBe(key);
  });
});
