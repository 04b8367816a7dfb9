/**
 * The Redis part of an erasure: every key of the tenant (`${prefix}{tenant}:*`: limits,
 * meters, reservations) via SCAN + UNLINK, and the tenant's events still in the usage
 * stream via XRANGE + XDEL (an entry pending in the ledger's group is then read back with
 * no fields and simply acknowledged). Both loops are bounded by what exists; rerunning
 * them finds nothing more to remove.
 *
 * Keys are removed only while the tenant's tombstone stands, checked atomically with each
 * UNLINK: the tombstone is lifted when the id is created again, and from then on every key
 * under the id may be the new tenant's (the second sweep, resweep.ts, can run after that).
 */
import type { Redis } from 'ioredis';
import { erasedKey, tenantKeyPattern, usageStreamKey } from '../redis-layout.js';

const PAGE = 1000;

/** What the Redis part removed. */
export interface RedisErasure {
  keys_deleted: number;
  stream_events_deleted: number;
}

/**
 * How long the erasure tombstone stays: past any request still in flight anywhere (the
 * longest upstream timeout plus its slot's hold), so nothing it settles is written back.
 */
export const TOMBSTONE_TTL_S = 24 * 3600;

// Each function takes `undefined` when the control plane runs without Redis (REDIS_URL unset):
// then proxies keep no counters in Redis and there is nothing to mark or sweep.

/** Sets the tombstone that makes every proxy's Redis scripts refuse and drop the tenant's writes. */
export async function markErased(redis: Redis | undefined, prefix: string, tenant: string): Promise<void> {
  await redis?.set(erasedKey(prefix, tenant), new Date().toISOString(), 'EX', TOMBSTONE_TTL_S);
}

/** Lifts the tombstone, for a tenant id created anew. */
export async function unmarkErased(redis: Redis | undefined, prefix: string, tenant: string): Promise<void> {
  await redis?.del(erasedKey(prefix, tenant));
}

/** Removes the tenant's keys and stream events; returns how many of each. */
export async function eraseRedisData(
  redis: Redis | undefined,
  prefix: string,
  stream: string,
  tenant: string,
): Promise<RedisErasure> {
  if (!redis) return { keys_deleted: 0, stream_events_deleted: 0 };
  return {
    keys_deleted: await eraseTenantKeys(redis, prefix, tenant),
    stream_events_deleted: await eraseStreamEvents(redis, prefix, stream, tenant),
  };
}

// KEYS[1] is the tombstone (same hash slot as the tenant's keys), the rest are to go.
// -1: the tombstone is gone, so the id belongs to a tenant again and nothing may be removed.
const UNLINK_WHILE_ERASED = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if #KEYS == 1 then return 0 end
return redis.call('UNLINK', unpack(KEYS, 2))`;

/** Removes every key of the tenant but its tombstone, as long as the tombstone stands. */
export async function eraseTenantKeys(redis: Redis, prefix: string, tenant: string): Promise<number> {
  // The tombstone stays: it is what keeps requests still in flight from writing again.
  const tombstone = erasedKey(prefix, tenant);
  let keysDeleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', tenantKeyPattern(prefix, tenant), 'COUNT', PAGE);
    cursor = next;
    const doomed = keys.filter((k) => k !== tombstone);
    if (doomed.length === 0) continue;
    const removed = Number(await redis.eval(UNLINK_WHILE_ERASED, doomed.length + 1, tombstone, ...doomed));
    if (removed < 0) break;
    keysDeleted += removed;
  } while (cursor !== '0');
  return keysDeleted;
}

/**
 * Removes the tenant's events from the usage stream; with `appendedBefore`, only those appended
 * before that time (an entry id starts with Redis's clock at XADD, in milliseconds).
 */
export async function eraseStreamEvents(
  redis: Redis,
  prefix: string,
  stream: string,
  tenant: string,
  appendedBefore?: Date,
): Promise<number> {
  // Event payloads are JSON with "tenant":"<id>"; the cheap substring test is confirmed by parsing.
  const key = usageStreamKey(prefix, stream);
  const needle = `"tenant":${JSON.stringify(tenant)}`;
  const end = appendedBefore ? `(${appendedBefore.getTime()}-0` : '+';
  let eventsDeleted = 0;
  let start = '-';
  for (;;) {
    const entries = await redis.xrange(key, start, end, 'COUNT', PAGE);
    if (entries.length === 0) break;
    const doomed: string[] = [];
    for (const [id, fields] of entries) {
      const payload = fields[fields.indexOf('event') + 1];
      if (payload?.includes(needle) && tenantOf(payload) === tenant) doomed.push(id);
    }
    if (doomed.length > 0) eventsDeleted += await redis.xdel(key, ...doomed);
    const last = entries[entries.length - 1]![0];
    start = `(${last}`;
    if (entries.length < PAGE) break;
  }
  return eventsDeleted;
}

function tenantOf(payload: string): unknown {
  try {
    return (JSON.parse(payload) as { tenant?: unknown }).tenant;
  } catch {
    return undefined;
  }
}
