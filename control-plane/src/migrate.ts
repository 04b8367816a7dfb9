/**
 * Schema migrations: numbered SQL files in control-plane/migrations, applied by
 * node-pg-migrate (one transaction for the whole run, under its advisory lock, recorded in
 * schema_migrations). Start-up calls `assertSchemaCurrent` so a control plane never runs
 * against a schema it was not built for.
 */
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import type pg from 'pg';
import { SchemaNotCurrentError } from './errors.js';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));
const MIGRATIONS_TABLE = 'schema_migrations';

/** What a migration run reports through. */
export interface MigrateLogger {
  info(message: string): void;
}

/** Applies every pending migration; returns the names applied (empty when already current). */
export async function runMigrations(databaseUrl: string, logger?: MigrateLogger): Promise<string[]> {
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
