/**
 * Connections to the embedded database share PGlite's one session (embedded-queue.ts): a
 * pool's concurrent queries, with parameters and in transactions, each get their own rows.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../src/embedded-db.js';

let db: EmbeddedDatabase;
let pool: pg.Pool;
beforeAll(async () => {
  db = await startEmbeddedDatabase(undefined);
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
});
afterAll(async () => {
  await pool?.end();
  await db?.close();
});

/** Same parameters, different statements: a query bound to another's statement returns its `src`. */
const plain = (n: number, src: 'a' | 'b') => pool.query(`SELECT $1::int AS n, '${src}' AS src`, [n]);

async function inTransaction(n: number) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await client.query(`SELECT $1::int AS n, 'tx' AS src`, [n]);
    await client.query('COMMIT');
    return result;
  } finally {
    client.release();
  }
}

describe('the embedded database under concurrent connections', () => {
  it('answers each of 300 concurrent queries with its own rows, with and without transactions', async () => {
    const kinds = ['a', 'b', 'tx'] as const;
    const results = await Promise.allSettled(
      Array.from({ length: 300 }, (_, i) => {
        const kind = kinds[i % 3]!;
        return kind === 'tx' ? inTransaction(i) : plain(i, kind);
      }),
    );
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    expect(failed).toEqual([]);
    const answers = results.map((r) => (r as PromiseFulfilledResult<pg.QueryResult>).value.rows[0]);
    expect(answers).toEqual(Array.from({ length: 300 }, (_, i) => ({ n: i, src: kinds[i % 3] })));
  });

  it('goes on serving after a connection fails in the middle of a query', async () => {
    const bad = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => pool.query('SELECT $1::int / 0 AS n', [i])),
    );
    expect(bad.every((r) => r.status === 'rejected')).toBe(true);
    const good = await Promise.all(Array.from({ length: 20 }, (_, i) => plain(i, 'a')));
    expect(good.map((r) => r.rows[0].n)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });
});
