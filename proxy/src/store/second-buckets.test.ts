import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SecondBuckets, WINDOW_SECONDS } from './second-buckets.js';

/** The window as a list of every admission's second, recounted from scratch each time. */
class Recount {
  private seconds: number[] = [];
  prune(now: number): void {
    const first = Math.floor(now / 1000) - WINDOW_SECONDS + 1;
    this.seconds = this.seconds.filter((s) => s >= first);
  }
  add(now: number): void {
    this.seconds.push(Math.floor(now / 1000));
  }
  get total(): number {
    return this.seconds.length;
  }
  nextFreeMs(now: number): number {
    if (this.seconds.length === 0) return 0;
    return Math.max(0, (Math.min(...this.seconds) + WINDOW_SECONDS) * 1000 - now);
  }
}

const T0 = 1_767_225_600_000;

describe('SecondBuckets', () => {
  it('counts what a recount of every admission counts, in or out of arrival order', () => {
    // Each step moves the clock (mostly forward, sometimes back by up to 3 s, as admissions
    // of requests that arrived in another order do) and prunes, then maybe adds.
    const step = fc.record({
      move: fc.oneof(
        { arbitrary: fc.integer({ min: 0, max: 2_500 }), weight: 12 },
        { arbitrary: fc.integer({ min: -3_000, max: 0 }), weight: 3 },
        { arbitrary: fc.constant(70_000), weight: 1 },
      ),
      add: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 600 }), (steps) => {
        const buckets = new SecondBuckets();
        const recount = new Recount();
        let now = T0;
        for (const { move, add } of steps) {
          now = Math.max(T0, now + move);
          // The store prunes with each admission's own clock, which can be behind the last.
          buckets.prune(now);
          recount.prune(now);
          expect(buckets.total).toBe(recount.total);
          expect(buckets.nextFreeMs(now)).toBe(recount.nextFreeMs(now));
          if (add) {
            buckets.add(now);
            recount.add(now);
            expect(buckets.total).toBe(recount.total);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('drops a late-counted older second even though a newer one sits before it in the map', () => {
    const buckets = new SecondBuckets();
    buckets.add(T0 + 5_000);
    buckets.add(T0 + 1_000); // admitted after the request of second 5, though it came first
    buckets.prune(T0 + 61_000); // second 1 has left the window, second 5 has not
    expect(buckets.total).toBe(1);
    expect(buckets.nextFreeMs(T0 + 61_000)).toBe(4_000);
    buckets.add(T0 + 62_000);
    buckets.prune(T0 + 65_000);
    expect(buckets.total).toBe(1);
    expect(buckets.nextFreeMs(T0 + 65_000)).toBe(57_000);
  });

  it('lets a whole window go after a quiet minute, and counts afresh', () => {
    const buckets = new SecondBuckets();
    for (let i = 0; i < 600; i++) buckets.add(T0 + i * 100);
    buckets.add(T0 + 5_000); // an earlier second than the newest, arriving late
    expect(buckets.total).toBe(601);
    buckets.prune(T0 + 60_000 + 59_999);
    expect(buckets.total).toBe(0);
    expect(buckets.nextFreeMs(T0 + 200_000)).toBe(0);
    buckets.add(T0 + 200_000);
    expect(buckets.total).toBe(1);
    expect(buckets.nextFreeMs(T0 + 200_000)).toBe(60_000);
  });
});
