/**
 * What a Redis-mode target leaves in Redis per tenant: every key under its prefix, sized with
 * MEMORY USAGE and grouped by the tenant's hash tag (`${prefix}{tenant}:...`, see
 * contract/src/redis-layout.ts). Split in two, because they grow differently:
 * - state: limits and meters (per-second rpm buckets, slots, reservations, token minutes,
 *   spend, hour and total counters), bounded by the windows whatever the request rate;
 * - replay guards: the marks of finish calls not yet acknowledged (`marks`, a few per proxy
 *   whatever the rate); `settled` and `hour:<h>:ids`, the per-request ids they replaced
 *   (which grew with the rate), are counted here too while a Redis written by an older
 *   proxy still holds them (they expire within 2 h).
 */
import { globLiteral } from '@lanekeeper/contract';
import { Redis } from 'ioredis';

/** Bytes per tenant that had keys, over the tenants found (and the totals). */
export interface TenantMemory {
  stateBytes: number;
  replayGuardBytes: number;
  tenants: number;
  stateAvgBytes: number;
  stateMaxBytes: number;
  replayGuardAvgBytes: number;
  replayGuardMaxBytes: number;
}

const REPLAY_GUARD = /^(marks|settled|hour:[^:]+:ids)$/;

export async function redisMemoryPerTenant(url: string, prefix: string): Promise<TenantMemory> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  const state = new Map<string, number>();
  const guards = new Map<string, number>();
  try {
    let cursor = '0';
    const pattern = `${globLiteral(prefix)}{*`;
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      const pipeline = client.pipeline();
      // Redis's default sampling (5 elements): exact enough for small keys, and O(1) for a
      // replay guard of a million ids, where SAMPLES 0 would walk them all.
      for (const key of keys) pipeline.memory('USAGE', key);
      const sizes = (await pipeline.exec()) ?? [];
      keys.forEach((key, i) => {
        const close = key.indexOf('}:', prefix.length);
        if (close < 0) return;
        const tenant = key.slice(prefix.length + 1, close);
        const into = REPLAY_GUARD.test(key.slice(close + 2)) ? guards : state;
        into.set(tenant, (into.get(tenant) ?? 0) + Number(sizes[i]?.[1] ?? 0));
      });
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
  const tenants = new Set([...state.keys(), ...guards.keys()]).size;
  const avg = (m: Map<string, number>) =>
    tenants === 0 ? 0 : [...m.values()].reduce((a, b) => a + b, 0) / tenants;
  const max = (m: Map<string, number>) => Math.max(0, ...m.values());
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  return {
    stateBytes: sum(state),
    replayGuardBytes: sum(guards),
    tenants,
    stateAvgBytes: avg(state),
    stateMaxBytes: max(state),
    replayGuardAvgBytes: avg(guards),
    replayGuardMaxBytes: max(guards),
  };
}
