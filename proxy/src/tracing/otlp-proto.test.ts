import { SpanKind } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import root from '@opentelemetry/otlp-transformer/build/src/generated/root.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  officialSpan,
  spanOptions,
  type AttributeValue as Value,
  type SpanOptions as Options,
} from '../../test/helpers/official-span.js';
import { fixed64Nanos, otlpProto } from './otlp-proto.js';

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
  const f = otlpProto;
  const attributes = options.attributes
    .map(([key, value], i) => (i === 0 ? f.firstAttribute : f.attribute)(f.key(key), value))
    .join('');
  const span = f.span({
    traceId: f.id(sdk.traceId),
    spanId: f.id(sdk.spanId),
    parentSpanId: options.remoteParent ? f.id(options.remoteParent.spanId) : '',
    remoteParent: options.remoteParent !== undefined,
    name: options.name,
    kind: options.kind + 1,
    startMs: options.startMs,
    endMs: options.endMs,
    attributes,
    status: options.error === undefined ? 0 : 2,
    statusMessage: options.error,
  });
  const envelope = f.envelope('svc');
  return Buffer.concat([envelope.head(span.length), Buffer.from(span, 'latin1'), envelope.tail]);
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
    const nanos = (ms: number) => Buffer.from(fixed64Nanos(ms), 'latin1').readBigUInt64LE();
    expect(nanos(1_796_497_813_844.904)).toBe(1_796_497_813_844_904_000n);
    expect(nanos(1_796_497_813_000)).toBe(1_796_497_813_000_000_000n);
  });

  it('frames batches of any size: the envelope lengths grow with the spans', () => {
    const f = otlpProto;
    const one = f.span({
      traceId: f.id('0af7651916cd43dd8448eb211c80319c'),
      spanId: f.id('b7ad6b7169203331'),
      parentSpanId: '',
      remoteParent: false,
      name: 'n',
      kind: 2,
      startMs: 1,
      endMs: 2,
      attributes: f.firstAttribute(f.key('k'), 'v'.repeat(300)),
      status: 0,
    });
    const envelope = f.envelope('svc');
    for (const count of [1, 10, 1_000]) {
      const spans = one.repeat(count);
      const head = envelope.head(spans.length);
      expect(head.length).toBeLessThanOrEqual(envelope.maxHead);
      const body = decode(Buffer.concat([head, Buffer.from(spans, 'latin1')])) as {
        resourceSpans: { scopeSpans: { spans: unknown[] }[] }[];
      };
      expect(body.resourceSpans[0]!.scopeSpans[0]!.spans).toHaveLength(count);
    }
  });
});
