/**
 * OTLP/JSON text for spans, written straight from what a request learnt: no span objects,
 * no attribute maps, no transform pass at export time. The OpenTelemetry SDK builds ~40
 * objects per span and serialises them again in the exporter, ~30 µs per request for the
 * three spans a request makes; this writes the same JSON the official serializer writes
 * (`otlp-json.test.ts` holds the two equal) in one string per span.
 *
 * Attribute keys are written once (`attributeKey`); every value that comes from a request
 * goes through JSON.stringify.
 *
 * OTLP/HTTP JSON is what `OTEL_EXPORTER_OTLP_PROTOCOL=http/json` picks; protobuf
 * (otlp-proto.ts) is the default.
 */
import type { SpanBody } from './span-body.js';
import {
  spanFlags,
  type AttributeKey,
  type AttributeRun,
  type AttributeValue,
  type SpanFormat,
  type SpanWriter,
} from './span-format.js';

/** One span's fields, ids in hex. */
export interface JsonSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  remoteParent: boolean;
  name: string;
  kind: number;
  startMs: number;
  endMs: number;
  /** `attribute()` entries joined, the first of them from `firstAttribute`. */
  attributes: string;
  status: number;
  statusMessage?: string;
}

/** An attribute key's JSON, written once at load: each attribute then costs one concatenation. */
export interface JsonAttributeKey {
  readonly string: string;
  readonly int: string;
  readonly double: string;
  readonly bool: string;
}

export function attributeKey(name: string): JsonAttributeKey {
  const head = `,{"key":${JSON.stringify(name)},"value":{`;
  return {
    string: `${head}"stringValue":`,
    int: `${head}"intValue":`,
    double: `${head}"doubleValue":`,
    bool: `${head}"boolValue":`,
  };
}

/** One `{"key":…,"value":…}` entry, with a leading comma: attribute lists are built by `+`. */
export function attribute(key: JsonAttributeKey, value: AttributeValue): string {
  if (typeof value === 'string') return `${key.string}${JSON.stringify(value)}}}`;
  if (typeof value === 'boolean') return `${key.bool}${value}}}`;
  // Integers as intValue, the rest as doubleValue, as the official serializer decides.
  if (Number.isInteger(value)) return `${key.int}${value}}}`;
  if (Number.isFinite(value)) return `${key.double}${value}}}`;
  return `${key.string}"${String(value)}"}}`;
}

/**
 * The first attribute of a list, without the comma. The list is a rope of small strings;
 * slicing the comma off the whole list would flatten (copy) it once per span.
 */
export function firstAttribute(key: JsonAttributeKey, value: AttributeValue): string {
  return attribute(key, value).slice(1);
}

/** Wall-clock milliseconds (fractional) as OTLP's decimal nanoseconds since the epoch, to the µs. */
export function unixNanos(ms: number): string {
  // Microseconds since the epoch are ~1.8e15, inside a double's exact integers (2^53).
  return `${Math.round(ms * 1000)}000`;
}

/** One span, as an element of `scopeSpans[].spans`. */
export function spanJson(span: JsonSpan): string {
  const parent = span.parentSpanId === '' ? '' : `"parentSpanId":"${span.parentSpanId}",`;
  const status =
    span.statusMessage === undefined
      ? `{"code":${span.status}}`
      : `{"code":${span.status},"message":${JSON.stringify(span.statusMessage)}}`;
  const flags = spanFlags(span.remoteParent);
  return (
    `{"traceId":"${span.traceId}","spanId":"${span.spanId}",${parent}"name":${JSON.stringify(span.name)},` +
    `"kind":${span.kind},"startTimeUnixNano":"${unixNanos(span.startMs)}","endTimeUnixNano":"${unixNanos(span.endMs)}",` +
    // Empty events, links and zero dropped counts are OTLP's defaults: left out, as proto3 JSON allows.
    `"attributes":[${span.attributes}],"status":${status},"flags":${flags}}`
  );
}

const SERVICE_NAME = attributeKey('service.name');

