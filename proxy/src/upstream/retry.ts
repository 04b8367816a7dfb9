/**
 * When a failed upstream call is tried again, on the same upstream (a retry) or on the next
 * model of the alias's fallback list (a fallback), and how long a retry waits: exponential
 * backoff with full jitter, or the upstream's Retry-After when it gives one, capped.
 */
import type { FailureTrigger } from '../config/upstreams.js';

/** What went wrong with one call: a status, or no status at all. */
export type Failure = { readonly status: number } | { readonly kind: 'connect_error' | 'timeout' };

/** The failure as a config trigger and a metric label: "503", "connect_error". */
export function failureName(failure: Failure): string {
  return 'status' in failure ? String(failure.status) : failure.kind;
}

export function matches(triggers: readonly FailureTrigger[], failure: Failure): boolean {
  return 'status' in failure ? triggers.includes(failure.status) : triggers.includes(failure.kind);
}

/**
 * True when the failure says the upstream is unwell (counts toward ejection): a 5xx, no
 * answer, or a 401 (it refuses the proxy's key, and will until an operator fixes it). A 429
 * only says "slow down".
 */
export function unhealthy(failure: Failure): boolean {
  return 'kind' in failure || failure.status >= 500 || failure.status === 401;
}

/**
 * The Retry-After header in ms (delta-seconds or an HTTP date), or undefined when absent
 * or unreadable.
 */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(text)) return Math.round(Number(text) * 1000);
  // An HTTP date names its day and month; anything else ("-5", which Date.parse reads as a
  // year) is not one.
  if (!/[a-z]{3}/i.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/**
 * How long to wait before retry number `retry` (1 for the first): the upstream's
 * Retry-After when given, else a random time up to base * 2^(retry-1) (full jitter, which
 * spreads many clients' retries apart); both capped at `max`.
 */
export function backoffMs(
  retry: number,
  options: { base: number; max: number; retryAfter?: number | undefined },
  random: () => number = Math.random,
): number {
  if (options.retryAfter !== undefined) return Math.min(options.retryAfter, options.max);
  const ceiling = Math.min(options.max, options.base * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * ceiling);
}
