import { describe, expect, it } from 'vitest';
import { estimateOutputTokens } from './estimate.js';

describe('estimateOutputTokens', () => {
  it('counts nothing for no text', () => {
    expect(estimateOutputTokens([])).toBe(0);
    expect(estimateOutputTokens([''])).toBe(0);
  });

  it('counts stream deltas as one text', () => {
    expect(estimateOutputTokens(['Hello', ' world'])).toBe(estimateOutputTokens(['Hello world']));
    expect(estimateOutputTokens(['Hello world'])).toBe(2);
  });

  it('counts long text in slices without losing much', () => {
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(5000);
    const whole = estimateOutputTokens([text]);
    expect(whole).toBeGreaterThan(45_000);
    expect(whole).toBeLessThan(55_000);
  });
});
