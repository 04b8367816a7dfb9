import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StreamEvent } from '../dialects/dialect.js';
import { createNdjsonParser } from './ndjson.js';

function parse(pieces: Buffer[]): StreamEvent[] {
  const parser = createNdjsonParser();
  const events: StreamEvent[] = [];
  for (const piece of pieces) events.push(...parser.push(piece));
  events.push(...parser.end());
  return events;
}

describe('createNdjsonParser', () => {
  it('returns one event per non-empty line, tolerating CRLF and a BOM', () => {
    const input = Buffer.from('\uFEFF{"a":1}\r\n\n  \n{"b":"ü"}\n{"c":3}');
    expect(parse([input])).toEqual([
      { event: '', data: '{"a":1}' },
      { event: '', data: '{"b":"ü"}' },
      { event: '', data: '{"c":3}' },
    ]);
  });

  it('returns the same lines for every split point', () => {
    const bytes = Buffer.from(
      '{"model":"llama","message":{"content":"é"}}\r\n{"done":true,"eval_count":5}\n',
    );
    const expected = parse([bytes]);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: bytes.length }),
        fc.integer({ min: 0, max: bytes.length }),
        (a, b) => {
          const [x, y] = a < b ? [a, b] : [b, a];
          expect(parse([bytes.subarray(0, x), bytes.subarray(x, y), bytes.subarray(y)])).toEqual(expected);
        },
      ),
    );
    expect(expected).toHaveLength(2);
  });
});
