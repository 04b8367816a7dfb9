import { SpanKind } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import root from '@opentelemetry/otlp-transformer/build/src/generated/root.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  officialSpan,
  assertRunsWriteTheSame,
  ourBodies,
  spanOptions,
  type AttributeValue as Value,
  type SpanOptions as Options,
} from '../../test/helpers/official-span.js';
import { otlpProto, writeUnixNanos } from './otlp-proto.js';
import { SpanBody } from './span-body.js';

/** The generated protobufjs type the official serializer encodes with. */
const exportRequest = (
  root as unknown as {
    opentelemetry: {
      proto: {
        collector: {
          trace: {
            v1: {
              ExportTraceServiceRequest: {
                decode(bytes: Uint8Array): unknown;
                toObject(message: unknown, options: object): unknown;
              };
            };
          };
        };
      };
    };
  }
).opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

/** A body decoded by the official message type, every default filled in so absent equals default. */
function decode(bytes: Uint8Array): unknown {
  return exportRequest.toObject(exportRequest.decode(bytes), {
    longs: String,
    bytes: String,
    enums: Number,
    defaults: true,
    arrays: true,
  });
}

/** What the official SDK and protobuf serializer write for one span. */
function official(options: Options) {
  const finished = officialSpan(options);
  return {
    bytes: ProtobufTraceSerializer.serializeRequest([finished])!,
    traceId: finished.spanContext().traceId,
    spanId: finished.spanContext().spanId,
  };
}

/** Our export body for the same span, envelope included, as the batch sends it. */
function ours(sdk: { traceId: string; spanId: string }, options: Options): Buffer {
  const { bodies } = ourBodies(otlpProto, [{ options, ...sdk }]);
  expect(bodies).toHaveLength(1);
  return bodies[0]!;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE, 'g');

/** Every string in a decoded body, passed through `map`. */
function mapStrings(value: unknown, map: (text: string) => string): unknown {
  if (typeof value === 'string') return map(value);
  if (Array.isArray(value)) return value.map((item) => mapStrings(item, map));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, mapStrings(item, map)]));
}

type DecodedSpan = Record<string, string>;

function spanOf(body: unknown): DecodedSpan {
  return (body as { resourceSpans: { scopeSpans: { spans: DecodedSpan[] }[] }[] }).resourceSpans[0]!
    .scopeSpans[0]!.spans[0]!;
}

/** The two bodies with times compared to the microsecond, the precision ours keeps. */
function expectSameExport(actual: unknown, expected: unknown): void {
  const times = (body: unknown) => {
    const span = spanOf(body);
    const found = [BigInt(span.startTimeUnixNano!), BigInt(span.endTimeUnixNano!)];
    span.startTimeUnixNano = span.endTimeUnixNano = '';
    return found;
  };
  const [ourStart, ourEnd] = times(actual);
  const [start, end] = times(expected);
  for (const difference of [ourStart! - start!, ourEnd! - end!]) {
    expect(Number(difference)).toBeLessThanOrEqual(1_000);
    expect(Number(difference)).toBeGreaterThanOrEqual(-1_000);
  }
  // Ours must be valid UTF-8 (protobufjs would decode a CESU-8 surrogate back to a lone
  // one); the official writes lone surrogates that way in short strings, U+FFFD in long.
  expect(mapStrings(actual, (text) => (LONE_SURROGATE.test(text) ? 'lone surrogate!' : text))).toEqual(
    actual,
  );
  expect(actual).toStrictEqual(mapStrings(expected, (text) => text.replace(LONE_SURROGATES, '\uFFFD')));
}

