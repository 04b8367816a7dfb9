/**
 * Usage reports from the hourly rollups (maintained by the ledger in the same transaction
 * as the ledger rows), so a month of a tenant's usage is at most 744 rows to sum. The split
 * by model reads the ledger rows themselves (the rollups are not kept per model), over the
 * tenant's (tenant_id, ts) index.
 */
import type { Db } from './postgres.js';

/** Usage of one bucket (an hour or a UTC day). */
export interface UsageBucket {
  start: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  reasoning_tokens: number;
  /** USD at the price versions in force when each request was made. */
  cost_usd: number;
  /** Requests whose model had no price (their cost is not in cost_usd). */
  unpriced_requests: number;
}

const SUMS = `sum(requests)::bigint AS requests, sum(input_tokens)::bigint AS input_tokens,
  sum(output_tokens)::bigint AS output_tokens, sum(cached_input_tokens)::bigint AS cached_input_tokens,
  sum(cache_write_tokens)::bigint AS cache_write_tokens, sum(reasoning_tokens)::bigint AS reasoning_tokens,
  sum(cost_usd) AS cost_usd, sum(unpriced_requests)::bigint AS unpriced_requests`;

/** A row's sums as numbers; NULL (the grand total over no rows) reads as 0. */
function sumsOf(r: Record<string, unknown>): Omit<UsageBucket, 'start'> {
  return {
    requests: Number(r.requests),
    input_tokens: Number(r.input_tokens),
    output_tokens: Number(r.output_tokens),
    cached_input_tokens: Number(r.cached_input_tokens),
    cache_write_tokens: Number(r.cache_write_tokens),
    reasoning_tokens: Number(r.reasoning_tokens),
    cost_usd: Number(r.cost_usd),
    unpriced_requests: Number(r.unpriced_requests),
  };
}

function bucket(r: Record<string, unknown>): UsageBucket {
  return { start: (r.start as Date).toISOString(), ...sumsOf(r) };
}

/** Usage of a range: its parts (buckets, or models) and their total. */
export interface UsageWithTotal<T> {
  parts: T[];
  /**
   * Summed by PostgreSQL, exactly, and only then made a number: adding the parts' floats
   * put 0.30000000000000004 in an invoice total where the ledger held 0.3.
   */
  total: Omit<UsageBucket, 'start'>;
}

/**
 * Splits rows grouped by GROUPING SETS ((key), ()) into the parts and the grand total (the row
 * whose key is NULL; over no rows at all its sums are NULL, read as 0).
 */
function withTotal<T>(
  rows: Record<string, unknown>[],
  key: string,
  part: (r: Record<string, unknown>) => T,
): UsageWithTotal<T> {
  const totalRow = rows.find((r) => r[key] === null);
  const parts = rows.filter((r) => r !== totalRow).map(part);
  // GROUPING SETS always yields the grand-total row, over no rows too.
  return { parts, total: sumsOf(totalRow!) };
}

/** Buckets with any usage whose start lies in [from truncated to the bucket, to), and their total. */
export async function usageBuckets(
  db: Db,
  tenant: string,
  from: Date,
  to: Date,
  granularity: 'hour' | 'day',
): Promise<UsageWithTotal<UsageBucket>> {
  // Rollup hours are UTC; a day bucket is the UTC calendar day.
  const { rows } = await db.query(
    `WITH hours AS (
       SELECT date_trunc($4, hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start, *
         FROM usage_hourly
        WHERE tenant_id = $1
          AND hour >= date_trunc($4, $2::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
          AND hour < $3
     )
     SELECT start, ${SUMS} FROM hours GROUP BY GROUPING SETS ((start), ()) ORDER BY start NULLS LAST`,
    [tenant, from, to, granularity],
  );
  return withTotal(rows, 'start', bucket);
}

/** Usage of one model over a range. */
export type ModelUsage = { model: string } & Omit<UsageBucket, 'start'>;

/** Each model's usage in [from, to), by model name, and their total; models with no requests are absent. */
export async function usageByModel(
  db: Db,
  tenant: string,
  from: Date,
  to: Date,
): Promise<UsageWithTotal<ModelUsage>> {
  const { rows } = await db.query(
    `SELECT model, count(*)::bigint AS requests, sum(input_tokens)::bigint AS input_tokens,
            sum(output_tokens)::bigint AS output_tokens, sum(cached_input_tokens)::bigint AS cached_input_tokens,
            sum(cache_write_tokens)::bigint AS cache_write_tokens, sum(reasoning_tokens)::bigint AS reasoning_tokens,
            coalesce(sum(cost_usd), 0) AS cost_usd, count(*) FILTER (WHERE cost_usd IS NULL)::bigint AS unpriced_requests
       FROM usage_ledger
      WHERE tenant_id = $1 AND ts >= $2 AND ts < $3
      GROUP BY GROUPING SETS ((model), ()) ORDER BY model NULLS LAST`,
    [tenant, from, to],
  );
  return withTotal(rows, 'model', (r) => ({ model: r.model as string, ...sumsOf(r) }));
}
