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

function bucket(r: Record<string, unknown>): UsageBucket {
  return {
    start: (r.start as Date).toISOString(),
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

/** Buckets with any usage whose start lies in [from truncated to the bucket, to). */
export async function usageBuckets(
  db: Db,
  tenant: string,
  from: Date,
  to: Date,
  granularity: 'hour' | 'day',
): Promise<UsageBucket[]> {
  // Rollup hours are UTC; a day bucket is the UTC calendar day.
  const { rows } = await db.query(
    `SELECT date_trunc($4, hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start, ${SUMS}
       FROM usage_hourly
      WHERE tenant_id = $1
        AND hour >= date_trunc($4, $2::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        AND hour < $3
      GROUP BY 1 ORDER BY 1`,
    [tenant, from, to, granularity],
  );
  return rows.map(bucket);
}

/** Usage of one model over a range. */
export type ModelUsage = { model: string } & Omit<UsageBucket, 'start'>;

/** Each model's usage in [from, to), by model name; models with no requests are absent. */
export async function usageByModel(db: Db, tenant: string, from: Date, to: Date): Promise<ModelUsage[]> {
  const { rows } = await db.query(
    `SELECT model, count(*)::bigint AS requests, sum(input_tokens)::bigint AS input_tokens,
            sum(output_tokens)::bigint AS output_tokens, sum(cached_input_tokens)::bigint AS cached_input_tokens,
            sum(cache_write_tokens)::bigint AS cache_write_tokens, sum(reasoning_tokens)::bigint AS reasoning_tokens,
            coalesce(sum(cost_usd), 0) AS cost_usd, count(*) FILTER (WHERE cost_usd IS NULL)::bigint AS unpriced_requests
       FROM usage_ledger
      WHERE tenant_id = $1 AND ts >= $2 AND ts < $3
      GROUP BY model ORDER BY model`,
    [tenant, from, to],
  );
  return rows.map((r) => {
    const { start: _start, ...sums } = bucket({ ...r, start: new Date(0) });
    return { model: r.model as string, ...sums };
  });
}

/** The sum of buckets. */
export function totalOf(buckets: Omit<UsageBucket, 'start'>[]): Omit<UsageBucket, 'start'> {
  const total = {
    requests: 0,
    input_tokens: 0,
    output_tokens: 0,
    cached_input_tokens: 0,
    cache_write_tokens: 0,
    reasoning_tokens: 0,
    cost_usd: 0,
    unpriced_requests: 0,
  };
  for (const b of buckets) {
    for (const key of Object.keys(total) as (keyof typeof total)[]) total[key] += b[key];
  }
  return total;
}
