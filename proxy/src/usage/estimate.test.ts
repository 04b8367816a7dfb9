import { describe, expect, it } from 'vitest';
import { MAX_TOKENIZED_CHARS, estimateOutputTokens } from './estimate.js';

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

describe('estimateOutputTokens on very long output', () => {
  it('extrapolates past the tokenized prefix at the same tokens per character', () => {
    const piece = 'The quick brown fox jumps over the lazy dog. '.repeat(1000);
    const pieces = Array.from({ length: Math.ceil((3 * MAX_TOKENIZED_CHARS) / piece.length) }, () => piece);
    const prefix = pieces.slice(0, Math.ceil(MAX_TOKENIZED_CHARS / piece.length) + 1);
    const perPiece = estimateOutputTokens(prefix) / prefix.length;
    const estimate = estimateOutputTokens(pieces);
    expect(estimate / pieces.length).toBeGreaterThan(perPiece * 0.98);
    expect(estimate / pieces.length).toBeLessThan(perPiece * 1.02);
  });
});