describe('OTLP protobuf spans', () => {
  it('writes what the official SDK and protobuf serializer write, for any attributes, name and status', () => {
    const value = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({ unit: 'binary', minLength: 40 }),
      fc.integer(),
      fc.maxSafeInteger(),
      fc.double({ noNaN: true }),
      fc.boolean(),
    );
    fc.assert(
      fc.property(spanOptions(value), (options) => {
        const sdk = official(options);
        expectSameExport(decode(ours(sdk, options)), decode(sdk.bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('copies a run of attributes as the very bytes it wrote, across bodies and drops', () => {
    assertRunsWriteTheSame(otlpProto);
  });

  it('writes a lone surrogate as U+FFFD, where the official writer sends invalid UTF-8', () => {
    const options = {
      name: 'x',
      kind: SpanKind.SERVER,
      attributes: [['k', 'a\uD800b']] as [string, Value][],
    };
    const sdk = official({ ...options, startMs: 1, endMs: 2 });
    const body = ours(sdk, { ...options, startMs: 1, endMs: 2 });
    expect(body.includes(Buffer.from('a\uFFFDb', 'utf8'))).toBe(true);
    // CESU-8 for U+D800: a collector that checks proto3 strings refuses the whole export.
    expect(Buffer.from(sdk.bytes).includes(Buffer.from([0x61, 0xed, 0xa0, 0x80, 0x62]))).toBe(true);
  });

  it('keeps the microsecond of a wall-clock time in fixed64 nanoseconds', () => {
    const nanos = (ms: number) => {
      const bytes = Buffer.alloc(8);
      writeUnixNanos(bytes, 0, ms);
      return bytes.readBigUInt64LE();
    };
    expect(nanos(1_796_497_813_844.904)).toBe(1_796_497_813_844_904_000n);
    expect(nanos(1_796_497_813_000)).toBe(1_796_497_813_000_000_000n);
  });

  const ids = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' };
  const spanWith = (name: string, value: string): Options => ({
    name,
    kind: SpanKind.SERVER,
    attributes: [['k', value]],
    startMs: 1,
    endMs: 2,
  });
  const spansOf = (bytes: Buffer) =>
    (decode(bytes) as { resourceSpans: { scopeSpans: { spans: DecodedSpan[] }[] }[] }).resourceSpans[0]!
      .scopeSpans[0]!.spans;

  it('frames spans of any size: a span length of one, two or three bytes, and envelopes around many spans', () => {
    // Under 128 bytes, 16 KiB and more: the room kept for the span's length is two bytes.
    for (const size of [0, 100, 300, 16_000, 16_400, 40_000]) {
      const { bodies } = ourBodies(otlpProto, [{ options: spanWith('n', 'v'.repeat(size)), ...ids }]);
      const [span] = spansOf(bodies[0]!);
      expect(span!.name).toBe('n');
      expect(
        (span as unknown as { attributes: { value: { stringValue: string } }[] }).attributes[0]!.value
          .stringValue,
      ).toHaveLength(size);
    }
    for (const count of [1, 10, 1_000]) {
      const spans = Array.from({ length: count }, (_, i) => ({
        options: spanWith(`s${i}`, 'v'.repeat(300)),
        ...ids,
      }));
      const { bodies } = ourBodies(otlpProto, spans);
      expect(bodies).toHaveLength(1);
      expect(spansOf(bodies[0]!).map((s) => s.name)).toEqual(spans.map((s) => s.options.name));
    }
  });

  it('writes a repeated span name as it first wrote it, across bodies, and forgets names a client churns', () => {
    // The writer keeps short names' bytes; a span that moves to a fresh body as its name goes
    // in must still keep its own name, and a client cycling through names costs a refill.
    const repeated = ['POST /v1/chat/completions', 'chat gpt-4o-mini', 'é ü ✓', 'x'.repeat(65), 'GET'];
    const spans = Array.from({ length: 600 }, (_, i) => ({
      options: spanWith(i % 3 === 2 ? `churn-${i}` : repeated[i % repeated.length]!, 'v'.repeat(i % 97)),
      ...ids,
    }));
    const { bodies } = ourBodies(otlpProto, spans, 2_048);
    expect(bodies.length).toBeGreaterThan(20);
    expect(bodies.flatMap((bytes) => spansOf(bytes).map((s) => s.name))).toEqual(
      spans.map((s) => s.options.name),
    );
  });

  it('moves a span that outgrows its body to the next one whole, and drops one bigger than a body', () => {
    const spans = [
      ...Array.from({ length: 40 }, (_, i) => ({
        options: spanWith(`s${i}`, `é${'v'.repeat(i * 37)}`),
        ...ids,
      })),
      { options: spanWith('huge', 'h'.repeat(9_000)), ...ids },
      { options: spanWith('after', 'ü'), ...ids },
    ];
    const { bodies, body } = ourBodies(otlpProto, spans, 4_096);
    expect(bodies.length).toBeGreaterThan(5);
    for (const bytes of bodies) expect(bytes.length).toBeLessThanOrEqual(4_096);
    const names = bodies.flatMap((bytes) => spansOf(bytes).map((s) => s.name));
    expect(names).toEqual([...spans.slice(0, 40).map((s) => s.options.name), 'after']);
    expect(body.dropped).toBe(1);
    const values = bodies.flatMap((bytes) =>
      spansOf(bytes).map(
        (s) =>
          (s as unknown as { attributes: { value: { stringValue: string } }[] }).attributes[0]!.value
            .stringValue,
      ),
    );
    expect(values[39]).toBe(`é${'v'.repeat(39 * 37)}`);
    expect(values[40]).toBe('ü');
  });

  it('copies a run into spans that move to the next body, and keeps a run too long to keep from being copied', () => {
    const spans = Array.from({ length: 30 }, (_, i) => ({
      options: { ...spanWith('same', `ü${'v'.repeat(600)}`), name: `s${i}` },
      ...ids,
    }));
    const long = Array.from({ length: 3 }, (_, i) => ({
      options: { ...spanWith('long', 'l'.repeat(3_000)), name: `l${i}` },
      ...ids,
    }));
    const { bodies, body } = ourBodies(otlpProto, [...spans, ...long], 4_096, true);
    expect(bodies.length).toBeGreaterThan(5);
    for (const bytes of bodies) expect(bytes.length).toBeLessThanOrEqual(4_096);
    const written = bodies.flatMap((bytes) => spansOf(bytes));
    expect(written.map((s) => s.name)).toEqual([...spans, ...long].map((s) => s.options.name));
    for (const span of written)
      expect(
        (span as unknown as { attributes: { value: { stringValue: string } }[] }).attributes[0]!.value
          .stringValue,
      ).toBe((span.name ?? '').startsWith('s') ? `ü${'v'.repeat(600)}` : 'l'.repeat(3_000));
    expect(body.dropped).toBe(0);
  });

  it('writes a value it remembers exactly as the first time, whatever a client cycles through', () => {
    // One key, as the tracer keeps it: remembered values, a refill after 64, long and
    // non-ASCII ones, and values a client sends to look like a protobuf frame.
    const key = otlpProto.key('url.path');
    const values = Array.from({ length: 150 }, (_, i) =>
      i % 3 === 0 ? `/v1/p${i % 90}` : i % 3 === 1 ? `é\u0000\x12\n${'x'.repeat(i)}` : '/v1/chat/completions',
    );
    const bodies: Buffer[] = [];
    const body = new SpanBody({
      envelope: otlpProto.envelope('svc'),
      capacity: 1024 * 1024,
      maxSpans: Number.MAX_SAFE_INTEGER,
      onReady: (ready) => bodies.push(Buffer.from(ready.bytes)),
      onFirstSpan: () => undefined,
    });
    const writer = otlpProto.writer(body);
    for (const value of [...values, ...values]) {
      writer.begin(ids.traceId, ids.spanId, '', false, 'n', 2, 1, 2);
      writer.string(key, value);
      writer.end(0, undefined);
    }
    bodies.push(Buffer.from(body.take()!.bytes));
    const written = bodies.flatMap((bytes) =>
      spansOf(bytes).map(
        (s) =>
          (s as unknown as { attributes: { value: { stringValue: string } }[] }).attributes[0]!.value
            .stringValue,
      ),
    );
    expect(written).toEqual([...values, ...values]);
  });

  it('takes a span cut short back out of the body, in the body or grown past it', () => {
    const key = otlpProto.key('k');
    const bodies: Buffer[] = [];
    const body = new SpanBody({
      envelope: otlpProto.envelope('svc'),
      capacity: 4_096,
      maxSpans: Number.MAX_SAFE_INTEGER,
      onReady: (ready) => bodies.push(Buffer.from(ready.bytes)),
      onFirstSpan: () => undefined,
    });
    const writer = otlpProto.writer(body);
    const whole = (name: string) => {
      writer.begin(ids.traceId, ids.spanId, '', false, name, 2, 1, 2);
      writer.string(key, 'v');
      writer.end(0, undefined);
    };
    whole('before');
    for (const size of [10, 10_000]) {
      writer.begin(ids.traceId, ids.spanId, '', false, 'cut', 2, 1, 2);
      writer.string(key, 'x'.repeat(size));
      writer.abort();
    }
    whole('after');
    bodies.push(Buffer.from(body.take()!.bytes));
    expect(bodies.flatMap((bytes) => spansOf(bytes).map((s) => s.name))).toEqual(['before', 'after']);
    expect(body.dropped).toBe(0);
  });
});
