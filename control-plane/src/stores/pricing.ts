/**
 * The versioned price table. Each version is a whole table (every priced model) with the
 * time it takes effect; the version in force at time t is the latest effective_from <= t.
 * Ledger rows record the version they were priced at, so an invoice can be recomputed.
 */
import type { Price } from '@lanekeeper/contract';
import { num, type Db } from './postgres.js';

/** One version of the price table. */
export interface PriceVersion {
  id: number;
  effective_from: string;
  created_at: string;
  /** USD per 1M tokens, by model: the proxy's `pricing:` shape. */
  prices: Record<string, Price>;
}

interface EntryRow {
  version_id: number;
  effective_from: Date;
  created_at: Date;
  model: string | null;
  input: string;
  output: string;
  cached_input: string | null;
  cache_write: string | null;
}

function group(rows: EntryRow[]): PriceVersion[] {
  const versions = new Map<number, PriceVersion>();
  for (const r of rows) {
    let v = versions.get(r.version_id);
    if (!v) {
      v = {
        id: r.version_id,
        effective_from: r.effective_from.toISOString(),
        created_at: r.created_at.toISOString(),
        prices: {},
      };
      versions.set(r.version_id, v);
    }
    if (r.model === null) continue;
    const price: Price = { input: Number(r.input), output: Number(r.output) };
    if (r.cached_input !== null) price.cached_input = num(r.cached_input) as number;
    if (r.cache_write !== null) price.cache_write = num(r.cache_write) as number;
    v.prices[r.model] = price;
  }
  return [...versions.values()];
}

const SELECT = `SELECT v.id AS version_id, v.effective_from, v.created_at, e.model, e.input, e.output, e.cached_input, e.cache_write
                  FROM price_versions v LEFT JOIN price_entries e ON e.version_id = v.id`;

/** Every version, newest effective first. */
export async function listPriceVersions(db: Db): Promise<PriceVersion[]> {
  const { rows } = await db.query(`${SELECT} ORDER BY v.effective_from DESC, v.id DESC, e.model`);
  return group(rows);
}

/**
 * The version in force at `at` (undefined when none is yet); without `at`, now by the
 * database's clock. Each replica's own
 * clock put two replicas a few seconds apart on either side of a switch: each bumped the
 * config version to its own idea of the prices in force, and proxies flipped between them
 * (found by review). The database's clock is one for all of them.
 */
export async function priceVersionAt(db: Db, at?: Date): Promise<PriceVersion | undefined> {
  const { rows } = await db.query(
    `${SELECT} WHERE v.id = (SELECT id FROM price_versions WHERE effective_from <= coalesce($1, now())
                              ORDER BY effective_from DESC, id DESC LIMIT 1) ORDER BY e.model`,
    [at ?? null],
  );
  return group(rows)[0];
}

/** Milliseconds until the next version takes effect, by the database's clock (for the switch-over timer). */
export async function msToNextPriceSwitch(db: Db): Promise<number | undefined> {
  const { rows } = await db.query(
    `SELECT extract(epoch FROM min(effective_from) - now()) * 1000 AS in_ms
       FROM price_versions WHERE effective_from > now()`,
  );
  const inMs = rows[0]?.in_ms as string | number | null | undefined;
  return inMs === null || inMs === undefined ? undefined : Number(inMs);
}

export async function insertPriceVersion(
  db: Db,
  effectiveFrom: Date,
  prices: Record<string, Price>,
): Promise<PriceVersion> {
  const { rows } = await db.query(`INSERT INTO price_versions (effective_from) VALUES ($1) RETURNING id`, [
    effectiveFrom,
  ]);
  const id = rows[0].id as number;
  for (const [model, p] of Object.entries(prices)) {
    await db.query(
      `INSERT INTO price_entries (version_id, model, input, output, cached_input, cache_write) VALUES ($1, $2, $3, $4, $5, $6)`,
      [id, model, p.input, p.output, p.cached_input ?? null, p.cache_write ?? null],
    );
  }
  const { rows: all } = await db.query(`${SELECT} WHERE v.id = $1 ORDER BY e.model`, [id]);
  return group(all)[0] as PriceVersion;
}
