import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitAt } from '../../test/helpers/split-at.js';
import { createEventFramer, rewriteBlock, serializeEvent } from './event-framer.js';

function frame(format: 'sse' | 'ndjson', pieces: Buffer[]): Buffer[] {
  const framer = createEventFramer(format);
  const out: Buffer[] = [];
  for (const piece of pieces) out.push(...framer.push(piece));
  out.push(framer.end());
  return out;
}

const SSE_TEXT =
  '\uFEFF: keep-alive\n\ndata: {"a":"é"}\n\nevent: x\r\ndata: 1\r\ndata: 2\r\n\r\ndata: lone\r\rdata: [DONE]\n\ndata: tail';

describe('createEventFramer', () => {
  it('cuts SSE into blocks ending with their blank line', () => {
    const blocks = frame('sse', [Buffer.from(SSE_TEXT)]).map((b) => b.toString());
    expect(blocks).toEqual([
      '\uFEFF: keep-alive\n\n',
      'data: {"a":"é"}\n\n',
      'event: x\r\ndata: 1\r\ndata: 2\r\n\r\n',
      'data: lone\r\r',
      'data: [DONE]\n\n',
      'data: tail',
    ]);
  });

  it('holds a block ending in \\r until it sees whether a \\n follows', () => {
    const framer = createEventFramer('sse');
    expect(framer.push(Buffer.from('data: a\r\n\r'))).toEqual([]);
    expect(framer.push(Buffer.from('\ndata: b\n\n')).map(String)).toEqual(['data: a\r\n\r\n', 'data: b\n\n']);
  });

  it.each(['sse', 'ndjson'] as const)('returns exactly the input bytes for any split (%s)', (format) => {
    const text = format === 'sse' ? SSE_TEXT : '{"a":1}\r\n\n{"b":"ü"}\n{"c":3}';
    const bytes = Buffer.from(text);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: bytes.length }), { maxLength: 10 }), (cuts) => {
        const blocks = frame(format, splitAt(bytes, cuts));
        expect(Buffer.concat(blocks).equals(bytes)).toBe(true);
        expect(blocks.map(String)).toEqual(frame(format, [bytes]).map(String));
      }),
    );
  });

  it('ends an NDJSON block after each newline', () => {
    expect(frame('ndjson', [Buffer.from('{"a":1}\n{"b"'), Buffer.from(':2}\n')]).map(String)).toEqual([
      '{"a":1}\n',
      '{"b":2}\n',
      '',
    ]);
  });

  it('reads the event inside a raw block', () => {
    const framer = createEventFramer('sse');
    expect(framer.eventOf(Buffer.from('event: e\r\ndata: x\r\n\r\n'))).toEqual({ event: 'e', data: 'x' });
    expect(framer.eventOf(Buffer.from(': comment\n\n'))).toBeUndefined();
  });

  it('drops, keeps or rewrites one block through rewriteBlock', () => {
    const framer = createEventFramer('sse');
    const block = Buffer.from('data: {"usage":null}\r\n\r\n');
    expect(rewriteBlock(framer, 'sse', block, (e) => e)).toBe(block);
    expect(rewriteBlock(framer, 'sse', block, () => null)).toBeNull();
    expect(String(rewriteBlock(framer, 'sse', block, () => ({ event: '', data: '{}' })))).toBe(
      'data: {}\r\n\r\n',
    );
  });

  it('serialises multi-line data as several data lines', () => {
    expect(String(serializeEvent({ event: 'x', data: 'a\nb' }, 'sse'))).toBe(
      'event: x\ndata: a\ndata: b\n\n',
    );
  });
});

describe('createEventFramer on arbitrary bytes', () => {
  const byte = fc.oneof(
    fc.constantFrom(0x0a, 0x0d, 0x3a, 0x20, 0x64, 0x61, 0x74, 0xef, 0xbb, 0xbf),
    fc.integer({ min: 0, max: 255 }),
  );
  it.each(['sse', 'ndjson'] as const)('returns exactly the input however it is split (%s)', (format) => {
    fc.assert(
      fc.property(fc.array(fc.array(byte, { maxLength: 40 }), { maxLength: 12 }), (chunks) => {
        const pieces = chunks.map((c) => Buffer.from(c));
        const framer = createEventFramer(format);
        const out: Buffer[] = [];
        for (const piece of pieces) out.push(...framer.push(piece));
        out.push(framer.end());
        expect(Buffer.concat(out).equals(Buffer.concat(pieces))).toBe(true);
        for (const block of out) expect(() => framer.eventOf(block)).not.toThrow();
      }),
      { numRuns: 500 },
    );
  });
});
