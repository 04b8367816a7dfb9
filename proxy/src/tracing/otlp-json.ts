/**
 * OTLP/JSON text for spans, written straight from what a request learnt: no span objects,
 * no attribute maps, no transform pass at export time. The OpenTelemetry SDK builds ~40
 * objects per span and serialises them again in the exporter, ~30 µs per request for the
 * three spans a request makes; this writes the same JSON the official serializer writes
 * (`otlp-json.test.ts` holds the two equal) in one string per span.
 *
 * Attribute keys are written once (`attributeKey`); every value that comes from a request
 * goes through JSON.stringify.
 */

/** OTLP span kinds (the SDK's SpanKind plus one). */
export const KIND_INTERNAL = 1;
export const KIND_SERVER = 2;
export const KIND_CLIENT = 3;

/** OTLP status codes. */
export const STATUS_UNSET = 0;
export const STATUS_ERROR = 2;

/** An attribute key's JSON, written once at load: each attribute then costs one concatenation. */
export interface AttributeKey {
  readonly string: string;
  readonly int: string;
  readonly double: string;
  readonly bool: string;
}

export function attributeKey(name: string): AttributeKey {
  const head = `,{"key":${JSON.stringify(name)},"value":{`;
  return {
    string: `${head}"stringValue":`,
    int: `${head}"intValue":`,
    double: `${head}"doubleValue":`,
    bool: `${head}"boolValue":`,
  };
}

/** One `{"key":…,"value":…}` entry, with a leading comma: attribute lists are built by `+`. */
export function attribute(key: AttributeKey, value: string | number | boolean): string {
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
export function firstAttribute(key: AttributeKey, value: string | number | boolean): string {
  return attribute(key, value).slice(1);
}

/** Wall-clock milliseconds (fractional) as OTLP's decimal nanoseconds since the epoch, to the µs. */
export function unixNanos(ms: number): string {
  // Microseconds since the epoch are ~1.8e15, inside a double's exact integers (2^53).
  return `${Math.round(ms * 1000)}000`;
}

export interface SpanFields {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  /** The parent came in a traceparent (sets the is-remote bit of `flags`). */
  remoteParent: boolean;
  name: string;
  kind: number;
  startMs: number;
  endMs: number;
  /** `attribute()` entries joined, the first of them without its comma (`firstAttribute`). */
  attributes: string;
  status: number;
  statusMessage?: string;
}

/** One span, as an element of `scopeSpans[].spans`. */
export function spanJson(span: SpanFields): string {
  const parent = span.parentSpanId === '' ? '' : `"parentSpanId":"${span.parentSpanId}",`;
  const status =
    span.statusMessage === undefined
      ? `{"code":${span.status}}`
      : `{"code":${span.status},"message":${JSON.stringify(span.statusMessage)}}`;
  // W3C sampled (1) with "is-remote known" (0x100), plus "is remote" (0x200) for a remote parent.
  const flags = span.remoteParent ? 769 : 257;
  return (
    `{"traceId":"${span.traceId}","spanId":"${span.spanId}",${parent}"name":${JSON.stringify(span.name)},` +
    `"kind":${span.kind},"startTimeUnixNano":"${unixNanos(span.startMs)}","endTimeUnixNano":"${unixNanos(span.endMs)}",` +
    // Empty events, links and zero dropped counts are OTLP's defaults: left out, as proto3 JSON allows.
    `"attributes":[${span.attributes}],"status":${status},"flags":${flags}}`
  );
}

const SERVICE_NAME = attributeKey('service.name');

/** The export request body around spans from `spanJson` (joined by commas). */
export function exportBody(serviceName: string, spans: string): string {
  return (
    `{"resourceSpans":[{"resource":{"attributes":[${attribute(SERVICE_NAME, serviceName).slice(1)}]},` +
    `"scopeSpans":[{"scope":{"name":"lanekeeper"},"spans":[${spans}]}]}]}`
  );
}
