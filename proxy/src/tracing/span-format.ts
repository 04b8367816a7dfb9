/**
 * What the tracer needs from an OTLP wire format, so it records spans once and either writer
 * (otlp-proto.ts, the default, or otlp-json.ts) turns them into bytes. Both write a span as
 * one string at the moment it ends: JSON text, or for protobuf a byte string (one char per
 * byte, every char below 256), which the batch copies into its body at memcpy speed.
 */

declare const ATTRIBUTE_KEY: unique symbol;

/** An attribute key as one format encoded it at load; only that format can read it. */
export interface AttributeKey {
  readonly [ATTRIBUTE_KEY]: true;
}

export type AttributeValue = string | number | boolean;

export interface SpanFields {
  /** Ids as `id()` returned them. */
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
  /** `attribute()` entries joined, the first of them from `firstAttribute`. */
  attributes: string;
  status: number;
  statusMessage?: string;
}

/** The body of an export, around the spans: built once per batch from the spans' length. */
export interface Envelope {
  /** The bytes before the spans, given the spans' total byte length. */
  head(spansBytes: number): Buffer;
  /** The longest `head` can be, so the batch keeps room for it in front of the spans. */
  readonly maxHead: number;
  readonly tail: Buffer;
}

export interface SpanFormat {
  /** The export request's Content-Type. */
  readonly contentType: string;
  /** Written between two spans of a list. */
  readonly separator: string;
  /** Span strings are bytes already (latin1), not text to encode as UTF-8. */
  readonly binary: boolean;
  key(name: string): AttributeKey;
  attribute(key: AttributeKey, value: AttributeValue): string;
  /** The first entry of a list: JSON leaves its comma out. */
  firstAttribute(key: AttributeKey, value: AttributeValue): string;
  /** A trace or span id (hex) as this format's spans carry it. */
  id(hex: string): string;
  span(fields: SpanFields): string;
  envelope(serviceName: string): Envelope;
  /** The collector's answer (partial success), for the transport to log. */
  deserializeResponse(data: Uint8Array): unknown;
}

/** OTLP span kinds (the SDK's SpanKind plus one). */
export const KIND_INTERNAL = 1;
export const KIND_SERVER = 2;
export const KIND_CLIENT = 3;

/** OTLP status codes. */
export const STATUS_UNSET = 0;
export const STATUS_ERROR = 2;

/** W3C sampled (1) with "is-remote known" (0x100), plus "is remote" (0x200) for a remote parent. */
export function spanFlags(remoteParent: boolean): number {
  return remoteParent ? 769 : 257;
}
