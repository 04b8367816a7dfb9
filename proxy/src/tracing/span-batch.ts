/**
 * Batches finished spans (protobuf bytes from otlp-proto.ts, or OTLP/JSON text from
 * otlp-json.ts) and sends them with the official
 * OTLP/HTTP transport (`@opentelemetry/otlp-exporter-base`: its retries, timeout, concurrency
 * limit and the OTEL_EXPORTER_OTLP_* headers and TLS settings), as the SDK's
 * BatchSpanProcessor would: a batch goes when it is full or when the delay has passed.
 *
 * Each request's spans are copied into the batch's body buffer when they are pushed, while
 * their string pieces are still young and in cache. Joining a batch's strings at export
 * time instead walked ~25,000 pieces scattered over the heap: ~9 µs a request, more than
 * everything else tracing does. The body keeps room in front of the spans for the envelope,
 * which protobuf can only write once it knows the spans' total length.
 *
 * Bounded: one body of at most `maxBatchBytes` fills while at most four exports are in
 * flight (the transport's concurrency limit); beyond that spans are dropped and counted, as
 * the SDK does, so a slow collector costs memory only up to that bound and never slows a
 * request.
 */
import type { ExportResult } from '@opentelemetry/core';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import {
  convertLegacyHttpOptions,
  createOtlpHttpExportDelegate,
} from '@opentelemetry/otlp-exporter-base/node-http';
import type { ISerializer } from '@opentelemetry/otlp-transformer';
import type { SpanFormat } from './span-format.js';

export interface SpanBatchOptions {
  /** The OTLP/HTTP traces URL (`…/v1/traces`). */
  url: string;
  serviceName: string;
  format: SpanFormat;
  /** Told the outcome of every export: an Error when it failed, undefined when it went through. */
  onExportResult(error: Error | undefined): void;
  scheduledDelayMs?: number;
  maxBatchSpans?: number;
  maxBatchBytes?: number;
}

export interface SpanBatch {
  /** Queues one request's spans (`count` of them, joined by the format's separator). */
  push(spans: string, count: number): void;
  /** Spans dropped: too big for a batch, refused by a full transport, failed, or after shutdown. */
  readonly dropped: number;
  /** Sends what is queued and waits for every export in flight. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

const EXPORT_OK = 0;

/** A ready export body: the bytes, and how many spans they hold. */
interface Body {
  bytes: Buffer;
  spans: number;
}

export function createSpanBatch(options: SpanBatchOptions): SpanBatch {
  const delayMs = options.scheduledDelayMs ?? 2_000;
  const maxSpans = options.maxBatchSpans ?? 512;
  const capacity = options.maxBatchBytes ?? 1024 * 1024;
  const { format } = options;
  const envelope = format.envelope(options.serviceName);
  const { maxHead, tail } = envelope;
  const separator = Buffer.from(format.separator, 'latin1');
  const serializer: ISerializer<Body, unknown> = {
    serializeRequest: (body) => body.bytes,
    deserializeResponse: (data) => format.deserializeResponse(data),
  };
  const exporter = new OTLPExporterBase<Body>(
    createOtlpHttpExportDelegate(
      convertLegacyHttpOptions(
        { url: options.url, timeoutMillis: 5_000, concurrencyLimit: 4 },
        'TRACES',
        'v1/traces',
        { 'Content-Type': format.contentType },
      ),
      serializer,
    ),
  );
  let body = Buffer.allocUnsafe(capacity);
  let used = maxHead;
  let queued = 0;
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  function send(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (queued === 0) return;
    const head = envelope.head(used - maxHead);
    const start = maxHead - head.length;
    head.copy(body, start);
    used += tail.copy(body, used);
    const ready: Body = { bytes: body.subarray(start, used), spans: queued };
    body = Buffer.allocUnsafe(capacity);
    used = maxHead;
    queued = 0;
    exporter.export(ready, (result: ExportResult) => {
      if (result.code === EXPORT_OK) options.onExportResult(undefined);
      else {
        dropped += ready.spans;
        options.onExportResult(result.error ?? new Error('span export failed'));
      }
    });
  }

  return {
    push(spans, count) {
      // Byte length equals length only for ASCII (and for protobuf's byte strings), which
      // latin1 then writes as the same bytes at memcpy speed; Node 20's UTF-8 writer costs
      // several µs a request.
      const bytes = format.binary ? spans.length : Buffer.byteLength(spans, 'utf8');
      const needed = bytes + separator.length + tail.length;
      if (closed || maxHead + needed > capacity) {
        dropped += count;
        return;
      }
      if (used + needed > capacity) send();
      if (queued > 0) used += separator.copy(body, used);
      used += body.write(spans, used, bytes === spans.length ? 'latin1' : 'utf8');
      queued += count;
      if (queued >= maxSpans) send();
      else timer ??= setTimeout(send, delayMs).unref();
    },
    get dropped() {
      return dropped;
    },
    async flush() {
      send();
      await exporter.forceFlush();
    },
    async shutdown() {
      send();
      closed = true;
      await exporter.shutdown().catch(() => undefined);
    },
  };
}
