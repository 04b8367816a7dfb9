import { describe, expect, it } from 'vitest';
import { createFailureDetector, DEFAULT_FAILURE_DETECTOR } from './failure-detector.js';

const options = { consecutiveFailures: 3, failureRatio: 0.5, windowMs: 1_000, minCalls: 10 };

describe('createFailureDetector', () => {
  it('trips on exactly the configured number of failures in a row, and a success restarts the count', () => {
    const detector = createFailureDetector(options);
    expect(detector.failure(0)).toBe(false);
    expect(detector.failure(1)).toBe(false);
    detector.success(2);
    expect(detector.failure(3)).toBe(false);
    expect(detector.failure(4)).toBe(false);
    expect(detector.inARow()).toBe(2);
    expect(detector.failure(5)).toBe(true);
    expect(detector.inARow()).toBe(3);
  });

  it('trips on the failure ratio once the window holds min_calls, even when failures alternate with successes', () => {
    const detector = createFailureDetector(options);
    const results: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      detector.success(i * 10);
      results.push(detector.failure(i * 10 + 5));
    }
    // 10 calls, 5 failed: 50% of min_calls at the tenth.
    expect(results).toEqual([false, false, false, false, true]);
  });

  it('forgets calls that have left the window', () => {
    const detector = createFailureDetector({ ...options, consecutiveFailures: 100 });
    for (let i = 0; i < 20; i++) detector.success(i);
    const results: boolean[] = [];
    for (let i = 0; i < 10; i++) results.push(detector.failure(5_000 + i));
    // Had the 20 old successes counted, 10 of 30 would be a third, under the ratio.
    expect(results).toEqual([...Array<boolean>(9).fill(false), true]);
  });

  it('does not trip a healthy store that fails rarely, over a long time', () => {
    const detector = createFailureDetector(DEFAULT_FAILURE_DETECTOR);
    let tripped = false;
    for (let t = 0; t < 100_000; t += 5) {
      if (t % 500 === 0) tripped ||= detector.failure(t);
      else detector.success(t);
    }
    expect(tripped).toBe(false);
  });

  it('reset clears the counts; a clock that steps back does not break it', () => {
    const detector = createFailureDetector(options);
    detector.failure(10_000);
    detector.failure(10_001);
    detector.reset();
    expect(detector.failure(10_002)).toBe(false);
    expect(detector.failure(3)).toBe(false);
    expect(detector.failure(2)).toBe(true);
  });
});
