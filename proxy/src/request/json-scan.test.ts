import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { foldKey, scanJson } from './json-scan.js';

/** The deepest nesting of a parsed value (a scalar is 0). */
function depth(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  const inner = Object.values(value as object).map(depth);
  return 1 + (inner.length ? Math.max(...inner) : 0);
}

/** True when the top-level object has two keys equal under Go's folding. */
function foldCollision(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return new Set(keys.map(foldKey)).size !== keys.length;
}

describe('scanJson', () => {
  it('finds nothing wrong in what JSON.stringify writes, within the depth limit', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), (value) => {
        const problem = scanJson(JSON.stringify(value), 64);
        if (foldCollision(value)) expect(problem?.kind).toBe('case');
        else expect(problem).toBeUndefined();
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses exactly the bodies deeper than the limit', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 12 }), fc.integer({ min: 1, max: 12 }), (value, limit) => {
        const text = JSON.stringify(value);
        const problem = scanJson(text, limit);
        // The scan stops at the first problem: a body that also has keys colliding under
        // folding (random keys such as "" and "_") may be refused for those first.
        const otherwise = scanJson(text, Number.POSITIVE_INFINITY);
        if (depth(value) <= limit) expect(problem).toEqual(otherwise);
        else if (otherwise === undefined) expect(problem).toEqual({ kind: 'depth', limit });
        else expect(problem).toBeDefined();
      }),
      { numRuns: 2000 },
    );
  });

  it('finds a repeated key at any depth, however it is escaped', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 5 }),
        (key, nesting) => {
          const escaped = JSON.stringify(key).replace(/[a-z]/, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
          const inner = `{${JSON.stringify(key)}:1,"other":[1,{"x":"}"}],${escaped}:2}`;
          const text = `${'{"a":'.repeat(nesting)}${inner}${'}'.repeat(nesting)}`;
          expect(JSON.parse(text)).toBeTruthy();
          expect(scanJson(text, 64)).toEqual({ kind: 'duplicate', key });
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('does not mistake string contents for keys or brackets', () => {
    const text = '{"messages":[{"content":"\\"model\\": {[[[ \\\\"}"}],"model":"m"}';
    expect(scanJson(text, 3)).toBeUndefined();
  });
});