/** The export request body around spans from `spanJson` (joined by commas). */
export function exportBody(
  serviceName: string,
  spans: string,
  resource: Readonly<Record<string, string>> = {},
): string {
  const attributes =
    attribute(SERVICE_NAME, serviceName).slice(1) +
    Object.entries(resource)
      .map(([key, value]) => attribute(attributeKey(key), value))
      .join('');
  return (
    `{"resourceSpans":[{"resource":{"attributes":[${attributes}]},` +
    `"scopeSpans":[{"scope":{"name":"lanekeeper"},"spans":[${spans}]}]}]}`
  );
}

/** The longest run of attributes kept to copy again: a span with long values is written afresh. */
const RUN_MAX = 4_096;

/**
 * Builds each span as one string (JSON needs escaping, and is not the default) and writes it
 * into the body when the span ends, as latin1 when it is ASCII (the same bytes at memcpy
 * speed) and as UTF-8 otherwise.
 */
class JsonSpanWriter implements SpanWriter {
  private readonly span: JsonSpan = {
    traceId: '',
    spanId: '',
    parentSpanId: '',
    remoteParent: false,
    name: '',
    kind: 0,
    startMs: 0,
    endMs: 0,
    attributes: '',
    status: 0,
    statusMessage: undefined,
  };

  /** The length of the attributes when the run was marked. */
  private runStart = 0;

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
    const span = this.span;
    span.traceId = traceId;
    span.spanId = spanId;
    span.parentSpanId = parentSpanId;
    span.remoteParent = remoteParent;
    span.name = name;
    span.kind = kind;
    span.startMs = startMs;
    span.endMs = endMs;
    span.attributes = '';
  }

  private add(key: AttributeKey, value: AttributeValue): void {
    const k = key as unknown as JsonAttributeKey;
    this.span.attributes += this.span.attributes === '' ? firstAttribute(k, value) : attribute(k, value);
  }

  string(key: AttributeKey, value: string): void {
    this.add(key, value);
  }

  int(key: AttributeKey, value: number): void {
    this.add(key, value);
  }

  number(key: AttributeKey, value: number): void {
    this.add(key, value);
  }

  boolean(key: AttributeKey, value: boolean): void {
    this.add(key, value);
  }

  abort(): void {
    // Nothing reaches the body before `end`.
    this.span.attributes = '';
  }

  mark(): void {
    this.runStart = this.span.attributes.length;
  }

  capture(): AttributeRun | undefined {
    const run = this.span.attributes.slice(this.runStart);
    if (run.length > RUN_MAX) return undefined;
    // Kept with its leading comma, as every attribute but a span's first is written.
    return (this.runStart === 0 && run !== '' ? `,${run}` : run) as unknown as AttributeRun;
  }

  copy(run: AttributeRun): void {
    const text = run as unknown as string;
    if (text === '') return;
    this.span.attributes += this.span.attributes === '' ? text.slice(1) : text;
  }

  end(status: number, statusMessage: string | undefined): void {
    const span = this.span;
    span.status = status;
    span.statusMessage = statusMessage;
    const text = spanJson(span);
    span.attributes = '';
    const bytes = Buffer.byteLength(text, 'utf8');
    const body = this.body;
    body.begin();
    body.room(bytes + 1);
    let pos = body.pos;
    if (body.spans > 0) body.buf[pos++] = 0x2c; // a comma between spans
    pos += body.buf.write(text, pos, bytes, bytes === text.length ? 'latin1' : 'utf8');
    body.pos = pos;
    body.end();
  }
}

/** OTLP/HTTP JSON as a SpanFormat. */
export const otlpJson: SpanFormat = {
  contentType: 'application/json',
  key: attributeKey as unknown as SpanFormat['key'],
  writer: (body) => new JsonSpanWriter(body),
  envelope(serviceName, resource) {
    // A NUL cannot occur in the JSON (JSON.stringify escapes it), so it marks where spans go.
    const [head, tail] = exportBody(serviceName, '\0', resource)
      .split('\0')
      .map((part) => Buffer.from(part, 'utf8')) as [Buffer, Buffer];
    return { head: () => head, maxHead: head.length, tail };
  },
  deserializeResponse: (data) => (data.length === 0 ? {} : JSON.parse(Buffer.from(data).toString('utf8'))),
};
