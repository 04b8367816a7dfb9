/**
 * Schema migrations: numbered SQL files in control-plane/migrations, applied by
 * node-pg-migrate (one transaction for the whole run, under its advisory lock, recorded in
 * schema_migrations). Start-up calls `assertSchemaCurrent` so a control plane never runs
 * against a schema it was not built for.
 */
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { SchemaNotCurrentError } from './errors.js';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));
const MIGRATIONS_TABLE = 'schema_migrations';

/** What a migration run reports through. */
export interface MigrateLogger {
  info(message: string): void;
}

/** Our own advisory lock, apart from node-pg-migrate's ("LKMI"). */
const LOCK_KEY = 0x4c4b4d49;
/** How long a run waits for another before it gives up. */
const LOCK_WAIT_MS = 15 * 60_000;

/**
 * Runs `run` once no other migration run holds the lock. node-pg-migrate only tries its own
 * lock: of two runs started together (two compose replicas, an init container beside the
 * Helm hook), one exited 1 with "Another migration is already running" and a stack trace.
 * This one waits its turn, then finds nothing left to do.
 */
async function oneAtATime<T>(
  databaseUrl: string,
  logger: MigrateLogger | undefined,
  run: () => Promise<T>,
  waitMs = LOCK_WAIT_MS,
): Promise<T> {
  const client = new pg.Client({
    connectionString: databaseUrl,
    application_name: 'lanekeeper-migrate-lock',
  });
  // A session ended under it (a failover, an administrator) is an error event: unhandled, it
  // crashed the run. The run itself goes on; its own connection and transaction decide.
  client.on('error', () => undefined);
  await client.connect();
  try {
    // The lock's session idles while the run works on its own connection: a server's
    // idle_session_timeout (PostgreSQL 14+) must not end it, and the lock with it.
    await client.query('SET idle_session_timeout = 0').catch(() => undefined);
    const deadline = Date.now() + waitMs;
    let said = false;
    while (!(await client.query('SELECT pg_try_advisory_lock($1) AS ok', [LOCK_KEY])).rows[0].ok) {
      if (Date.now() >= deadline)
        throw new Error(`another migration run held the lock for over ${Math.round(waitMs / 1000)} s`);
      if (!said) logger?.info('another migration run is under way: waiting for it to finish');
      said = true;
      await sleep(250);
    }
    return await run();
  } finally {
    // Ending the session releases the lock.
    await client.end().catch(() => undefined);
  }
}

/** Applies every pending migration; returns the names applied (empty when already current). */
export async function runMigrations(databaseUrl: string, logger?: MigrateLogger): Promise<string[]> {
  return oneAtATime(databaseUrl, logger, () => migrateUp(databaseUrl, logger));
}

async function migrateUp(databaseUrl: string, logger?: MigrateLogger): Promise<string[]> {
  const quiet = (message: string) => {
    // Numbered (not timestamped) file names are deliberate; node-pg-migrate grumbles about them.
    if (message.startsWith("Can't determine timestamp")) return;
    // The runner prints the connection error with its stack, then throws it: the caller
    // reports the thrown error once, in one line.
    if (message.startsWith('could not connect to postgres')) return;
    logger?.info(message);
  };
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: MIGRATIONS_TABLE,
    singleTransaction: true,
    checkOrder: true,
    logger: { debug: () => {}, info: quiet, warn: quiet, error: quiet },
  });
  return applied.map((m) => m.name);
}

/** Names of the migrations this build ships, in order. */
export async function shippedMigrations(): Promise<string[]> {
  const files = await readdir(MIGRATIONS_DIR);
  return files
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => f.slice(0, -'.sql'.length));
}

/** Throws SchemaNotCurrentError unless the database has exactly this build's migrations. */
export async function assertSchemaCurrent(pool: pg.Pool): Promise<void> {
  const shipped = await shippedMigrations();
  const exists = await pool.query(`SELECT to_regclass($1) AS t`, [MIGRATIONS_TABLE]);
  const applied: string[] = exists.rows[0]?.t
    ? (await pool.query(`SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY run_on, id`)).rows.map((r) => r.name)
    : [];
  const missing = shipped.filter((name) => !applied.includes(name));
  if (missing.length > 0) {
    throw new SchemaNotCurrentError(
      `the database schema is not current (missing migrations: ${missing.join(', ')}); run \`npx lanekeeper migrate\` first`,
    );
  }
  const unknown = applied.filter((name) => !shipped.includes(name));
  if (unknown.length > 0) {
    throw new SchemaNotCurrentError(
      `the database has migrations this build does not know (${unknown.join(', ')}): it was migrated by a newer control plane`,
    );
  }
}
