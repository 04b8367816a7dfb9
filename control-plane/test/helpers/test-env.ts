/**
 * A private world for one test file: a fresh PostgreSQL database (migrated), a unique Redis
 * key prefix, and tokens, all derived from DATABASE_URL / REDIS_URL when set. `dispose()`
 * drops the database and deletes every Redis key under the prefix, nothing else.
 *
 * With LANEKEEPER_TEST_DB=pglite the database is instead an in-memory PGlite behind its socket
 * server, one per test file, so the same tests prove the embedded mode.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { startEmbeddedDatabase } from '../../src/embedded-db.js';
import { migrate } from '../../src/main.js';

export const BASE_DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** True when the suite runs on the embedded database (the `pglite` vitest project). */
export const ON_PGLITE = process.env.LANEKEEPER_TEST_DB === 'pglite';

/** One test file's database, prefix and environment. */
export interface TestEnv {
  env: NodeJS.ProcessEnv;
  databaseUrl: string;
  prefix: string;
  adminToken: string;
  proxyToken: string;
  pool: pg.Pool;
  redis: Redis;
  dispose(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Creates the database (migrated unless `migrated: false`) and the Redis prefix. */
export async function createTestEnv(
  opts: { migrated?: boolean; extra?: NodeJS.ProcessEnv } = {},
): Promise<TestEnv> {
  const id = randomBytes(5).toString('hex');
  const database = `lk_cp_test_${id}`;
  // Test pools, control planes and ledger children share one PGlite: allow them all.
  const embedded = ON_PGLITE ? await startEmbeddedDatabase(undefined, { maxConnections: 64 }) : undefined;
  if (!embedded) {
    const admin = new pg.Client({ connectionString: BASE_DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
  }
  const databaseUrl = embedded?.url ?? withDatabase(BASE_DATABASE_URL, database);
  const prefix = `lk-test-${id}:`;
  const adminToken = `admin-${randomBytes(16).toString('hex')}`;
  const proxyToken = `proxy-${randomBytes(16).toString('hex')}`;
  const env: NodeJS.ProcessEnv = {
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    LANEKEEPER_ADMIN_TOKEN: adminToken,
    LANEKEEPER_PROXY_TOKEN: proxyToken,
    PORT: '0',
    HOST: '127.0.0.1',
    LANEKEEPER_KEY_PREFIX: prefix,
    LANEKEEPER_LEDGER_CONSUMER: `ledger-${id}`,
    LANEKEEPER_LOG_LEVEL: 'silent',
    LANEKEEPER_ERASURE_PROPAGATION_MS: '50',
    ...opts.extra,
  };
  if (opts.migrated !== false) await migrate(env);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 3 });
  const redis = new Redis(REDIS_URL);
  return {
    env,
    databaseUrl,
    prefix,
    adminToken,
    proxyToken,
    pool,
    redis,
    async dispose() {
      await pool.end();
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await redis.unlink(...keys);
      } while (cursor !== '0');
      await redis.quit();
      if (embedded) return embedded.close();
      const c = new pg.Client({ connectionString: BASE_DATABASE_URL });
      await c.connect();
      // Connections still closing would be killed by FORCE (and surface as unhandled errors in
      // their clients): give them a moment first, and force only what is truly left over.
      for (let attempt = 0; ; attempt++) {
        try {
          await c.query(`DROP DATABASE IF EXISTS ${database}${attempt >= 20 ? ' WITH (FORCE)' : ''}`);
          break;
        } catch (error) {
          if (attempt >= 20) throw error;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await c.end();
    },
  };
}
