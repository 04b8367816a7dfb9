/**
 * The embedded database: PGlite (PostgreSQL compiled to WebAssembly, in this process) behind
 * its PostgreSQL wire-protocol socket server. `pg`, the stores and the SQL migrations therefore
 * run unchanged; only the URL differs.
 *
 * The socket server has no authentication, so it listens on a Unix socket in a directory only
 * this user can enter, never on TCP: on loopback any local user could have read the keys' hashes
 * and the usage, or written a key of their own. The data directory is likewise made private
 * (0700), as PostgreSQL itself insists.
 *
 * It is for one machine (a demo, a laptop, a single small install): one process owns the data
 * directory, and every query runs one at a time on PGlite's single backend. The socket server
 * accepts several connections and queues their queries (transactions and extended-protocol
 * queries stay whole: embedded-queue.ts), so the pool is kept small rather than
 * at one: the erasure route holds a lock client while it queries through the pool, and would
 * deadlock on a single connection.
 */
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { isolateConnections } from './embedded-queue.js';

/** Connections the socket server accepts; above POOL_MAX to leave room for the migration client. */
const SOCKET_MAX_CONNECTIONS = 8;
/** The control plane's pool size in embedded mode (PostgreSQL mode uses 10). */
export const EMBEDDED_POOL_MAX = 4;

/** A running embedded database. */
export interface EmbeddedDatabase {
  /** A postgres:// URL for `pg`: the Unix socket's directory as its `host` parameter. */
  url: string;
  /** The absolute data directory, or undefined for an in-memory database. */
  dataDir?: string;
  close(): Promise<void>;
}

/** The port in the socket's file name, which is all `pg` takes from it on a Unix socket. */
const SOCKET_PORT = 5432;

/**
 * Opens (creating when absent) the database in `dataDir` and serves it on a private Unix
 * socket. `dataDir` undefined keeps it in memory, for tests (which also open more connections).
 */
export async function startEmbeddedDatabase(
  dataDir: string | undefined,
  opts: { maxConnections?: number } = {},
): Promise<EmbeddedDatabase> {
  const dir = dataDir === undefined ? undefined : resolve(dataDir);
  if (dir) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // A directory made earlier (or by hand) with the usual 0755 is narrowed too.
    await chmod(dir, 0o700);
  }
  const db = await PGlite.create(dir);
  // mkdtemp makes the directory 0700; a short path under tmpdir keeps the socket's name within
  // the ~107 bytes a Unix socket path may have, wherever the data directory is.
  const socketDir = await mkdtemp(join(tmpdir(), 'lanekeeper-pglite-'));
  const server = new PGLiteSocketServer({
    db,
    path: join(socketDir, `.s.PGSQL.${SOCKET_PORT}`),
    maxConnections: opts.maxConnections ?? SOCKET_MAX_CONNECTIONS,
  });
  isolateConnections(server, db);
  try {
    await server.start();
  } catch (error) {
    await db.close();
    await rm(socketDir, { recursive: true, force: true });
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    url: `postgres://postgres@/postgres?host=${encodeURIComponent(socketDir)}&port=${SOCKET_PORT}`,
    ...(dir ? { dataDir: dir } : {}),
    close: () =>
      (closing ??= (async () => {
        await server.stop();
        // Closing flushes PGlite's files to the data directory.
        await db.close();
        await rm(socketDir, { recursive: true, force: true });
      })()),
  };
}
