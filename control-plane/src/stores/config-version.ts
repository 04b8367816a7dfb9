/**
 * The config's monotonic version, the ETag of GET /v1/config. Every change a proxy can see
 * bumps it inside the change's own transaction. A price version that becomes effective by
 * the clock (not by a write) bumps it too, through `syncPricingVersion`.
 */
import type { Db } from './postgres.js';

/** Increments the version; returns the new value. Call inside the change's transaction. */
export async function bumpConfigVersion(db: Db): Promise<number> {
  const { rows } = await db.query(
    `UPDATE config_version SET version = version + 1, updated_at = now() WHERE id = 1 RETURNING version`,
  );
  return rows[0].version as number;
}

export async function currentConfigVersion(db: Db): Promise<number> {
  const { rows } = await db.query(`SELECT version FROM config_version WHERE id = 1`);
  return rows[0].version as number;
}

/**
 * Bumps the version when the price version in force differs from the one the counter last
 * covered. Returns the new version when it bumped, undefined otherwise. Safe to call from
 * many replicas at once: the conditional UPDATE makes only one of them bump.
 */
export async function syncPricingVersion(
  db: Db,
  effectivePriceVersion: number | null,
): Promise<number | undefined> {
  const { rows } = await db.query(
    `UPDATE config_version SET version = version + 1, pricing_version = $1, updated_at = now()
      WHERE id = 1 AND pricing_version IS DISTINCT FROM $1 RETURNING version`,
    [effectivePriceVersion],
  );
  return rows[0]?.version as number | undefined;
}
