/**
 * Decides when a store is down from the outcomes of its calls, so that one slow call (a GC
 * pause on the Redis host, a busy proxy) does not flip every admission to the on_store_error
 * policy. The store is judged down after `consecutiveFailures` failures in a row, or when at
 * least `minCalls` calls in the last `windowMs` failed at `failureRatio` or more: the first
 * catches a dead Redis within a handful of calls even at low traffic, the second a Redis that
 * answers some calls but drops or times out many of them under load.
 *
 * The window is ten buckets of `windowMs / 10`, so memory and work per call stay constant
 * whatever the request rate; a bucket leaves the window whole (at most a tenth early).
 */

/** The thresholds, as configured under `store.redis.failure_detector`. */
export interface FailureDetectorOptions {
  readonly consecutiveFailures: number;
  readonly failureRatio: number;
  readonly windowMs: number;
  readonly minCalls: number;
}

/**
 * Five in a row means a dead Redis is noticed after five requests (a few ms at any real
 * rate), while a lone timeout never is; half of at least 20 calls in 10 s is far above what
 * a healthy Redis gets (it fails none) and low enough that a sick one cannot hide behind the
 * odd success that resets the consecutive count.
 */
export const DEFAULT_FAILURE_DETECTOR: FailureDetectorOptions = {
  consecutiveFailures: 5,
  failureRatio: 0.5,
  windowMs: 10_000,
  minCalls: 20,
};

const BUCKETS = 10;

/** The detector of one store; `now` is any monotonic millisecond clock. */
export interface FailureDetector {
  /** A call answered. */
  success(now: number): void;
  /** A call failed; true when that makes the store down. */
  failure(now: number): boolean;
  /** Failures since the last success. */
  inARow(): number;
  /** Forgets everything (the store was judged down and has come back). */
  reset(): void;
}

export function createFailureDetector(
  options: FailureDetectorOptions = DEFAULT_FAILURE_DETECTOR,
): FailureDetector {
  const { consecutiveFailures, failureRatio, windowMs, minCalls } = options;
  const bucketMs = Math.max(1, windowMs / BUCKETS);
  const calls = new Array<number>(BUCKETS).fill(0);
  const failures = new Array<number>(BUCKETS).fill(0);
  /** Index (time / bucketMs) of the newest bucket in use. */
  let newest = -Infinity;
  let totalCalls = 0;
  let totalFailures = 0;
  let inARow = 0;

  function advance(now: number): number {
    const index = Math.floor(now / bucketMs);
    if (index > newest) {
      // Empty the buckets between the newest one and this one (all of them after a long gap).
      const gap = Math.min(BUCKETS, index - newest);
      for (let i = 1; i <= gap; i++) {
        const slot = (((index - gap + i) % BUCKETS) + BUCKETS) % BUCKETS;
        totalCalls -= calls[slot]!;
        totalFailures -= failures[slot]!;
        calls[slot] = 0;
        failures[slot] = 0;
      }
      newest = index;
    }
    // A clock that steps back lands in the newest bucket rather than resurrecting an old one.
    return ((newest % BUCKETS) + BUCKETS) % BUCKETS;
  }

  return {
    success(now) {
      const slot = advance(now);
      calls[slot]!++;
      totalCalls++;
      inARow = 0;
    },
    failure(now) {
      const slot = advance(now);
      calls[slot]!++;
      failures[slot]!++;
      totalCalls++;
      totalFailures++;
      inARow++;
      return (
        inARow >= consecutiveFailures ||
        (totalCalls >= minCalls && totalFailures >= failureRatio * totalCalls)
      );
    },
    inARow: () => inARow,
    reset() {
      calls.fill(0);
      failures.fill(0);
      newest = -Infinity;
      totalCalls = 0;
      totalFailures = 0;
      inARow = 0;
    },
  };
}
