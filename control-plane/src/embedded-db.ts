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
import { chmod, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
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

/** The file that says which process has a data directory open. */
const LOCK_FILE = 'lanekeeper.lock';

/** Data directories this process has open. */
const openHere = new Set<string>();

/** A data directory opened by another live process: an operator's mistake, told without a stack. */
export class DataDirInUseError extends Error {
  readonly code = 'CP_ERR_DATA_DIR_IN_USE';
}

/**
 * Takes the data directory for this process, or throws DataDirInUseError naming the process
 * that has it. PGlite takes no lock of its own, and two processes on one directory each
 * acknowledged writes that one of them then lost (found by review: `npm run demo` and
 * `lanekeeper control-plane` from the repository both default to `.lanekeeper/data`). A lock
 * left by a process that is gone (killed, crashed) is taken over.
 */
async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  // This process's own (a lock file naming this pid may also be a dead process's that had
  // the same pid, as PID 1 in a container after a restart: taken over below).
  if (openHere.has(dir))
    throw new DataDirInUseError(`the data directory ${dir} is already open in this process`);
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      openHere.add(dir);
      return async () => {
        openHere.delete(dir);
        await unlink(path).catch(() => undefined);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
      throw new DataDirInUseError(
        `the data directory ${dir} is open in process ${holder}: two control planes must never share one (stop it, or give this one its own LANEKEEPER_DATA_DIR)`,
      );
    }
    // Its process is gone: the lock is stale.
    await unlink(path).catch(() => undefined);
  }
  throw new DataDirInUseError(`could not take ${path}: another process keeps taking it`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

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
  const unlock = dir ? await lockDataDir(dir) : async () => undefined;
  let db: PGlite;
  try {
    db = await PGlite.create(dir);
  } catch (error) {
    await unlock();
    throw error;
  }
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
    await unlock();
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
        await unlock();
      })()),
  };
}
