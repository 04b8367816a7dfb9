/**
 * OTLP/HTTP protobuf for spans, written by hand straight into the export body (span-body.ts)
 * as each span ends: ids as raw bytes, times as fixed64, attribute keys encoded once at load.
 * Protobuf is OTLP's default protocol and about half the bytes of the JSON.
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
import type { SpanBody } from './span-body.js';
import {
  spanFlags,
  type AttributeKey,
  type AttributeRun,
  type KeyOptions,
  type SpanFormat,
  type SpanWriter,
} from './span-format.js';

/** A key's KeyValue.key field and the KeyValue.value tag after it, as bytes. */
interface ProtoKey {
  readonly head: Uint8Array;
  /** Whole attributes already written, by string value: most values repeat request after request. */
  readonly written: Map<string, Uint8Array> | undefined;
}

/**
 * Values remembered per key, and the longest. A hostile client can churn through paths or
 * model names; that costs it a refill, never memory beyond 64 short values a key.
 */
const REMEMBERED = 64;
const REMEMBERED_LENGTH = 64;

/** Keeps a short string's bytes, as written from `start` to `end`, to copy again; the memo starts over when full. */
function remember(
  memo: Map<string, Uint8Array>,
  text: string,
  buf: Buffer,
  start: number,
  end: number,
): void {
  if (text.length > REMEMBERED_LENGTH) return;
  if (memo.size >= REMEMBERED) memo.clear();
  memo.set(text, Uint8Array.prototype.slice.call(buf, start, end));
}

/** Bytes of a varint of 0 .. 2^32 - 1. */
function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** Writes a varint of 0 .. 2^32 - 1 (a length or an enum); returns the next position. */
function varint(buf: Buffer, pos: number, n: number): number {
  while (n > 0x7f) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos] = n;
  return pos + 1;
}

/**
 * An int64 varint, two's complement for negatives, as its low and high 32 bits. protobufjs's
 * LongBits.fromNumber, step for step, so an integer past 2^63 wraps as the official writer's does.
 */
let int64Lo = 0;
let int64Hi = 0;

function int64Bits(value: number): void {
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
  int64Lo = lo;
  int64Hi = hi;
}

function int64Size(lo: number, hi: number): number {
  if (hi === 0) return varintSize(lo);
  // 32 bits in the low part take 4 bytes and 4 bits of a fifth; the high part adds its 7-bit groups.
  let size = 5;
  for (let rest = hi >>> 3; rest > 0; rest >>>= 7) size++;
  return size;
}

/** writeVarint64 of protobufjs. */
function int64(buf: Buffer, pos: number, lo: number, hi: number): number {
  while (hi) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 0x7f) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo >>>= 7;
  }
  buf[pos] = lo;
  return pos + 1;
}

/**
 * A fixed32, little-endian, as four byte stores: Buffer's writeUInt32LE is a method loaded
 * off its prototype and a range check, which the profiler showed as generic property loads
 * in the proxy's span writing.
 */
function fixed32(buf: Buffer, pos: number, n: number): number {
  buf[pos] = n;
  buf[pos + 1] = n >>> 8;
  buf[pos + 2] = n >>> 16;
  buf[pos + 3] = n >>> 24;
  return pos + 4;
}

/** A double's 8 bytes, little-endian, through one shared scratch (x86 and ARM are little-endian; checked below). */
const DOUBLE = new Float64Array(1);
const DOUBLE_BYTES = new Uint8Array(DOUBLE.buffer);
DOUBLE[0] = 1;
if (DOUBLE_BYTES[7] !== 0x3f) throw new Error('otlp-proto writes doubles little-endian only');

function double(buf: Buffer, pos: number, value: number): number {
  DOUBLE[0] = value;
  for (let i = 0; i < 8; i++) buf[pos + i] = DOUBLE_BYTES[i]!;
  return pos + 8;
}

/** Writes wall-clock milliseconds as fixed64 nanoseconds since the epoch, to the µs. */
export function writeUnixNanos(buf: Buffer, pos: number, ms: number): number {
  // µs since the epoch (~1.8e15) are exact in a double; nanoseconds (~1.8e18) are not, so
  // the ×1000 is done on the two 32-bit halves.
  const us = Math.round(ms * 1000);
  const usHi = Math.floor(us / 4294967296);
  const low = (us - usHi * 4294967296) * 1000;
  const carry = Math.floor(low / 4294967296);
  return fixed32(buf, fixed32(buf, pos, low - carry * 4294967296), usHi * 1000 + carry);
}

/**
 * String.prototype.charCodeAt, called as a function: `text.charCodeAt` is a property load on
 * whatever kind of string V8 made (a slice of a traceparent header, a concatenated span
 * name, a flat value), which went polymorphic and generic in the proxy: the profiler showed a
 * call to the load IC for each string written.
 */
