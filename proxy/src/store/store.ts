/**
 * The state behind limits and metering. Two implementations, memory (one process) and
 * Redis (many replicas), pass the same suite (`store-suite.ts`). Enforcement and
 * measurement are separate calls: `admit` runs before the upstream is called and reserves
 * the request's worst case; `settle` replaces the reservation with what was metered.
 */
import type { RateLimits } from '../config/schema.js';
import type { LimitName } from '../errors.js';
import type { UsageEvent } from '../usage/usage-event.js';

/** What one admission asks for. Prices are USD per token (not per million). */
export interface AdmitRequest {
  readonly tenant: string;
  readonly requestId: string;
  /** Wall clock in ms; every window is computed from it so tests can move time. */
  readonly now: number;
  readonly limits: RateLimits;
  /** Estimated prompt tokens: reserved against tokens_per_hour and budgets. */
  readonly promptTokens: number;
  /**
   * The most output the request may produce before limits: its output cap times the number
   * of completions generated (n, best_of, candidateCount); the caller divides the granted
   * output back per completion. Undefined means unbounded, which the store then bounds by
   * what remains (the proxy always passes a bound: the plan's max_output_tokens).
   */
  readonly maxOutput: number | undefined;
  /**
   * Output that must fit for the request to be admitted. The proxy passes the client's own
   * output cap when it set one, so the worst case the client asked for fits whole or is
   * refused; without one, the output is clamped to what remains. Default: 1 (0 when
   * maxOutput is 0, for requests that generate nothing).
   */
  readonly minOutput?: number;
  readonly inputPrice: number;
  readonly outputPrice: number;
  /** A concurrency slot expires after this long, so a replica that dies frees its slots. */
  readonly slotTtlMs: number;
}

/** A claim on a tenant's allowance, held until the response ends. */
export interface Reservation {
  readonly tenant: string;
  readonly requestId: string;
  /** Admission time: settles the same day/month/hour windows it reserved in. */
  readonly at: number;
  readonly tokens: number;
  readonly usd: number;
  /** Whether a concurrency slot is held. */
  readonly slot: boolean;
  readonly limits: RateLimits;
}

/** A tenant's standing against its limits, for the x-ratelimit-* headers. */
export interface LimitState {
  requests?: { limit: number; remaining: number; resetS: number };
  tokens?: { limit: number; remaining: number; resetS: number };
}

export type AdmitResult =
  | {
      readonly ok: true;
      readonly reservation: Reservation;
      /** Output cap that keeps the worst case inside every limit; undefined when nothing bounds it. */
      readonly grantedOutput: number | undefined;
      readonly state: LimitState;
    }
  | {
      readonly ok: false;
      readonly limit: LimitName;
      readonly retryAfterS: number;
      readonly state: LimitState;
    };

/** Actual consumption of a finished request. */
export interface Settlement {
  readonly tokens: number;
  readonly usd: number;
}

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

export interface LimitStore {
  /** Atomically checks every limit and, when all pass, counts the request and reserves its worst case. */
  admit(request: AdmitRequest): Promise<AdmitResult>;
  /** Replaces a reservation with actual consumption and frees its concurrency slot. Idempotent per request. */
  settle(reservation: Reservation, actual: Settlement): Promise<void>;
}

/** One tenant's figures since its counters began (or since its last erasure). */
export type UsageTotals = Omit<HourUsage, 'hour'>;

export interface MeterStore {
  /**
   * Adds the event to the tenant's hourly and all-time counters and the durable event log.
   * Counters count a request id once; the log is at-least-once (consumers dedupe by request_id).
   */
  record(event: UsageEvent): Promise<void>;
  /** The tenant's figures for the UTC hour containing `now`; O(1), never a scan. */
  currentHour(tenant: string, now: number): Promise<HourUsage>;
  /** The tenant's all-time counters (added so they can be read and tested; O(1)). */
  allTime(tenant: string): Promise<UsageTotals>;
}

export interface Store extends LimitStore, MeterStore {
  readonly kind: 'memory' | 'redis';
  /** True when the backing service answers. */
  healthy(): Promise<boolean>;
  /** Removes every key of a tenant (erasure); returns how many were removed. */
  eraseTenant(tenant: string): Promise<number>;
  close(): Promise<void>;
}

/** Window lengths in ms: tokens per hour slides over the hour, requests per minute over the minute. */
export const HOUR_MS = 3_600_000;
export const MINUTE_MS = 60_000;

/** The start (ms) of the UTC hour containing `now`: the key of an hourly usage bucket. */
export function hourStart(now: number): number {
  return now - (now % HOUR_MS);
}

export const DAY_MS = 24 * HOUR_MS;

/**
 * Memoizes a function of time over fixed UTC periods (a day, an hour): calls within the
 * period of the previous call return the previous result instead of formatting a date again.
 * Stores call these on every admission, nearly always for the current period.
 */
export function perPeriod<T>(periodMs: number, build: (now: number) => T): (now: number) => T {
  let period = Number.NaN;
  let value: T | undefined;
  return (now) => {
    const current = Math.floor(now / periodMs);
    if (current !== period || value === undefined) {
      period = current;
      value = build(now);
    }
    return value;
  };
}

/**
 * The UTC day a timestamp falls in, its calendar month (keys such as "2026-11-29" and
 * "2026-11"), and the instants each ends: the budget windows both stores count spend in.
 */
export interface BudgetDay {
  readonly day: string;
  readonly month: string;
  readonly nextDay: number;
  readonly nextMonth: number;
}

export const budgetDay = perPeriod(DAY_MS, (now): BudgetDay => {
  const d = new Date(now);
  const [year, month, date] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()];
  const iso = d.toISOString();
  return Object.freeze({
    day: iso.slice(0, 10),
    month: iso.slice(0, 7),
    nextDay: Date.UTC(year, month, date + 1),
    nextMonth: Date.UTC(year, month + 1, 1),
  });
});

/** Keys naming the UTC day and month a timestamp falls in, e.g. "2026-11-29" and "2026-11". */
export function budgetWindows(now: number): { readonly day: string; readonly month: string } {
  return budgetDay(now);
}

/** Seconds until the next UTC midnight and the next UTC month start, for budget windows. */
export function budgetResets(now: number): { dayS: number; monthS: number } {
  const { nextDay, nextMonth } = budgetDay(now);
  return { dayS: Math.ceil((nextDay - now) / 1000), monthS: Math.ceil((nextMonth - now) / 1000) };
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
