/**
 * Every Redis name the proxies write and the control plane reads, built in one place (the
 * layout is documented in docs/redis.md). Each per-tenant key starts with
 * `${prefix}{${tenant}}:`: the braces are a Redis Cluster hash tag, so one tenant's keys
 * share a slot and one Lua script may touch them all, and erasure is a single pattern,
 * `${prefix}{${tenant}}:*`. The usage stream and the config channel are global, outside
 * any tenant's slot. Every name starts with the shared key prefix (the proxies'
 * store.key_prefix).
 */
import { DAY_MS, HOUR_MS, budgetWindows, hourStart, perPeriod } from './periods.js';

/** `text` as a Redis glob that matches only itself (SCAN MATCH, KEYS): its special characters escaped. */
export function globLiteral(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * The per-tenant key names, given a prefix (e.g. "lk:") and a tenant id. Building them
 * costs a few strings; the store keeps one set per tenant (`tenantKeyCache`).
 */
export function tenantKeys(prefix: string, tenant: string) {
  const base = `${prefix}{${tenant}}:`;
  return {
    base,
    /**
     * HASH second -> admissions: the requests-per-minute window in per-second buckets (at
     * most 61, plus their sum `n` and oldest second `o`, at any rate). Named `rps` since it
     * replaced the per-request log `rpm`.
     */
    rpm: `${base}rps`,
    /** ZSET request id -> slot expiry (ms): concurrency slots. */
    slots: `${base}slots`,
    /** HASH minute index -> metered tokens: the sliding hour. */
    tokens: `${base}tok`,
    /** ZSET request id -> reservation expiry (ms). */
    reservations: `${base}res`,
    /** HASH request id -> "tokens usd day month", plus the sums n, t, d:<day>, m:<month>. */
    reserved: `${base}resv`,
    /**
     * ZSET `instance:call` -> expiry (ms): the replay marks of finish calls whose answer a
     * proxy has not acknowledged yet (a few per proxy, whatever the rate; see docs/redis.md).
     */
    marks: `${base}marks`,
    /** STRING: USD actually spent in a UTC day / calendar month. */
    spendDay: perPeriod(DAY_MS, (now) => `${base}spend:d:${budgetWindows(now).day}`),
    // Memoized per day too: a day lies in one month.
    spendMonth: perPeriod(DAY_MS, (now) => `${base}spend:m:${budgetWindows(now).month}`),
    /** HASH of one UTC hour's usage, e.g. `hour:2026-11-29T14`. */
    hour: perPeriod(HOUR_MS, (now) => `${base}hour:${new Date(now).toISOString().slice(0, 13)}`),
    /** HASH of all-time usage. */
    total: `${base}total`,
    /**
     * STRING set by the control plane when it erases the tenant (with a TTL): the store's
     * scripts then refuse its admissions and drop its settlements and usage events.
     */
    erased: `${base}erased`,
    /** Glob that matches every key of the tenant (special characters of the prefix escaped). */
    pattern: `${globLiteral(base)}*`,
  };
}

/** The key names of one tenant. */
export type TenantKeys = ReturnType<typeof tenantKeys>;

/** The global usage stream: `${prefix}${stream}`, e.g. "lk:usage". */
export function usageStreamKey(prefix: string, stream: string): string {
  return `${prefix}${stream}`;
}

/**
 * The key names of every tenant seen, built once each. Tenants come from the config, so the
 * cache is small; it is emptied past `limit` tenants so that no input can grow it unbounded.
 */
export function tenantKeyCache(prefix: string, limit = 10_000): (tenant: string) => TenantKeys {
  const cache = new Map<string, TenantKeys>();
  return (tenant) => {
    let keys = cache.get(tenant);
    if (!keys) {
      if (cache.size >= limit) cache.clear();
      keys = tenantKeys(prefix, tenant);
      cache.set(tenant, keys);
    }
    return keys;
  };
}

/** The pub/sub channel on which the control plane announces each config change (payload: the new version). */
export function configChannel(prefix: string): string {
  return `${prefix}config`;
}

/** The numeric fields of an hour bucket (and of the all-time totals), in the order the stores write them. */
export const HOUR_FIELDS = [
  'requests',
  'input_tokens',
  'output_tokens',
  'cached_input_tokens',
  'cache_write_tokens',
  'reasoning_tokens',
  'estimated_cost',
] as const;

/** One counter of an hour (or of the all-time totals). */
export type HourField = (typeof HOUR_FIELDS)[number];

/** One tenant's figures for one UTC hour. */
export interface HourUsage {
  tenant: string;
  /** ISO timestamp of the hour's start, e.g. 2026-11-29T14:00:00.000Z. */
  hour: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  reasoning_tokens: number;
  estimated_cost: number;
}

/** A tenant's hour with nothing counted yet. */
export function emptyHour(tenant: string, now: number): HourUsage {
  return {
    tenant,
    hour: new Date(hourStart(now)).toISOString(),
    requests: 0,
    input_tokens: 0,
    output_tokens: 0,
    cached_input_tokens: 0,
    cache_write_tokens: 0,
    reasoning_tokens: 0,
    estimated_cost: 0,
  };
}

/** A bucket hash as HGETALL returns it, in the HourUsage shape (missing or unreadable fields are 0). */
export function hourFromHash(tenant: string, now: number, hash: Record<string, string>): HourUsage {
  const hour = emptyHour(tenant, now);
  for (const field of HOUR_FIELDS) hour[field] = Number(hash[field] ?? 0) || 0;
  return hour;
}
