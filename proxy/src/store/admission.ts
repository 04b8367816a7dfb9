/**
 * The admission arithmetic, kept pure so the memory store and its tests share one reading of
 * the rules. The Redis store runs the same rules inside `lua/admit.lua` (it must, to stay one
 * atomic round trip); the shared suite is what keeps the two in agreement.
 *
 * Rules: limits are checked in a fixed order (LIMIT_ORDER) and the first that refuses is
 * reported. Tokens per hour and budgets reserve the worst case, prompt plus granted output,
 * where the granted output is the largest that fits every limit. Nothing is consumed by a
 * refusal: the caller counts the request and takes the slot only after every check passed.
 */
import type { LimitName } from '../errors.js';
import type { RateLimits } from '../config/schema.js';

/** The order limits are checked in; a refusal names the first failing one. */
export const LIMIT_ORDER: readonly LimitName[] = [
  'requests_per_minute',
  'max_concurrent',
  'tokens_per_hour',
  'budget_usd_per_day',
  'budget_usd_per_month',
];

/**
 * The largest output ever granted. A budget with a near-free price would otherwise grant
 * astronomically many tokens, which no model produces and Redis cannot count as an integer.
 */
export const MAX_GRANTED_OUTPUT = 1_000_000_000;

/** A tenant's standing at the moment of admission, already pruned to the live windows. */
export interface Standing {
  /** Requests counted in the last minute. */
  readonly requests: number;
  /** Live concurrency slots. */
  readonly slots: number;
  /** Metered tokens in the sliding hour plus outstanding reserved tokens. */
  readonly tokens: number;
  /** Actual plus reserved spend in the current UTC day and month. */
  readonly usdDay: number;
  readonly usdMonth: number;
}

/** What one admission asks for (the store-independent part of an AdmitRequest). */
export interface AdmissionInput {
  readonly limits: RateLimits;
  readonly promptTokens: number;
  readonly maxOutput: number | undefined;
  readonly minOutput?: number;
  readonly inputPrice: number;
  readonly outputPrice: number;
}

/** The verdict: what to reserve, or which limit refused. */
export type Admission =
  | {
      readonly ok: true;
      readonly grantedOutput: number | undefined;
      readonly tokens: number;
      readonly usd: number;
    }
  | { readonly ok: false; readonly limit: LimitName };

/** Output tokens a remaining budget can pay for after the prompt (-1: not even the prompt); Infinity when output is free. */
function affordableOutput(remainingUsd: number, promptUsd: number, outputPrice: number): number {
  if (remainingUsd <= 0 || promptUsd > remainingUsd) return -1;
  if (outputPrice <= 0) return Number.POSITIVE_INFINITY;
  return Math.floor((remainingUsd - promptUsd) / outputPrice);
}

/** True when the limits set a spend budget (day or month). */
export function hasBudget(limits: RateLimits): boolean {
  return limits.budget_usd_per_day !== undefined || limits.budget_usd_per_month !== undefined;
}

/** True when an admission reserves its worst case (tokens per hour or a budget bounds it). */
export function reservesWorstCase(limits: RateLimits): boolean {
  return limits.tokens_per_hour !== undefined || hasBudget(limits);
}

/**
 * Output tokens that must fit for a request to be admitted: the caller's minOutput (the
 * client's own cap, so its worst case fits whole), else one, or none for a request that
 * produces none (embeddings pass maxOutput 0), in which case the prompt alone must fit.
 */
export function requiredOutput(input: { maxOutput: number | undefined; minOutput?: number }): number {
  if (input.minOutput !== undefined) return Math.max(0, Math.floor(input.minOutput));
  return input.maxOutput === 0 ? 0 : 1;
}

/** Decides one admission against a standing; pure, so both callers stay atomic around it. */
export function decideAdmission(input: AdmissionInput, standing: Standing): Admission {
  const { limits, promptTokens, inputPrice, outputPrice } = input;
  const need = requiredOutput(input);
  const rpm = limits.requests_per_minute;
  if (rpm !== undefined && standing.requests >= rpm) return { ok: false, limit: 'requests_per_minute' };
  const maxConcurrent = limits.max_concurrent;
  if (maxConcurrent !== undefined && standing.slots >= maxConcurrent) {
    return { ok: false, limit: 'max_concurrent' };
  }
  let granted = input.maxOutput ?? Number.POSITIVE_INFINITY;
  const tph = limits.tokens_per_hour;
  if (tph !== undefined) {
    const cap = tph - standing.tokens - promptTokens;
    if (cap < need) return { ok: false, limit: 'tokens_per_hour' };
    granted = Math.min(granted, cap);
  }
  const promptUsd = promptTokens * inputPrice;
  const budgets: [LimitName, number | undefined, number][] = [
    ['budget_usd_per_day', limits.budget_usd_per_day, standing.usdDay],
    ['budget_usd_per_month', limits.budget_usd_per_month, standing.usdMonth],
  ];
  for (const [name, budget, used] of budgets) {
    if (budget === undefined) continue;
    const cap = affordableOutput(budget - used, promptUsd, outputPrice);
    if (cap < need) return { ok: false, limit: name };
    granted = Math.min(granted, cap);
  }
  const bounded = Number.isFinite(granted)
    ? Math.max(0, Math.floor(Math.min(granted, MAX_GRANTED_OUTPUT)))
    : undefined;
  return {
    ok: true,
    grantedOutput: bounded,
    tokens: promptTokens + (bounded ?? 0),
    usd: promptUsd + (bounded ?? 0) * outputPrice,
  };
}

/** Whole seconds for a Retry-After, never below 1. */
export function retrySeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * Reservations read for a tokens_per_hour Retry-After: those that expire first. Reading them
 * all made each refusal of a tenant with thousands in flight cost milliseconds, inside Redis
 * (admit.lua, which holds the same number) where every other tenant's admission waits.
 */
export const RELEASES_READ = 64;

/**
 * Milliseconds until `needed` tokens free up, given when each held amount leaves the window
 * (minute buckets age out, reservations expire); the whole hour when they never would. With
 * reservations left unread (RELEASES_READ), `unread` is when the last one read expires, the
 * answer when those read do not add up: no sooner than that, and a client asks again then.
 */
export function msUntilFreed(
  needed: number,
  releases: { at: number; tokens: number }[],
  now: number,
  unread?: number,
): number {
  let freed = 0;
  for (const release of [...releases].sort((a, b) => a.at - b.at)) {
    freed += release.tokens;
    if (freed >= needed) return Math.max(0, release.at - now);
  }
  return unread === undefined ? 3_600_000 : Math.max(0, unread - now);
}
