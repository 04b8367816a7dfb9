/**
 * The PostgreSQL connection pool and the one transaction helper every store uses. Store
 * functions take a `Db` (the pool or a client inside a transaction), so a route composes
 * several of them, plus the config-version bump and the audit record, into one commit.
 */
import pg from 'pg';

/** Anything that runs a query: the pool, or a client inside `withTransaction`. */
export type Db = Pick<pg.Pool, 'query'> | pg.PoolClient;

// bigint counters (token sums, ids) are returned as JS numbers: they stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** A pool for DATABASE_URL (at most `max` connections). */
export function createPool(databaseUrl: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl, max });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  return pool;
}

/** Runs `fn` in one transaction: commits when it resolves, rolls back when it throws. */
export async function withTransaction<T>(pool: pg.Pool, fn: (db: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** A JS number from a numeric column (pg returns numeric as a string to keep precision). */
export function num(value: string | number | null): number | null {
  return value === null ? null : Number(value);
}
