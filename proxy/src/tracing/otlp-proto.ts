/**
 * OTLP/HTTP protobuf for spans, written by hand the way otlp-json.ts writes JSON: each span
 * becomes one byte string (a char per byte) when it ends, and the batch copies it into the
 * export body. Protobuf is OTLP's default protocol and about half the bytes of the JSON
 * (ids as 16 and 8 raw bytes, times as fixed64, no key names per value, no escaping), and
 * most of tracing's cost per request scales with bytes (issue 18).
 *
 * `otlp-proto.test.ts` holds the bytes, decoded, equal to what the official
 * ProtobufTraceSerializer writes. One deliberate difference: a lone surrogate in a string is
 * written as U+FFFD. The official writer (protobufjs) writes strings under 40 UTF-16 units as
 * CESU-8 bytes, invalid UTF-8 that a collector checking proto3 strings refuses, with the
 * whole batch; longer strings go through Buffer, which writes U+FFFD as we do.
 *
 * Field numbers are those of opentelemetry/proto/trace/v1/trace.proto and common.proto.
 */
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import {
  spanFlags,
  type AttributeKey,
  type AttributeValue,
  type SpanFields,
  type SpanFormat,
} from './span-format.js';

const char = String.fromCharCode;

/** A varint of 0 .. 2^32 - 1 (a length or an enum). */
function varint(n: number): string {
  if (n < 0x80) return char(n);
  if (n < 0x4000) return char((n & 0x7f) | 0x80, n >>> 7);
  let out = '';
  while (n > 0x7f) {
    out += char((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  return out + char(n);
}

/**
 * An int64 varint, two's complement for negatives. protobufjs's LongBits.fromNumber and
 * writeVarint64, step for step, so an integer past 2^63 wraps as the official writer's does.
 */
function int64(value: number): string {
  if (value === 0) return '\0';
  const negative = value < 0;
  if (negative) value = -value;
  let lo = value >>> 0;
  let hi = ((value - lo) / 4294967296) >>> 0;
  if (negative) {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
    if (++lo > 4294967295) {
      lo = 0;
      if (++hi > 4294967295) hi = 0;
    }
  }
  let out = '';
  while (hi) {
    out += char((lo & 0x7f) | 0x80);
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 0x7f) {
    out += char((lo & 0x7f) | 0x80);
    lo >>>= 7;
  }
  return out + char(lo);
}

function fixed32(n: number): string {
  return char(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
}

/** Wall-clock milliseconds as fixed64 nanoseconds since the epoch, to the µs. */
export function fixed64Nanos(ms: number): string {
  // µs since the epoch (~1.8e15) are exact in a double; nanoseconds (~1.8e18) are not, so
  // the ×1000 is done on the two 32-bit halves.
  const us = Math.round(ms * 1000);
  const usHi = Math.floor(us / 4294967296);
  const low = (us - usHi * 4294967296) * 1000;
  const carry = Math.floor(low / 4294967296);
  return fixed32(low - carry * 4294967296) + fixed32(usHi * 1000 + carry);
}

const doubleView = new DataView(new ArrayBuffer(8));

function double(value: number): string {
  doubleView.setFloat64(0, value, true);
  let out = '';
  for (let i = 0; i < 8; i++) out += char(doubleView.getUint8(i));
  return out;
}

// eslint-disable-next-line no-control-regex -- the whole ASCII range, control characters included
const ASCII = /^[\x00-\x7f]*$/;

/** A string's UTF-8, as a byte string; ASCII (nearly every value) is its own. */
function utf8(text: string): string {
  // Buffer writes a lone surrogate as U+FFFD: valid UTF-8, as proto3 strings must be.
  return ASCII.test(text) ? text : Buffer.from(text, 'utf8').toString('latin1');
}

/** A length-delimited field: tag, length, bytes. */
function delimited(tag: string, bytes: string): string {
  return tag + varint(bytes.length) + bytes;
}

/** KeyValue's key field and the value field's tag, encoded once per key. */
interface ProtoKey {
  readonly head: string;
}

function keyValue(key: ProtoKey, value: AttributeValue): string {
  let any: string;
  // AnyValue: string_value 1, bool_value 2, int_value 3, double_value 4. Integers as
  // int_value and other numbers as double_value, as the official transform decides.
  if (typeof value === 'string') any = delimited('\x0a', utf8(value));
  else if (typeof value === 'boolean') any = value ? '\x10\x01' : '\x10\x00';
  else if (Number.isInteger(value)) any = `\x18${int64(value)}`;
  else any = `\x21${double(value)}`;
  return key.head + varint(any.length) + any;
}

/** Span.attributes is field 9. */
function attribute(key: AttributeKey, value: AttributeValue): string {
  return delimited('\x4a', keyValue(key as unknown as ProtoKey, value));
}

function key(name: string): AttributeKey {
  const head: ProtoKey = { head: `${delimited('\x0a', utf8(name))}\x12` };
  return head as unknown as AttributeKey;
}

/** A hex trace or span id as its raw bytes. */
function id(hex: string): string {
  return Buffer.from(hex, 'hex').toString('latin1');
}

/** One span, as an element of ScopeSpans.spans (field 2). */
function span(fields: SpanFields): string {
  // Status: message 2, code 3; a code of 0 (unset) is the default and left out.
  let status = fields.statusMessage === undefined ? '' : delimited('\x12', utf8(fields.statusMessage));
  if (fields.status !== 0) status += `\x18${char(fields.status)}`;
  const body =
    `\x0a\x10${fields.traceId}\x12\x08${fields.spanId}` +
    (fields.parentSpanId === '' ? '' : `\x22\x08${fields.parentSpanId}`) +
    delimited('\x2a', utf8(fields.name)) +
    `\x30${char(fields.kind)}` +
    `\x39${fixed64Nanos(fields.startMs)}\x41${fixed64Nanos(fields.endMs)}` +
    fields.attributes +
    delimited('\x7a', status) +
    // flags: field 16, fixed32.
    `\x85\x01${fixed32(spanFlags(fields.remoteParent))}`;
  return delimited('\x12', body);
}

const SCOPE = delimited('\x0a', delimited('\x0a', 'lanekeeper'));

export const otlpProto: SpanFormat = {
  contentType: 'application/x-protobuf',
  separator: '',
  binary: true,
  key,
  attribute,
  firstAttribute: attribute,
  id,
  span,
  envelope(serviceName) {
    // ExportTraceServiceRequest.resource_spans 1 { resource 1 { attributes 1 }, scope_spans 2
    // { scope 1, spans 2 } }: only the two lengths around the spans change per batch.
    const resource = delimited(
      '\x0a',
      delimited('\x0a', keyValue(key('service.name') as unknown as ProtoKey, serviceName)),
    );
    return {
      head(spansBytes) {
        const scopeSpans = SCOPE.length + spansBytes;
        const resourceSpans = resource.length + 1 + varint(scopeSpans).length + scopeSpans;
        return Buffer.from(
          `\x0a${varint(resourceSpans)}${resource}\x12${varint(scopeSpans)}${SCOPE}`,
          'latin1',
        );
      },
      maxHead: 1 + 5 + resource.length + 1 + 5 + SCOPE.length,
      tail: Buffer.alloc(0),
    };
  },
  deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
};
