/**
 * The state behind limits and metering. Two implementations, memory (one process) and
 * Redis (many replicas), pass the same suite (`store-suite.ts`). Enforcement and
 * measurement are separate calls: `admit` runs before the upstream is called and reserves
 * the request's worst case; `settle` replaces the reservation with what was metered.
 */
import type { RateLimits } from '../config/schema.js';
import type { LimitName } from '../errors.js';
import type { HourUsage } from '@lanekeeper/contract';
import type { UsageEvent } from '../usage/usage-event.js';

// Time periods and the hour bucket are shared with the control plane (it reads what the
// stores write); the stores keep importing them from here.
export {
  DAY_MS,
  HOUR_MS,
  MINUTE_MS,
  budgetDay,
  budgetResets,
  budgetWindows,
  emptyHour,
  hourStart,
  perPeriod,
  type BudgetDay,
  type HourUsage,
} from '@lanekeeper/contract';

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

/**
 * A token figure as the counters add it: a whole, non-negative number. One no answer can have
 * (NaN, Infinity) counts as 0: added, it would poison the tenant's counter for good, and in
 * Redis fail the one script call that carries every tenant's events of that turn.
 */
export function countable(tokens: number): number {
  return Number.isFinite(tokens) ? Math.max(0, Math.round(tokens)) : 0;
}

/** A cost as the counters add it: finite and positive, else nothing (unpriced adds no cost either). */
export function addableCost(usd: number | null | undefined): number {
  return typeof usd === 'number' && Number.isFinite(usd) && usd > 0 ? usd : 0;
}
