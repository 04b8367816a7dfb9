/**
 * The in-memory half of metering: per-tenant hourly buckets (kept `retentionHours`) and
 * all-time counters, both updated in O(1) per event, so reading the current hour never sums
 * a list. Recording the same event object twice counts it once, which lets the guarded store
 * replay its buffer without double counting (Redis, shared by processes, recognises the
 * retry by the replay marks of the calls it was lost in: replay-marks.ts).
 */
import { HOUR_FIELDS, type HourField } from '@lanekeeper/contract';
import type { UsageEvent } from '../usage/usage-event.js';
import {
  HOUR_MS,
  addableCost,
  countable,
  emptyHour,
  hourStart,
  type HourUsage,
  type UsageTotals,
} from './store.js';

/** What one event adds to each counter; unpriced events add no cost (never a silent $0 price). */
export function increments(event: UsageEvent): Record<HourField, number> {
  return {
    requests: 1,
    input_tokens: countable(event.input_tokens),
    output_tokens: countable(event.output_tokens),
    cached_input_tokens: countable(event.cached_input_tokens),
    cache_write_tokens: countable(event.cache_write_tokens),
    reasoning_tokens: countable(event.reasoning_tokens),
    estimated_cost: addableCost(event.cost_usd),
  };
}

/** The UTC hour an event belongs to: the hour its request arrived in. */
export function eventTime(event: UsageEvent): number {
  const at = Date.parse(event.ts);
  return Number.isFinite(at) ? at : Date.now();
}

interface TenantMeter {
  hours: Map<number, { usage: HourUsage }>;
  total: Record<HourField, number>;
  /**
   * The newest hour's bucket and its start, where nearly every event lands: found without
   * the map, whose table is one more cold cache line when a thousand tenants take turns.
   */
  latestStart: number;
  latest: { usage: HourUsage } | undefined;
}

function zeroTotals(): Record<HourField, number> {
  return Object.fromEntries(HOUR_FIELDS.map((f) => [f, 0])) as Record<HourField, number>;
}

/** Hourly and all-time usage of every tenant seen by this process. */
export class MemoryMeter {
  private readonly tenants = new Map<string, TenantMeter>();
  /**
   * Events already counted. In one process a replay is the same event object (the guarded
   * store re-sends what it buffered), so identity suffices and nothing is kept per request.
   */
  private readonly recorded = new WeakSet<UsageEvent>();

  constructor(private readonly retentionHours = 48) {}

  record(event: UsageEvent): void {
    let meter = this.tenants.get(event.tenant);
    if (!meter) {
      meter = {
        hours: new Map(),
        total: zeroTotals(),
        latestStart: Number.NEGATIVE_INFINITY,
        latest: undefined,
      };
      this.tenants.set(event.tenant, meter);
    }
    const at = eventTime(event);
    const start = hourStart(at);
    let bucket = start === meter.latestStart ? meter.latest : meter.hours.get(start);
    if (!bucket) {
      // Hours past retention go only when a new hour begins: scanning the tenant's buckets
      // on every event cost up to retentionHours steps per request in a long-lived process.
      for (const key of meter.hours.keys()) {
        if (key <= start - this.retentionHours * HOUR_MS) meter.hours.delete(key);
      }
      bucket = { usage: emptyHour(event.tenant, at) };
      meter.hours.set(start, bucket);
    }
    // A late event of an earlier hour leaves the newest hour where it is.
    if (start > meter.latestStart) {
      meter.latestStart = start;
      meter.latest = bucket;
    }
    if (this.recorded.has(event)) return;
    this.recorded.add(event);
    const add = increments(event);
    for (const field of HOUR_FIELDS) {
      bucket.usage[field] += add[field];
      meter.total[field] += add[field];
    }
  }

  currentHour(tenant: string, now: number): HourUsage {
    const bucket = this.tenants.get(tenant)?.hours.get(hourStart(now));
    return bucket ? { ...bucket.usage } : emptyHour(tenant, now);
  }

  allTime(tenant: string): UsageTotals {
    return { tenant, ...(this.tenants.get(tenant)?.total ?? zeroTotals()) };
  }

  /** Forgets a tenant; returns how many stored entries (hours plus the all-time record) went. */
  erase(tenant: string): number {
    const meter = this.tenants.get(tenant);
    if (!meter) return 0;
    this.tenants.delete(tenant);
    return meter.hours.size + 1;
  }

  clear(): void {
    this.tenants.clear();
  }
}
