/**
 * Sends the spans written into a SpanBody (span-body.ts) with the official OTLP/HTTP
 * exporter (`@opentelemetry/otlp-exporter-base`: its timeout, concurrency limit and the
 * OTEL_EXPORTER_OTLP_* headers, compression and TLS settings) over undici, retrying as its
 * own transport does (otlp-transport.ts), as the SDK's BatchSpanProcessor would: a body goes when it is full or
 * when the delay has passed.
 *
 * Bounded: one body of at most `maxBatchBytes` fills while at most four exports are in
 * flight (the transport's concurrency limit); beyond that spans are dropped and counted, as
 * the SDK does, so a slow collector costs memory only up to that bound and never slows a
 * request.
 */
import type { ExportResult } from '@opentelemetry/core';
import { createOtlpNetworkExportDelegate, OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions } from '@opentelemetry/otlp-exporter-base/node-http';
import type { ISerializer } from '@opentelemetry/otlp-transformer';
import { createUndiciTransport } from './otlp-transport.js';
import { SpanBody, type Body } from './span-body.js';
import type { SpanFormat, SpanWriter } from './span-format.js';

export interface SpanBatchOptions {
  /** The OTLP/HTTP traces URL (`…/v1/traces`). */
  url: string;
  serviceName: string;
  /** More resource attributes (OTEL_RESOURCE_ATTRIBUTES). */
  resource?: Readonly<Record<string, string>>;
  format: SpanFormat;
  /** Told the outcome of every export: an Error when it failed, undefined when it went through. */
  onExportResult(error: Error | undefined): void;
  scheduledDelayMs?: number;
  /** Called before a body is sent on its delay, flushed or shut down: spans still to write go in first. */
  beforeSend?: () => void;
  maxBatchSpans?: number;
  maxBatchBytes?: number;
}

export interface SpanBatch {
  /** Writes spans into the batch: each is queued as it ends. */
  readonly writer: SpanWriter;
  /** Spans dropped: too big for a batch, refused by a full transport, failed, or after shutdown. */
  readonly dropped: number;
  /** Sends what is queued and waits for every export in flight. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

const EXPORT_OK = 0;

/**
 * A body goes at 2,048 spans (about 1 MB of protobuf, ~680 requests) or at 2 MiB. Each
 * export has a fixed cost in the transport and the kernel: side by side, bodies of four times
 * the SDK's 512 spans cost 3.6 µs less a request (docs/observability.md).
 */
const BODY_SPANS = 2_048;
const BODY_BYTES = 2 * 1024 * 1024;

export function createSpanBatch(options: SpanBatchOptions): SpanBatch {
  const delayMs = options.scheduledDelayMs ?? 2_000;
  const { format } = options;
  const serializer: ISerializer<Body, unknown> = {
    serializeRequest: (body) => body.bytes,
    deserializeResponse: (data) => format.deserializeResponse(data),
  };
  const config = convertLegacyHttpOptions(
    { url: options.url, timeoutMillis: 5_000, concurrencyLimit: 4 },
    'TRACES',
    'v1/traces',
    { 'Content-Type': format.contentType },
  );
  // The official delegate (queue, timeout) over undici rather than http.request (otlp-transport.ts).
  const exporter = new OTLPExporterBase<Body>(
    createOtlpNetworkExportDelegate(config, serializer, createUndiciTransport(config)),
  );
  let failed = 0;
  let timer: NodeJS.Timeout | undefined;
  /** Exports sent, and the newest whose result was reported. */
  let sent = 0;
  let reported = 0;

  function send(ready: Body | undefined): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (!ready) return;
    const seq = ++sent;
    exporter.export(ready, (result: ExportResult) => {
      // The transport is done with the bytes: sent, or given up (its socket destroyed).
      body.recycle(ready.buffer);
      const ok = result.code === EXPORT_OK;
      if (!ok) failed += ready.spans;
      // Results are told in the order the exports were sent: sent during a collector's hang,
      // several time out after a newer one went through, and the outage log flapped
      // (unavailable, available again, four times in 3 s) as they landed.
      if (seq < reported) return;
      reported = seq;
      options.onExportResult(ok ? undefined : (result.error ?? new Error('span export failed')));
    });
  }

  /** Sends what the body holds now, spans still to write first. */
  function sendNow(): void {
    options.beforeSend?.();
    send(body.take());
  }

  const body = new SpanBody({
    envelope: format.envelope(options.serviceName, options.resource),
    capacity: options.maxBatchBytes ?? BODY_BYTES,
    maxSpans: options.maxBatchSpans ?? BODY_SPANS,
    onReady: send,
    onFirstSpan() {
      timer ??= setTimeout(sendNow, delayMs).unref();
    },
  });

  return {
    writer: format.writer(body),
    get dropped() {
      return failed + body.dropped;
    },
    async flush() {
      sendNow();
      await exporter.forceFlush();
    },
    async shutdown() {
      sendNow();
      body.close();
      await exporter.shutdown().catch(() => undefined);
    },
  };
}
