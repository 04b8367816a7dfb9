/**
 * Where the proxies keep things in Redis, as the control plane must find them. The layout
 * is owned by the proxy's Redis store (proxy/src/store/redis-keys.ts, docs/redis.md); this
 * file only adapts it, importing the proxy's own key builders so the two cannot drift. Every
 * name starts with the shared key prefix (the proxies' store.key_prefix).
 */
import { HOUR_FIELDS } from '../../proxy/src/store/memory-meter.js';
import { tenantKeys, usageStreamKey as proxyUsageStreamKey } from '../../proxy/src/store/redis-keys.js';
import { emptyHour, type HourUsage } from '../../proxy/src/store/store.js';

/** SCAN MATCH pattern of every key of one tenant: `${prefix}{${tenant}}:*` (prefix escaped). */
export function tenantKeyPattern(prefix: string, tenant: string): string {
  return tenantKeys(prefix, tenant).pattern;
}

/** The erasure tombstone the proxies' Redis scripts check before writing anything for a tenant. */
export function erasedKey(prefix: string, tenant: string): string {
  return tenantKeys(prefix, tenant).erased;
}

/** The usage event stream the proxies XADD to: `${prefix}${stream}`. */
export function usageStreamKey(prefix: string, stream: string): string {
  return proxyUsageStreamKey(prefix, stream);
}

/** The pub/sub channel on which every config change is announced (payload: the new version). */
export function configChannel(prefix: string): string {
  return `${prefix}config`;
}

/** The hash of one tenant's counters for the UTC hour containing `now`. */
export function currentHourKey(prefix: string, tenant: string, now: number): string {
  return tenantKeys(prefix, tenant).hour(now);
}

/** The bucket hash's fields in the proxy's HourUsage shape (missing fields are 0). */
export function hourFromHash(tenant: string, now: number, hash: Record<string, string>): HourUsage {
  const hour = emptyHour(tenant, now);
  for (const field of HOUR_FIELDS) hour[field] = Number(hash[field] ?? 0) || 0;
  return hour;
}
