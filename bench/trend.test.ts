import { describe, expect, it } from 'vitest';
import { growthVerdict, linearFit } from './trend.js';

const MiB = 2 ** 20;

function series(values: number[]): { t: number; value: number }[] {
  return values.map((value, i) => ({ t: i * 10, value }));
}

describe('linearFit', () => {
  it('recovers the slope and intercept of an exact line', () => {
    const fit = linearFit(series([5, 7, 9, 11]));
    expect(fit.slope).toBeCloseTo(0.2, 12);
    expect(fit.intercept).toBeCloseTo(5, 12);
  });

  it('gives a zero slope for a single point', () => {
    expect(linearFit([{ t: 3, value: 42 }])).toEqual({ slope: 0, intercept: 42 });
  });
});

describe('growthVerdict', () => {
  it('calls a steady climb in the second half growth', () => {
    const verdict = growthVerdict(series([100, 100, 100, 100, 110, 120, 130, 140].map((v) => v * MiB)));
    expect(verdict.grew).toBe(true);
    expect(verdict.growthBytes).toBeCloseTo(30 * MiB, 0);
  });

  it('calls a garbage-collection sawtooth around a flat level flat', () => {
    const verdict = growthVerdict(
      series([100, 140, 100, 140, 100, 140, 100, 140, 100, 140].map((v) => v * MiB)),
    );
    expect(verdict.grew).toBe(false);
  });

  it('ignores a climb that only happens during warm-up, in the first half', () => {
    const verdict = growthVerdict(series([50, 80, 100, 120, 120, 121, 120, 121].map((v) => v * MiB)));
    expect(verdict.grew).toBe(false);
  });

  it('refuses to judge with fewer than three samples in the second half', () => {
    const verdict = growthVerdict(series([100, 200, 300, 400].map((v) => v * MiB)));
    expect(verdict.grew).toBe(false);
    expect(verdict.summary).toMatch(/too few samples/);
  });
});
