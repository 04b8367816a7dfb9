import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalPath } from './request/canonical-path.js';
import { splitTarget } from './server.js';

/**
 * The reference splitTarget must match: the WHATWG URL parser's split, then the canonical
 * path (escapes decoded once, dot segments resolved), or the reason there is none.
 */
function byUrl(target: string): { path: string; query: string } | { error: string } {
  const url = URL.parse(target.startsWith('/') ? `http://lanekeeper.invalid${target}` : target);
  if (!url) return { error: 'The request target is not a valid path.' };
  const canonical = canonicalPath(url.pathname);
  if ('error' in canonical) return canonical;
  return { path: canonical.path, query: url.search.startsWith('?') ? url.search.slice(1) : url.search };
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

  it.each([
    ['/v1/chat/%63ompletions', '/v1/chat/completions'],
    ['/v1/chat%2Fcompletions', '/v1/chat/completions'],
    ['/v1/chat%2fcompletions', '/v1/chat/completions'],
    ['/api/%63hat', '/api/chat'],
    ['/v1/%2e%2e/v1/chat/completions', '/v1/chat/completions'],
    ['/v1/x/%2E%2E%2F%2E%2E/v1/chat/completions', '/v1/chat/completions'],
    ['/v1/chat/%2563ompletions', '/v1/chat/%63ompletions'],
    ['/v1/mod%C3%A8les', '/v1/modèles'],
  ])('routes %j as %j', (target, path) => {
    expect(splitTarget(target)).toEqual({ path, query: '' });
  });

  it.each(['/v1/chat/%zzompletions', '/v1/%', '/v1/%E0%A4%A', '/v1/chat%00/completions', '/v1/a%0Ab'])(
    'refuses %j',
    (target) => {
      expect(splitTarget(target)).toHaveProperty('error');
    },
  );

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
