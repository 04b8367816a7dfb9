import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitTarget } from './server.js';

/** What the WHATWG URL parser makes of a request target: the reference splitTarget must match. */
function byUrl(target: string): { path: string; query: string } | undefined {
  const url = URL.parse(target.startsWith('/') ? `http://lanekeeper.invalid${target}` : target);
  if (!url) return undefined;
  return { path: url.pathname, query: url.search.startsWith('?') ? url.search.slice(1) : url.search };
}

describe('splitTarget', () => {
  it.each([
    '/v1/chat/completions',
    '/v1/models/gemini-1.5-pro:generateContent?alt=sse&key=abc',
    '/v1/../admin/metrics',
    '/v1/./chat/completions',
    '/v1/%2e%2e/admin',
    '/qdrant/..',
    '/a/b/..?x=1',
    '//evil.example/v1/chat/completions',
    '/v1\\..\\admin',
    '/v1/chat completions?q=a b',
    '/v1/模型?q=é',
    '/?',
    '/v1/x?y=%zz#frag',
    '*',
    '//',
    'http://upstream.example/v1/chat/completions?x=1',
  ])('normalises %j exactly as the URL parser does', (target) => {
    expect(splitTarget(target)).toEqual(byUrl(target));
  });

  it('agrees with the URL parser on any target a client can send', () => {
    const piece = fc.constantFrom(
      '/',
      '.',
      '..',
      '%2e',
      '%2E',
      '?',
      '#',
      '\\',
      ' ',
      'a',
      'v1',
      ':',
      '@',
      '%',
      'é',
      '&',
      '=',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const target = `/${pieces.join('')}`;
        expect(splitTarget(target)).toEqual(byUrl(target));
      }),
      { numRuns: 5000 },
    );
  });
});
