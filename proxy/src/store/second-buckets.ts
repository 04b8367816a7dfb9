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
  /** The newest second counted: while no second came in below it, the map is in time order. */
  private newest = Number.NEGATIVE_INFINITY;
  private inOrder = true;

  /**
   * Drops the seconds that left the window by `now`: O(1) unless the oldest just left, and
   * then only the seconds that left are visited while the map is in time order (a tenant at
   * a few requests a second lets its oldest second go about every second: walking all 60
   * each time was most of an admission's cold cache lines with a thousand tenants).
   */
  prune(now: number): void {
    const first = Math.floor(now / SECOND_MS) - WINDOW_SECONDS + 1;
    if (this.oldest >= first) return;
    this.oldest = Number.POSITIVE_INFINITY;
    for (const [second, count] of this.counts) {
      if (second < first) {
        this.counts.delete(second);
        this.total -= count;
      } else if (this.inOrder) {
        this.oldest = second;
        break;
      } else if (second < this.oldest) {
        this.oldest = second;
      }
    }
    if (this.counts.size === 0) {
      this.newest = Number.NEGATIVE_INFINITY;
      this.inOrder = true;
    } else if (!this.inOrder) {
      // Put the (at most 60) seconds back in time order, so the next prunes stop early again.
      const live = [...this.counts].sort((a, b) => a[0] - b[0]);
      this.counts.clear();
      for (const [second, count] of live) this.counts.set(second, count);
      this.inOrder = true;
    }
  }

  add(now: number): void {
    const second = Math.floor(now / SECOND_MS);
    const count = this.counts.get(second);
    if (count === undefined) {
      // A new second below the newest (requests admitted a little out of arrival order)
      // goes to the end of the map: the next prune walks all of it and sorts it again.
      if (second < this.newest) this.inOrder = false;
      else this.newest = second;
      this.counts.set(second, 1);
    } else {
      this.counts.set(second, count + 1);
    }
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
