/**
 * Migration runs started together (two compose replicas, an init container beside the Helm
 * hook) take turns: before, node-pg-migrate's lock was only tried, and of two runs one
 * exited 1 with "Another migration is already running" (1 run in 3).
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { runMigrations, shippedMigrations } from '../src/migrate.js';
import { createTestEnv, type TestEnv } from './helpers/test-env.js';

let t: TestEnv | undefined;
afterEach(async () => {
  await t?.dispose();
  t = undefined;
});

describe('migration runs at the same time', () => {
  it('all succeed on an empty database, one applying everything and the others nothing', async () => {
    const shipped = await shippedMigrations();
    for (let round = 0; round < 3; round++) {
      t = await createTestEnv({ migrated: false });
      const url = t.databaseUrl;
      const runs = await Promise.all([runMigrations(url), runMigrations(url), runMigrations(url)]);
      expect(runs.map((names) => names.length).sort()).toEqual([0, 0, shipped.length]);
      expect(runs.find((names) => names.length > 0)).toEqual(shipped);
      const { rows } = await t.pool.query('SELECT count(*)::int AS n FROM schema_migrations');
      expect(rows[0].n).toBe(shipped.length);
      await t.dispose();
      t = undefined;
    }
  });

  it('waits for a run that holds the lock, says so once, then finds nothing to do', async () => {
    t = await createTestEnv();
    const holder = new pg.Client({ connectionString: t.databaseUrl });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [0x4c4b4d49]);
      const said: string[] = [];
      let done = false;
      const run = runMigrations(t.databaseUrl, { info: (message) => said.push(message) }).then((names) => {
        done = true;
        return names;
      });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(done).toBe(false);
      expect(said.filter((m) => m.includes('waiting for it'))).toHaveLength(1);
      await holder.query('SELECT pg_advisory_unlock($1)', [0x4c4b4d49]);
      expect(await run).toEqual([]);
    } finally {
      await holder.end();
    }
  });

  it('fails as an error, not a crash, when the session waiting for the lock is ended', async () => {
    t = await createTestEnv();
    const holder = new pg.Client({ connectionString: t.databaseUrl });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [0x4c4b4d49]);
      const run = runMigrations(t.databaseUrl).then(
        () => undefined,
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      await holder.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lanekeeper-migrate-lock'`,
      );
      expect(await run).toBeInstanceOf(Error);
    } finally {
      await holder.end();
    }
  });
});
