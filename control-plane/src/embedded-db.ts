/**
 * The embedded database: PGlite (PostgreSQL compiled to WebAssembly, in this process) behind
 * its PostgreSQL wire-protocol socket server on 127.0.0.1 and a port the OS picks. `pg`, the
 * stores and the SQL migrations therefore run unchanged; only the URL differs.
 *
 * It is for one machine (a demo, a laptop, a single small install): one process owns the data
 * directory, and every query runs one at a time on PGlite's single backend. The socket server
 * accepts several connections and queues their queries (transactions stay whole: while one
 * connection is inside a transaction, the others wait), so the pool is kept small rather than
 * at one: the erasure route holds a lock client while it queries through the pool, and would
 * deadlock on a single connection.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/** Connections the socket server accepts; above POOL_MAX to leave room for the migration client. */
const SOCKET_MAX_CONNECTIONS = 8;
/** The control plane's pool size in embedded mode (PostgreSQL mode uses 10). */
export const EMBEDDED_POOL_MAX = 4;

/** A running embedded database. */
export interface EmbeddedDatabase {
  /** A postgres:// URL for `pg` (the socket server's address). */
  url: string;
  /** The absolute data directory, or undefined for an in-memory database. */
  dataDir?: string;
  close(): Promise<void>;
}

/**
 * Opens (creating when absent) the database in `dataDir` and serves it on 127.0.0.1:0.
 * `dataDir` undefined keeps it in memory, for tests (which also open more connections).
 */
export async function startEmbeddedDatabase(
  dataDir: string | undefined,
  opts: { maxConnections?: number } = {},
): Promise<EmbeddedDatabase> {
  const dir = dataDir === undefined ? undefined : resolve(dataDir);
  if (dir) await mkdir(dir, { recursive: true });
  const db = await PGlite.create(dir);
  const server = new PGLiteSocketServer({
    db,
    host: '127.0.0.1',
    port: 0,
    maxConnections: opts.maxConnections ?? SOCKET_MAX_CONNECTIONS,
  });
  try {
    await server.start();
  } catch (error) {
    await db.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    ...(dir ? { dataDir: dir } : {}),
    close: () =>
      (closing ??= (async () => {
        await server.stop();
        // Closing flushes PGlite's files to the data directory.
        await db.close();
      })()),
  };
}
