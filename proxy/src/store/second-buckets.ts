/**
 * The requests-per-minute window of one tenant, counted in per-second buckets: at most 60,
 * whatever the rate, so memory and the work of an admission stay bounded (a per-request log
 * held 240,000 entries at 4,000 req/s, and pruning it after a pause stalled every tenant).
 * A second's requests all leave the window together, 60 s after the second began: admission
 * is exact at one-second resolution (limit N admits N in any 60 whole seconds, none more),
 * and a request counts for between 59 and 60 s instead of exactly 60. The Redis store keeps the
 * same buckets in a hash (lua/admit.lua), so both stores agree.
 */
const SECOND_MS = 1_000;
/** Buckets in the window: a bucket leaves it this many seconds after it began. */
export const WINDOW_SECONDS = 60;

export class SecondBuckets {
  private readonly counts = new Map<number, number>();
  /** Requests counted in the window (as of the last prune). */
  total = 0;
  /** The oldest second counted; the buckets are scanned only once it has left the window. */
  private oldest = Number.POSITIVE_INFINITY;

  /** Drops the seconds that left the window by `now`: O(1) unless the oldest just left. */
  prune(now: number): void {
    const first = Math.floor(now / SECOND_MS) - WINDOW_SECONDS + 1;
    if (this.oldest >= first) return;
    this.oldest = Number.POSITIVE_INFINITY;
    for (const [second, count] of this.counts) {
      if (second < first) {
        this.counts.delete(second);
        this.total -= count;
      } else if (second < this.oldest) {
        this.oldest = second;
      }
    }
  }

  add(now: number): void {
    const second = Math.floor(now / SECOND_MS);
    this.counts.set(second, (this.counts.get(second) ?? 0) + 1);
    this.total++;
    if (second < this.oldest) this.oldest = second;
  }

  /** Milliseconds until the oldest counted second leaves the window (0 when none is counted). */
  nextFreeMs(now: number): number {
    return this.oldest === Number.POSITIVE_INFINITY
      ? 0
      : Math.max(0, (this.oldest + WINDOW_SECONDS) * SECOND_MS - now);
  }
}
