/**
 * The PostgreSQL part of an erasure's second sweep, in the caller's transaction: the erased
 * tenant's ledger rows that appeared after the first sweep are deleted (or re-keyed to the
 * erasure's pseudonym, when billing records are kept) and the hourly rollups corrected by
 * exactly those rows; its rejected events go too. Only rows booked before the scope's cut-off
 * are touched (sweep-scope.ts), so a tenant created again under the same id keeps its own usage.
 *
 * Rollups are corrected by subtraction rather than deleted or re-keyed wholesale, because an
 * hour can hold rows of both incarnations once the id is in use again.
 */
import { LEDGER_LOCK } from '../ledger/book-events.js';
import { REJECTS_OF_TENANT, rejectPattern } from './erase-postgres.js';
import type { Db } from '../stores/postgres.js';

/** What the sweep removed (or pseudonymised, for usage rows). */
export interface PostgresResweep {
  usage_rows: number;
  rejected_events: number;
}

const SUMS = [
  'input_tokens',
  'output_tokens',
  'cached_input_tokens',
  'cache_write_tokens',
  'reasoning_tokens',
];
const COLUMNS = ['requests', ...SUMS, 'cost_usd', 'unpriced_requests'];

// $1 tenant, $2 cut-off, $3 pseudonym (null: delete). The rows either go or move to $3; their
// sums per UTC hour (bucketed as bookEvents buckets them) leave the tenant's rollups and, when
// they move, join the pseudonym's.
const SWEEP_ROWS = (move: string) => `
WITH swept AS (
  ${move} WHERE tenant_id = $1 AND ingested_at < $2
  RETURNING ts, cost_usd, ${SUMS.join(', ')}
), hours AS (
  SELECT date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, count(*) AS requests,
         ${SUMS.map((c) => `sum(${c}) AS ${c}`).join(', ')},
         coalesce(sum(cost_usd), 0) AS cost_usd, count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_requests
    FROM swept GROUP BY 1
), taken AS (
  UPDATE usage_hourly h SET ${COLUMNS.map((c) => `${c} = h.${c} - s.${c}`).join(', ')}
    FROM hours s WHERE h.tenant_id = $1 AND h.hour = s.hour
  RETURNING 1
), given AS (
  INSERT INTO usage_hourly AS h (tenant_id, hour, ${COLUMNS.join(', ')})
  SELECT $3::text, hour, ${COLUMNS.join(', ')} FROM hours WHERE $3::text IS NOT NULL
  ON CONFLICT (tenant_id, hour) DO UPDATE SET ${COLUMNS.map((c) => `${c} = h.${c} + EXCLUDED.${c}`).join(', ')}
  RETURNING 1
)
SELECT (SELECT count(*) FROM swept)::int AS usage_rows`;

const DELETE_ROWS = SWEEP_ROWS('DELETE FROM usage_ledger');
const PSEUDONYMISE_ROWS = SWEEP_ROWS('UPDATE usage_ledger SET tenant_id = $3');

/** Sweeps what the erased tenant left in PostgreSQL before `before`; takes the ledger lock. */
export async function resweepPostgres(
  db: Db,
  tenant: string,
  pseudonym: string | undefined,
  before: Date,
): Promise<PostgresResweep> {
  // Exclusively, as the erasure does: a booking in flight finishes first, so none of its rows
  // (booked at its transaction's start, so before the cut-off) can slip past this sweep.
  await db.query(`SELECT pg_advisory_xact_lock($1)`, [LEDGER_LOCK]);
  const { rows } = await db.query(pseudonym ? PSEUDONYMISE_ROWS : DELETE_ROWS, [
    tenant,
    before,
    pseudonym ?? null,
  ]);
  // A rollup every row of which was swept is empty now (bookEvents never writes a zero one).
  await db.query(`DELETE FROM usage_hourly WHERE tenant_id = $1 AND requests <= 0`, [tenant]);
  const rejects = await db.query(
    `DELETE FROM usage_rejects WHERE (${REJECTS_OF_TENANT}) AND rejected_at < $3`,
    [tenant, rejectPattern(tenant), before],
  );
  return {
    usage_rows: (rows[0] as { usage_rows: number }).usage_rows,
    rejected_events: rejects.rowCount ?? 0,
  };
}
