import { describe, expect, it } from 'vitest';
import { BINARY_ALLOWANCE_TOKENS, estimateJsonTokens, hasPartType } from './prompt-size.js';

describe('estimateJsonTokens', () => {
  it('counts a quarter token per UTF-8 byte of text, rounded up', () => {
    expect(estimateJsonTokens('abcd'.repeat(100))).toBe(100);
    expect(estimateJsonTokens('é'.repeat(100))).toBe(50);
    expect(estimateJsonTokens(undefined, null)).toBe(0);
  });

  it('counts keys and object framing, so a message costs more than its text', () => {
    expect(estimateJsonTokens([{ role: 'user', content: 'hi' }])).toBeGreaterThan(estimateJsonTokens('hi'));
  });

  it('counts token-id prompts one token per number', () => {
    expect(estimateJsonTokens([1, 2, 3, 4, 5])).toBe(5);
  });

  it.each([
    ['a data URI', { url: `data:image/png;base64,${'A'.repeat(10_000)}` }],
    ['an Anthropic base64 source', { type: 'base64', media_type: 'image/png', data: 'A'.repeat(10_000) }],
    ['an Ollama image list', { images: ['A'.repeat(10_000)] }],
  ])('counts %s as one fixed allowance, not by size', (_name, value) => {
    const tokens = estimateJsonTokens(value);
    expect(tokens).toBeGreaterThanOrEqual(BINARY_ALLOWANCE_TOKENS);
    expect(tokens).toBeLessThan(BINARY_ALLOWANCE_TOKENS + 20);
  });

  it('counts a long text under a binary-looking key as text when it is short', () => {
    expect(estimateJsonTokens({ data: 'abcd'.repeat(10) })).toBeLessThan(20);
  });
});

describe('hasPartType', () => {
  it('finds a part of one of the given types', () => {
    const types = new Set(['image_url']);
    expect(hasPartType([{ type: 'text' }, { type: 'image_url' }], types)).toBe(true);
    expect(hasPartType([{ type: 'text' }], types)).toBe(false);
    expect(hasPartType('image_url', types)).toBe(false);
  });
});
