import { describe, expect, it } from 'vitest';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
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

describe('estimateOutputTokens on text built to be slow to tokenize', () => {
  // Runs without a break are one pre-token each, and byte-pair merging grows with the square
  // of a pre-token's length: 64 KiB of these took 2 to 10 s each, the event loop held.
  const random = (n: number, base: number, span: number) =>
    Array.from({ length: n }, () => String.fromCharCode(base + Math.floor(Math.random() * span))).join('');
  const cases: [string, string][] = [
    ['unpunctuated CJK', random(64 * 1024, 0x4e00, 2000)],
    ['random letters without a space', random(64 * 1024, 0x61, 26)],
    ['one repeated letter', 'x'.repeat(1024 * 1024)],
    ['spaces', ' '.repeat(256 * 1024)],
  ];

  it.each(cases)('counts %s in bounded time, in the same order as its characters', (_name, text) => {
    const started = process.cpuUsage();
    const tokens = estimateOutputTokens([text]);
    const { user, system } = process.cpuUsage(started);
    // The budget is 50 ms; a wide margin, since the test runs beside others.
    expect((user + system) / 1000).toBeLessThan(1_000);
    expect(tokens).toBeGreaterThan(0);
    // Never more than one a byte, as byte-pair encoding goes.
    expect(tokens).toBeLessThanOrEqual(Buffer.byteLength(text));
  });

  it("cuts nothing in ordinary text: the count is the tokenizer's own", () => {
    const english = 'The quick brown fox jumps over the lazy dog. '.repeat(100);
    expect(estimateOutputTokens([english])).toBe(countTokens(english));
  });
});
