/**
 * Metering must not depend on how the network chunks a stream: every fixture stream is fed
 * to the stream tap split at every single point and at random multi-splits, with LF, CRLF
 * and lone-CR line endings, keep-alive comments and multi-line data fields, and must give
 * the same usage, model and error every time. The framer must hand back the exact bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createEventFramer } from '../../src/usage/event-framer.js';
import { createStreamTap, type TapResult } from '../../src/usage/stream-tap.js';
import { splitAt } from '../helpers/split-at.js';
import { STREAM_CASES, fixture, routeOf, type FixtureCase } from './fixture-cases.js';

type Variant = 'lf' | 'crlf' | 'cr' | 'comments' | 'multiline';

/** Index of the first comma outside JSON strings, or -1. */
function firstBareComma(json: string): number {
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === ',') return i;
  }
  return -1;
}

/** The fixture rewritten in a way that must not change what it means. */
function variant(bytes: Buffer, kind: Variant, ndjson: boolean): Buffer {
  const text = bytes.toString('utf8');
  switch (kind) {
    case 'lf':
      return bytes;
    case 'crlf':
      return Buffer.from(text.replace(/\r?\n/g, '\r\n'));
    case 'cr':
      return Buffer.from(text.replace(/\r?\n/g, '\r'));
    case 'comments':
      return Buffer.from(
        ndjson
          ? text.replace(/\n/g, '\n\n  \n')
          : ': connected\n\n' + text.replace(/(\r?\n\r?\n)/g, '$1: keep-alive\n'),
      );
    case 'multiline':
      if (ndjson) return bytes;
      return Buffer.from(
        text
          .split('\n')
          .map((line) => {
            if (!line.startsWith('data: {')) return line;
            const json = line.slice('data: '.length);
            const comma = firstBareComma(json);
            return comma === -1 ? line : `data: ${json.slice(0, comma + 1)}\ndata: ${json.slice(comma + 1)}`;
          })
          .join('\n'),
      );
  }
}

function variantsOf(c: FixtureCase): Variant[] {
  return c.dialect.streamFormat === 'ndjson'
    ? ['lf', 'crlf', 'comments']
    : ['lf', 'crlf', 'cr', 'comments', 'multiline'];
}

function tap(c: FixtureCase, pieces: Buffer[]): TapResult {
  const t = createStreamTap(c.dialect, routeOf(c));
  for (const piece of pieces) t.push(piece);
  return t.end();
}

function expectCase(c: FixtureCase, result: TapResult): void {
  expect(result.usage).toEqual(c.usage);
  expect(result.model).toBe(c.model);
  expect(result.error).toBe(c.error);
  if (c.text !== undefined) expect(result.texts.join('')).toBe(c.text);
}

describe.each(STREAM_CASES)('the stream tap on $file', (c) => {
  const original = fixture(c.file);
  const ndjson = c.dialect.streamFormat === 'ndjson';

  it('reads the recorded usage, model and error from the whole stream', () => {
    expectCase(c, tap(c, [original]));
  });

  it.each(['lf', 'crlf'] as const)('reads the same at every single split point (%s)', (kind) => {
    const bytes = variant(original, kind, ndjson);
    for (let at = 0; at <= bytes.length; at++) {
      const result = tap(c, [bytes.subarray(0, at), bytes.subarray(at)]);
      expect(result.usage).toEqual(c.usage);
      expect(result.model).toBe(c.model);
      expect(result.error).toBe(c.error);
    }
  });

  it.each(variantsOf(c))('reads the same at random multi-splits (%s)', (kind) => {
    const bytes = variant(original, kind, ndjson);
    const alreadyCrlf = kind === 'crlf' && original.includes('\r\n');
    if (kind !== 'lf' && !alreadyCrlf) expect(bytes.equals(original)).toBe(false);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 24 }), (cuts) => {
        expectCase(c, tap(c, splitAt(bytes, cuts)));
      }),
      { numRuns: 60 },
    );
  });

  it.each(variantsOf(c))('frames it back to the exact input bytes (%s)', (kind) => {
    const bytes = variant(original, kind, ndjson);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 24 }), (cuts) => {
        const framer = createEventFramer(c.dialect.streamFormat);
        const out: Buffer[] = [];
        for (const piece of splitAt(bytes, cuts)) out.push(...framer.push(piece));
        out.push(framer.end());
        expect(Buffer.concat(out).equals(bytes)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });
});
