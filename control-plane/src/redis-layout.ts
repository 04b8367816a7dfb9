/**
 * Where the proxies keep things in Redis, as the control plane must find them. The layout
 * is the shared contract's (@lanekeeper/contract, docs/redis.md); this file only names the
 * few keys the control plane touches. Every name starts with the shared key prefix (the
 * proxies' store.key_prefix).
 */
import { tenantKeys } from '@lanekeeper/contract';

export { configChannel, hourFromHash, usageStreamKey } from '@lanekeeper/contract';

/** SCAN MATCH pattern of every key of one tenant: `${prefix}{${tenant}}:*` (prefix escaped). */
export function tenantKeyPattern(prefix: string, tenant: string): string {
  return tenantKeys(prefix, tenant).pattern;
}

/** The erasure tombstone the proxies' Redis scripts check before writing anything for a tenant. */
export function erasedKey(prefix: string, tenant: string): string {
  return tenantKeys(prefix, tenant).erased;
}

/** The hash of one tenant's counters for the UTC hour containing `now`. */
export function currentHourKey(prefix: string, tenant: string, now: number): string {
  return tenantKeys(prefix, tenant).hour(now);
}
