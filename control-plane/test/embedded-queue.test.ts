/**
 * Connections to the embedded database share PGlite's one session (embedded-queue.ts): a
 * pool's concurrent queries, with parameters and in transactions, each get their own rows.
 */
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
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

  it('goes on serving after a client goes away between the Parse and the Sync of its query', async () => {
    // A raw connection: startup, then a lone Parse, which holds the session for its Sync.
    const socketDir = new URLSearchParams(db.url.split('?')[1]).get('host')!;
    const socket = createConnection(join(socketDir, '.s.PGSQL.5432'));
    const frame = (type: string, body: Buffer) => {
      const head = Buffer.alloc(5);
      head.write(type, 0, 'latin1');
      head.writeInt32BE(body.length + 4, 1);
      return Buffer.concat([head, body]);
    };
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const params = Buffer.from('user\0postgres\0database\0postgres\0\0', 'latin1');
    const startup = Buffer.alloc(8);
    startup.writeInt32BE(params.length + 8, 0);
    startup.writeInt32BE(196_608, 4);
    const ready = new Promise<void>((resolve) => {
      let seen = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        seen = Buffer.concat([seen, chunk]);
        // ReadyForQuery, idle: the startup is over.
        if (seen.includes(Buffer.from([0x5a, 0, 0, 0, 5, 0x49]))) resolve();
      });
    });
    socket.write(Buffer.concat([startup, params]));
    await ready;
    socket.write(frame('P', Buffer.from('\0SELECT $1::int\0\0\0', 'latin1')));
    await delay(200);
    socket.destroy();
    const answered = await Promise.race([
      Promise.all(Array.from({ length: 10 }, (_, i) => plain(i, 'b'))).then((rs) =>
        rs.map((r) => r.rows[0].n),
      ),
      delay(5_000).then(() => 'stuck'),
    ]);
    expect(answered).toEqual(Array.from({ length: 10 }, (_, i) => i));
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
