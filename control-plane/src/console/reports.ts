/**
 * The console's read-only views over the usage tables: totals and top tenants from the
 * hourly rollups (usage_hourly, the billing-grade sums), and anything split by model from
 * the ledger rows (usage_ledger), since the rollups are not kept per model. Times are UTC.
 */
import type { Db } from '../stores/postgres.js';

/** Requests, tokens and cost over a window. */
export interface Totals {
  requests: number;
  /** Input plus output tokens (cached and reasoning tokens are parts of those). */
  tokens: number;
  cost_usd: number;
  /** Requests whose model had no price: their cost is in no cost_usd, and not $0. */
  unpriced_requests: number;
}

/** One model's values per bucket, aligned with `buckets`. */
export interface ModelSeries {
  buckets: string[];
  /**
   * Keyed by model name, without a prototype: the names come from proxies and upstreams, and
   * one like "constructor" or "__proto__" must be a key like any other, not Object's.
   */
  models: Record<
    string,
    { cost_usd: number[]; tokens: number[]; requests: number[]; unpriced_requests: number[] }
  >;
}

/** A line of the tenants list. */
export interface TenantSummary {
  id: string;
  plan: string;
  status: 'active' | 'suspended';
  cost_month_usd: number;
  /** Requests this month whose model had no price (not in cost_month_usd). */
  unpriced_month_requests: number;
  last_request_at: string | null;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** The start of the UTC hour (or day) `count - 1` buckets before the one holding `now`: `count` buckets in all. */
export function windowStart(now: Date, granularity: 'hour' | 'day', count: number): Date {
  const size = granularity === 'hour' ? HOUR_MS : DAY_MS;
  return new Date(Math.floor(now.getTime() / size) * size - (count - 1) * size);
}

/**
 * The end of the hour holding `now`: what the views count stops there. The ledger books
 * events dated ahead (a proxy with a fast clock), which the totals counted and the charts,
 * bounded by their buckets, did not.
 */
function hourAfter(now: Date): Date {
  return new Date(windowStart(now, 'hour', 1).getTime() + HOUR_MS);
}

async function totalsBetween(db: Db, from: Date, to: Date): Promise<Totals> {
  const { rows } = await db.query(
    `SELECT coalesce(sum(requests), 0)::bigint AS requests,
            coalesce(sum(input_tokens + output_tokens), 0)::bigint AS tokens,
            coalesce(sum(cost_usd), 0) AS cost_usd,
            coalesce(sum(unpriced_requests), 0)::bigint AS unpriced_requests
       FROM usage_hourly WHERE hour >= $1 AND hour < $2`,
    [from, to],
  );
  const r = rows[0];
  return {
    requests: Number(r.requests),
    tokens: Number(r.tokens),
    cost_usd: Number(r.cost_usd),
    unpriced_requests: Number(r.unpriced_requests),
  };
}

/**
 * Per-bucket, per-model sums of the ledger in [from, from + count buckets), every bucket
 * present (zeros where nothing happened) so a chart's x axis has no gaps.
 */
export async function usageByModel(
  db: Db,
  opts: { tenant?: string; from: Date; granularity: 'hour' | 'day'; count: number },
): Promise<ModelSeries> {
  const size = opts.granularity === 'hour' ? HOUR_MS : DAY_MS;
  const buckets = Array.from({ length: opts.count }, (_, i) =>
    new Date(opts.from.getTime() + i * size).toISOString(),
  );
  const { rows } = await db.query(
    `SELECT date_trunc($2, ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket, model,
            count(*)::bigint AS requests, sum(input_tokens + output_tokens)::bigint AS tokens,
            coalesce(sum(cost_usd), 0) AS cost_usd,
            count(*) FILTER (WHERE cost_usd IS NULL)::bigint AS unpriced_requests
       FROM usage_ledger
      WHERE ts >= $1 AND ts < $3 AND ($4::text IS NULL OR tenant_id = $4)
      GROUP BY 1, 2 ORDER BY 2, 1`,
    [opts.from, opts.granularity, new Date(opts.from.getTime() + opts.count * size), opts.tenant ?? null],
  );
  const models: ModelSeries['models'] = Object.create(null);
  for (const r of rows) {
    const index = buckets.indexOf((r.bucket as Date).toISOString());
    if (index < 0) continue;
    const series = (models[r.model as string] ??= {
      cost_usd: buckets.map(() => 0),
      tokens: buckets.map(() => 0),
      requests: buckets.map(() => 0),
      unpriced_requests: buckets.map(() => 0),
    });
    series.cost_usd[index] = Number(r.cost_usd);
    series.tokens[index] = Number(r.tokens);
    series.requests[index] = Number(r.requests);
    series.unpriced_requests[index] = Number(r.unpriced_requests);
  }
  return { buckets, models };
}

/**
 * The overview: last 24 hours and 30 days, the top tenants by cost over 30 days, cost per
 * hour by model. "30 days" is 30 UTC calendar days, today's included, as on a tenant's page:
 * it was 720 hours here, and a tenant's 30-day cost differed between the two pages.
 */
export async function overview(db: Db, now = new Date()) {
  const dayFrom = windowStart(now, 'hour', 24);
  const monthFrom = windowStart(now, 'day', 30);
  const end = hourAfter(now);
  const [last24h, last30d, top, hourly] = await Promise.all([
    totalsBetween(db, dayFrom, end),
    totalsBetween(db, monthFrom, end),
    db.query(
      `SELECT tenant_id AS tenant, sum(cost_usd) AS cost_usd, sum(requests)::bigint AS requests,
              sum(unpriced_requests)::bigint AS unpriced_requests
         FROM usage_hourly WHERE hour >= $1 AND hour < $2
        GROUP BY tenant_id ORDER BY sum(cost_usd) DESC, tenant_id LIMIT 10`,
      [monthFrom, end],
    ),
    usageByModel(db, { from: dayFrom, granularity: 'hour', count: 24 }),
  ]);
  return {
    last_24h: last24h,
    last_30d: last30d,
    top_tenants: top.rows.map((r) => ({
      tenant: r.tenant as string,
      cost_usd: Number(r.cost_usd),
      requests: Number(r.requests),
      unpriced_requests: Number(r.unpriced_requests),
    })),
    cost_per_hour: hourly,
  };
}

/** Escapes LIKE's wildcards, so a search for "a_b" finds only "a_b". */
function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * Tenants in id order, optionally only those whose id or plan contains `search`, with
 * their cost since the start of this UTC month and the time of their last booked request.
 */
export async function tenantSummaries(
  db: Db,
  opts: { search?: string; after?: string; limit: number; now?: Date },
): Promise<TenantSummary[]> {
  const now = opts.now ?? new Date();
  const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const { rows } = await db.query(
    `SELECT t.id, t.plan, t.status, m.cost_month_usd, m.unpriced_month_requests,
            (SELECT max(l.ts) FROM usage_ledger l WHERE l.tenant_id = t.id AND l.ts < $5) AS last_request_at
       FROM tenants t
      CROSS JOIN LATERAL (
        SELECT coalesce(sum(u.cost_usd), 0) AS cost_month_usd,
               coalesce(sum(u.unpriced_requests), 0)::bigint AS unpriced_month_requests
          FROM usage_hourly u WHERE u.tenant_id = t.id AND u.hour >= $4 AND u.hour < $5) m
      WHERE t.id NOT IN (SELECT tenant_id FROM erasure_jobs)
        AND ($1::text IS NULL OR t.id ILIKE $1 ESCAPE '\\' OR t.plan ILIKE $1 ESCAPE '\\')
        AND ($2::text IS NULL OR t.id > $2)
      ORDER BY t.id LIMIT $3`,
    [
      opts.search ? likePattern(opts.search) : null,
      opts.after ?? null,
      opts.limit,
      monthStart,
      hourAfter(now),
    ],
  );
  return rows.map((r) => ({
    id: r.id,
    plan: r.plan,
    status: r.status,
    cost_month_usd: Number(r.cost_month_usd),
    unpriced_month_requests: Number(r.unpriced_month_requests),
    last_request_at: r.last_request_at ? (r.last_request_at as Date).toISOString() : null,
  }));
}

/** Columns of the usage export, in order. */
export const EXPORT_COLUMNS = [
  'day',
  'model',
  'price_version',
  'requests',
  'input_tokens',
  'output_tokens',
  'cached_input_tokens',
  'cache_write_tokens',
  'reasoning_tokens',
  'cost_usd',
  'unpriced_requests',
  // Last: scripts reading the columns before it by position read them as before.
  'provenance',
] as const;

/**
 * A tenant's ledger in [from, to) summed per UTC day, model, price version and provenance:
 * the lines an invoice is built from. Provenance splits the lines to review from the rest:
 * `invalid` usage (an upstream's impossible figure, clamped to 10^12 tokens) was summed into
 * the reported lines, where one such request read as $2.5M with nothing to tell it apart.
 * Costs are PostgreSQL's exact decimals, as text, never floats.
 */
export async function usageExport(
  db: Db,
  tenant: string,
  from: Date,
  to: Date,
): Promise<Record<(typeof EXPORT_COLUMNS)[number], string>[]> {
  const { rows } = await db.query(
    `SELECT to_char(date_trunc('day', ts AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day, model,
            coalesce(price_version::text, '') AS price_version, provenance,
            count(*)::text AS requests, sum(input_tokens)::text AS input_tokens,
            sum(output_tokens)::text AS output_tokens, sum(cached_input_tokens)::text AS cached_input_tokens,
            sum(cache_write_tokens)::text AS cache_write_tokens, sum(reasoning_tokens)::text AS reasoning_tokens,
            trim_scale(coalesce(sum(cost_usd), 0))::text AS cost_usd,
            (count(*) FILTER (WHERE cost_usd IS NULL))::text AS unpriced_requests
       FROM usage_ledger WHERE tenant_id = $1 AND ts >= $2 AND ts < $3
      GROUP BY 1, 2, price_version, provenance ORDER BY 1, 2, price_version, provenance`,
    [tenant, from, to],
  );
  return rows;
}