const charCodeAt = String.prototype.charCodeAt;

/** Hex digit values by char code. */
const HEX = new Uint8Array(128);
for (let i = 0; i < 16; i++) {
  HEX['0123456789abcdef'.charCodeAt(i)] = i;
  HEX['0123456789ABCDEF'.charCodeAt(i)] = i;
}

/** A hex id (valid: ours, or checked by the traceparent parser) as `bytes` raw bytes. */
function hexBytes(buf: Buffer, pos: number, hex: string, bytes: number): number {
  for (let i = 0; i < bytes; i++)
    buf[pos + i] = (HEX[charCodeAt.call(hex, 2 * i)]! << 4) | HEX[charCodeAt.call(hex, 2 * i + 1)]!;
  return pos + bytes;
}

/**
 * Remembers the last id converted: a request's spans are written one after the other, all
 * with its trace id and most with its span id as their parent.
 */
class IdBytes {
  /** The id last written, in hex. */
  hex = '';
  private readonly raw: Buffer;

  constructor(private readonly bytes: number) {
    this.raw = Buffer.alloc(bytes);
  }

  write(buf: Buffer, pos: number, hex: string): number {
    if (hex !== this.hex) {
      hexBytes(this.raw, 0, hex, this.bytes);
      this.hex = hex;
    }
    buf.set(this.raw, pos);
    return pos + this.bytes;
  }
}

function copyBytes(buf: Buffer, pos: number, bytes: Uint8Array): number {
  // TypedArray set: half the time of a byte loop for a ~20-byte key.
  buf.set(bytes, pos);
  return pos + bytes.length;
}

/** UTF-8 bytes of a string; Buffer counts (and writes) a lone surrogate as U+FFFD. */
function utf8Length(text: string): number {
  for (let i = 0; i < text.length; i++)
    if (charCodeAt.call(text, i) > 0x7f) return Buffer.byteLength(text, 'utf8');
  return text.length;
}

/**
 * Writes a string's bytes at `pos`, taking it for ASCII (nearly every value is): returns the
 * next position, or -1 at the first other character, for the caller to write it as UTF-8.
 */
function ascii(buf: Buffer, pos: number, text: string): number {
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = charCodeAt.call(text, i);
    if (c > 0x7f) return -1;
    buf[pos + i] = c;
  }
  return pos + n;
}

// The tags written below: (field number << 3) | wire type.
const SPANS = 0x12; // ScopeSpans.spans, LEN
const TRACE_ID = 0x0a;
const SPAN_ID = 0x12;
const PARENT_SPAN_ID = 0x22;
const NAME = 0x2a;
const KIND = 0x30;
const START = 0x39; // fixed64
const END = 0x41;
const ATTRIBUTE = 0x4a; // Span.attributes, KeyValue
const STATUS = 0x7a;
const STATUS_MESSAGE = 0x12;
const STATUS_CODE = 0x18;
const FLAGS = [0x85, 0x01]; // field 16, fixed32
const STRING_VALUE = 0x0a; // AnyValue.string_value
const BOOL_VALUE = 0x10;
const INT_VALUE = 0x18;
const DOUBLE_VALUE = 0x21;

/** Room kept for a span's length: two bytes, a span under 16 KiB; moved when it differs. */
const SPAN_LENGTH_ROOM = 2;

/** The longest run of attributes kept to copy again: a span with long values is written afresh. */
const RUN_MAX = 2_048;

class ProtoSpanWriter implements SpanWriter {
  private remoteParent = false;
  private readonly traceIds = new IdBytes(16);
  private readonly parentIds = new IdBytes(8);
  /** Span names' whole fields already written, by name; bounded like an attribute's values. */
  private readonly names = new Map<string, Uint8Array>();
  /** Where the marked run starts, from the open span's start: a span that outgrows the body moves whole. */
  private runOffset = 0;

  constructor(private readonly body: SpanBody) {}

  begin(
    traceId: string,
    spanId: string,
    parentSpanId: string,
    remoteParent: boolean,
    name: string,
    kind: number,
    startMs: number,
    endMs: number,
  ): void {
    const body = this.body;
    body.room(1 + SPAN_LENGTH_ROOM + 18 + 10 + 10);
    body.begin();
    const buf = body.buf;
    let pos = body.pos;
    buf[pos] = SPANS;
    pos += 1 + SPAN_LENGTH_ROOM;
    buf[pos++] = TRACE_ID;
    buf[pos++] = 16;
    pos = this.traceIds.write(buf, pos, traceId);
    buf[pos++] = SPAN_ID;
    buf[pos++] = 8;
    // A request's own span comes after its children, whose parent it is.
    pos =
      spanId === this.parentIds.hex ? this.parentIds.write(buf, pos, spanId) : hexBytes(buf, pos, spanId, 8);
    if (parentSpanId !== '') {
      buf[pos++] = PARENT_SPAN_ID;
      buf[pos++] = 8;
      pos = this.parentIds.write(buf, pos, parentSpanId);
    }
    body.pos = pos;
    const named = this.names.get(name);
    if (named !== undefined) this.put(named);
    else this.name(name);
    body.room(2 + 18);
    const out = body.buf;
    pos = body.pos;
    out[pos++] = KIND;
    out[pos++] = kind;
    out[pos++] = START;
    pos = writeUnixNanos(out, pos, startMs);
    out[pos++] = END;
    body.pos = writeUnixNanos(out, pos, endMs);
    this.remoteParent = remoteParent;
  }

