import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StreamEvent } from '../dialects/dialect.js';
import { splitAt } from '../../test/helpers/split-at.js';
import { createSseParser } from './sse.js';

/** Feeds the text in the given pieces and collects every event, including those at end(). */
function parse(pieces: (string | Buffer)[]): StreamEvent[] {
  const parser = createSseParser();
  const events: StreamEvent[] = [];
  for (const piece of pieces)
    events.push(...parser.push(Buffer.isBuffer(piece) ? piece : Buffer.from(piece)));
  events.push(...parser.end());
  return events;
}

describe('createSseParser', () => {
  const cases: { name: string; input: string; events: StreamEvent[] }[] = [
    {
      name: 'dispatches data-only events with an empty event name',
      input: 'data: {"a":1}\n\ndata: [DONE]\n\n',
      events: [
        { event: '', data: '{"a":1}' },
        { event: '', data: '[DONE]' },
      ],
    },
    {
      name: 'keeps the event name of named events',
      input: 'event: message_start\ndata: {"x":1}\n\n',
      events: [{ event: 'message_start', data: '{"x":1}' }],
    },
    {
      name: 'strips exactly one leading space from a value',
      input: 'data:  two\n\ndata:none\n\n',
      events: [
        { event: '', data: ' two' },
        { event: '', data: 'none' },
      ],
    },
    {
      name: 'joins multiple data lines with a newline',
      input: 'data: a\ndata: b\ndata\n\n',
      events: [{ event: '', data: 'a\nb\n' }],
    },
    {
      name: 'ignores comments, ids and retry fields',
      input: ': keep-alive\nid: 7\nretry: 100\ndata: x\n\n',
      events: [{ event: '', data: 'x' }],
    },
    {
      name: 'accepts CRLF and lone CR line endings',
      input: 'data: a\r\n\r\ndata: b\r\rdata: c\n\n',
      events: [
        { event: '', data: 'a' },
        { event: '', data: 'b' },
        { event: '', data: 'c' },
      ],
    },
    {
      name: 'drops a leading byte order mark',
      input: '\uFEFFdata: x\n\n',
      events: [{ event: '', data: 'x' }],
    },
    {
      name: 'does not dispatch an event without data and resets its name',
      input: 'event: ping\n\ndata: y\n\n',
      events: [{ event: '', data: 'y' }],
    },
    {
      name: 'emits an unterminated final event at end',
      input: 'data: a\n\ndata: {"usage":1}',
      events: [
        { event: '', data: 'a' },
        { event: '', data: '{"usage":1}' },
      ],
    },
    {
      name: 'keeps colons inside values',
      input: 'data: {"k":"v:w"}\n\n',
      events: [{ event: '', data: '{"k":"v:w"}' }],
    },
  ];

  it.each(cases)('$name', ({ input, events }) => {
    expect(parse([input])).toEqual(events);
  });

  it('does not see an extra empty line when \\r\\n is split between chunks', () => {
    expect(parse(['data: a\r', '\ndata: b\r\n\r', '\n'])).toEqual([{ event: '', data: 'a\nb' }]);
  });

  it('decodes a UTF-8 character split across chunks', () => {
    const bytes = Buffer.from('data: héllo 🌍\n\n');
    const at = bytes.indexOf(0xf0) + 2;
    expect(parse([bytes.subarray(0, at), bytes.subarray(at)])).toEqual([{ event: '', data: 'héllo 🌍' }]);
  });

  it('drops a line longer than the cap and keeps parsing', () => {
    const parser = createSseParser({ maxLineBytes: 16 });
    const events = [
      ...parser.push(Buffer.from('data: 0123456789')),
      ...parser.push(Buffer.from('0123456789\n\ndata: ok\n\n')),
    ];
    expect(events).toEqual([{ event: '', data: 'ok' }]);
  });

  it('parses the same events however the stream is split', () => {
    const text =
      '\uFEFF: hello\nevent: a\ndata: {"é":1}\ndata: 2\r\n\r\ndata: x\r\rid: 3\nevent: b\ndata:y\n\ndata: end';
    const bytes = Buffer.from(text);
    const expected = parse([bytes]);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }),
        (cuts) => {
          expect(
            parse(
              splitAt(
                bytes,
                [...cuts].sort((a, b) => a - b),
              ),
            ),
          ).toEqual(expected);
        },
      ),
    );
    expect(expected).toHaveLength(4);
  });
});

describe('createSseParser on arbitrary bytes', () => {
  it('gives the same events for any split and never throws', () => {
    const byte = fc.oneof(
      fc.constantFrom(0x0a, 0x0d, 0x3a, 0x20, 0x64, 0x61, 0x74),
      fc.integer({ min: 0, max: 255 }),
    );
    fc.assert(
      fc.property(
        fc.array(byte, { maxLength: 200 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (bytes, rawCuts) => {
          const input = Buffer.from(bytes);
          const cuts = rawCuts.map((c) => c % (input.length + 1));
          expect(parse(splitAt(input, cuts))).toEqual(parse([input]));
        },
      ),
      { numRuns: 500 },
    );
  });
});
