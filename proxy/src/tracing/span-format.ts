/**
 * What the tracer needs from an OTLP wire format, so it records spans once and either writer
 * (otlp-proto.ts, the default, or otlp-json.ts) turns them into bytes. A span is written
 * field by field, straight into the export body (span-body.ts), in one synchronous run from
 * `begin` to `end`: no span object, no attribute list, no string to copy afterwards.
 */
import type { SpanBody } from './span-body.js';

declare const ATTRIBUTE_KEY: unique symbol;

/** An attribute key as one format encoded it at load; only that format can read it. */
export interface AttributeKey {
  readonly [ATTRIBUTE_KEY]: true;
}

export type AttributeValue = string | number | boolean;

declare const ATTRIBUTE_RUN: unique symbol;

/** Attributes as one format wrote them, captured to be written again as they are (`copy`). */
export interface AttributeRun {
  readonly [ATTRIBUTE_RUN]: true;
}

export interface KeyOptions {
  /** Its values rarely repeat (a request id): not worth remembering how they were written. */
  unique?: boolean;
}

/**
 * Writes spans into a body. Between `begin` and `end` come the span's attributes; nothing
 * else may write to the body in between (the tracer writes each span in one go).
 */
export interface SpanWriter {
  /**
   * Opens a span. Ids are hex; `parentSpanId` is empty for a root span, and `remoteParent`
   * says it came in a traceparent (the is-remote bit of `flags`).
   */
  begin(
    traceId: string,
    spanId: string,
    parentSpanId: string,
    remoteParent: boolean,
    name: string,
    kind: number,
    startMs: number,
    endMs: number,
  ): void;
  string(key: AttributeKey, value: string): void;
  /** An integer attribute (OTLP int_value); `number` decides between int and double. */
  int(key: AttributeKey, value: number): void;
  number(key: AttributeKey, value: number): void;
  boolean(key: AttributeKey, value: boolean): void;
  /** Marks where a run of attributes starts in the open span, for `capture`. */
  mark(): void;
  /** The attributes written since `mark`, to `copy` into later spans; undefined when they are too long to keep. */
  capture(): AttributeRun | undefined;
  /** Writes a captured run again: the same bytes as writing its attributes one by one. */
  copy(run: AttributeRun): void;
  /** Closes the span with its status, and queues it for export. */
  end(status: number, statusMessage: string | undefined): void;
  /** Takes a span cut short (begun, never ended) back out of the body. */
  abort(): void;
}

/** The body of an export, around the spans: built once per batch from the spans' length. */
export interface Envelope {
  /** The bytes before the spans, given the spans' total byte length. */
  head(spansBytes: number): Buffer;
  /** The longest `head` can be, so the body keeps room for it in front of the spans. */
  readonly maxHead: number;
  readonly tail: Buffer;
}

export interface SpanFormat {
  /** The export request's Content-Type. */
  readonly contentType: string;
  key(name: string, options?: KeyOptions): AttributeKey;
  /** A writer of this format's spans into `body`. */
  writer(body: SpanBody): SpanWriter;
  /** The body around the spans: the resource (service.name, then `resource`, OTEL_RESOURCE_ATTRIBUTES) and the scope. */
  envelope(serviceName: string, resource?: Readonly<Record<string, string>>): Envelope;
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