  /** Writes a span's name field, and remembers it when short: a handful of names repeat span after span. */
  private name(name: string): void {
    const body = this.body;
    // From the span's start: the span may move to a fresh body as the name goes in.
    const offset = body.pos - body.spanStart;
    this.text(NAME, name);
    remember(this.names, name, body.buf, body.spanStart + offset, body.pos);
  }

  /** A length-delimited string field. */
  private text(tag: number, value: string): void {
    const body = this.body;
    // Room for the ASCII bytes first: UTF-8's worst case (3 bytes a unit) would move or
    // drop spans that fit.
    body.room(6 + value.length);
    let buf = body.buf;
    let start = body.pos;
    buf[start] = tag;
    let pos = ascii(buf, varint(buf, start + 1, value.length), value);
    if (pos < 0) {
      const bytes = Buffer.byteLength(value, 'utf8');
      body.room(6 + bytes);
      buf = body.buf;
      start = body.pos;
      buf[start] = tag;
      pos = varint(buf, start + 1, bytes);
      pos += buf.write(value, pos, bytes, 'utf8');
    }
    body.pos = pos;
  }

  /** The attribute's field, key and value headers, for a value of `valueBytes` after its tag. */
  private attribute(buf: Buffer, pos: number, key: ProtoKey, valueBytes: number): number {
    const any = 1 + valueBytes;
    buf[pos++] = ATTRIBUTE;
    pos = varint(buf, pos, key.head.length + varintSize(any) + any);
    pos = copyBytes(buf, pos, key.head);
    return varint(buf, pos, any);
  }

  string(key: AttributeKey, value: string): void {
    const k = key as unknown as ProtoKey;
    const body = this.body;
    const written = k.written?.get(value);
    if (written !== undefined) {
      this.put(written);
      return;
    }
    const n = value.length;
    body.room(k.head.length + 20 + n);
    let buf = body.buf;
    let pos = this.attribute(buf, body.pos, k, varintSize(n) + n);
    buf[pos++] = STRING_VALUE;
    pos = ascii(buf, varint(buf, pos, n), value);
    if (pos < 0) {
      // Not ASCII: written again from the attribute's start, with its UTF-8 length.
      const bytes = Buffer.byteLength(value, 'utf8');
      body.room(k.head.length + 20 + bytes);
      buf = body.buf;
      pos = this.attribute(buf, body.pos, k, varintSize(bytes) + bytes);
      buf[pos++] = STRING_VALUE;
      pos = varint(buf, pos, bytes);
      pos += buf.write(value, pos, bytes, 'utf8');
    }
    if (k.written !== undefined) remember(k.written, value, buf, body.pos, pos);
    body.pos = pos;
  }

  /** Room for a value of `size` bytes after its tag, and everything before them; returns where they go. */
  private scalar(key: AttributeKey, tag: number, size: number): number {
    const k = key as unknown as ProtoKey;
    const body = this.body;
    body.room(k.head.length + 20 + size);
    const pos = this.attribute(body.buf, body.pos, k, size);
    body.buf[pos] = tag;
    return pos + 1;
  }

  int(key: AttributeKey, value: number): void {
    int64Bits(value);
    const lo = int64Lo;
    const hi = int64Hi;
    const pos = this.scalar(key, INT_VALUE, int64Size(lo, hi));
    this.body.pos = int64(this.body.buf, pos, lo, hi);
  }

  number(key: AttributeKey, value: number): void {
    // Integers as int_value and other numbers as double_value, as the official transform decides.
    if (Number.isInteger(value)) this.int(key, value);
    else this.body.pos = double(this.body.buf, this.scalar(key, DOUBLE_VALUE, 8), value);
  }

  boolean(key: AttributeKey, value: boolean): void {
    const pos = this.scalar(key, BOOL_VALUE, 1);
    this.body.buf[pos] = value ? 1 : 0;
    this.body.pos = pos + 1;
  }

  abort(): void {
    this.body.abort();
  }

  mark(): void {
    this.runOffset = this.body.pos - this.body.spanStart;
  }

  capture(): AttributeRun | undefined {
    const body = this.body;
    const start = body.spanStart + this.runOffset;
    if (body.pos - start > RUN_MAX) return undefined;
    return Uint8Array.prototype.slice.call(body.buf, start, body.pos) as unknown as AttributeRun;
  }

  copy(run: AttributeRun): void {
    this.put(run as unknown as Uint8Array);
  }

  /** Bytes written before (a remembered value, a run), copied in as they are. */
  private put(bytes: Uint8Array): void {
    const body = this.body;
    body.room(bytes.length);
    body.buf.set(bytes, body.pos);
    body.pos += bytes.length;
  }

  end(status: number, statusMessage: string | undefined): void {
    const body = this.body;
    // Status: message 2, code 3; a code of 0 (unset) is the default and left out.
    const messageBytes = statusMessage === undefined ? -1 : utf8Length(statusMessage);
    let statusBytes = status === 0 ? 0 : 2;
    if (messageBytes >= 0) statusBytes += 1 + varintSize(messageBytes) + messageBytes;
    body.room(statusBytes + 16);
    let buf = body.buf;
    let pos = body.pos;
    buf[pos++] = STATUS;
    pos = varint(buf, pos, statusBytes);
    if (statusMessage !== undefined) {
      buf[pos++] = STATUS_MESSAGE;
      pos = varint(buf, pos, messageBytes);
      pos += buf.write(statusMessage, pos, messageBytes, 'utf8');
    }
    if (status !== 0) {
      buf[pos++] = STATUS_CODE;
      buf[pos++] = status;
    }
    buf[pos++] = FLAGS[0]!;
    buf[pos++] = FLAGS[1]!;
    pos = fixed32(buf, pos, spanFlags(this.remoteParent));
    // The span's length goes in the room kept for it, the span moved when its varint is shorter or longer.
    let start = body.spanStart;
    const length = pos - (start + 1 + SPAN_LENGTH_ROOM);
    const shift = varintSize(length) - SPAN_LENGTH_ROOM;
    if (shift > 0) {
      body.pos = pos;
      body.room(shift);
      buf = body.buf;
      start = body.spanStart;
      pos = body.pos;
    }
    if (shift !== 0) buf.copyWithin(start + 1 + SPAN_LENGTH_ROOM + shift, start + 1 + SPAN_LENGTH_ROOM, pos);
    varint(buf, start + 1, length);
    body.pos = pos + shift;
    body.end();
  }
}

function key(name: string, options?: KeyOptions): AttributeKey {
  const nameBytes = Buffer.from(name, 'utf8');
  const head = Buffer.alloc(1 + varintSize(nameBytes.length) + nameBytes.length + 1);
  let pos = varint(head, 1, nameBytes.length);
  head[0] = 0x0a; // KeyValue.key
  pos += nameBytes.copy(head, pos);
  head[pos] = 0x12; // KeyValue.value
  const written = options?.unique ? undefined : new Map<string, Uint8Array>();
  return { head: new Uint8Array(head), written } satisfies ProtoKey as unknown as AttributeKey;
}

/** A varint as a byte string, for the envelope. */
function varintString(n: number): string {
  let out = '';
  while (n > 0x7f) {
    out += String.fromCharCode((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  return out + String.fromCharCode(n);
}

/** A length-delimited field as a byte string (a char per byte), for the envelope. */
function delimited(tag: string, bytes: string): string {
  return tag + varintString(bytes.length) + bytes;
}

const SCOPE = delimited('\x0a', delimited('\x0a', 'lanekeeper'));

export const otlpProto: SpanFormat = {
  contentType: 'application/x-protobuf',
  key,
  writer: (body) => new ProtoSpanWriter(body),
  envelope(serviceName, attributes = {}) {
    // ExportTraceServiceRequest.resource_spans 1 { resource 1 { attributes 1 }, scope_spans 2
    // { scope 1, spans 2 } }: only the two lengths around the spans change per batch.
    const bytes = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
    // KeyValue { key 1, value 2 { string_value 1 } }, service.name first.
    const keyValue = ([key, value]: [string, string]) =>
      delimited('\x0a', delimited('\x0a', bytes(key)) + delimited('\x12', delimited('\x0a', bytes(value))));
    const resource = delimited(
      '\x0a',
      [['service.name', serviceName] as [string, string], ...Object.entries(attributes)]
        .map(keyValue)
        .join(''),
    );
    return {
      head(spansBytes) {
        const scopeSpans = SCOPE.length + spansBytes;
        const resourceSpans = resource.length + 1 + varintString(scopeSpans).length + scopeSpans;
        return Buffer.from(
          `\x0a${varintString(resourceSpans)}${resource}\x12${varintString(scopeSpans)}${SCOPE}`,
          'latin1',
        );
      },
      maxHead: 1 + 5 + resource.length + 1 + 5 + SCOPE.length,
      tail: Buffer.alloc(0),
    };
  },
  deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
};
