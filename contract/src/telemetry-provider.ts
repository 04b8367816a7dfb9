/**
 * The control plane's tracer-provider setup: OTLP/HTTP (JSON) export in batches,
 * parent-based ratio sampling, W3C trace context. (The proxy, which traces every request,
 * writes its spans without the SDK: proxy/src/tracing/otlp-json.ts.) Only imported dynamically, once
 * resolveTelemetry (telemetry.ts) said tracing is on, so a service with tracing off never
 * loads the SDK.
 *
 * A collector that is down must cost nothing but a warning: every export result goes to
 * `onExportError` (traceExportReporter in telemetry.ts turns them into one outage log), never
 * to OpenTelemetry's global error handler (a stack per batch), and never fails the request
 * that made the span.
 */
import type { Tracer } from '@opentelemetry/api';
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { TelemetrySettings } from './telemetry.js';

export { trace, context, SpanKind, SpanStatusCode, ROOT_CONTEXT } from '@opentelemetry/api';
export type { Span, Tracer, Context, Attributes } from '@opentelemetry/api';

/** A started provider: its tracer, the W3C propagator, and a flush-and-stop for shutdown. */
export interface TracingHandle {
  readonly tracer: Tracer;
  readonly propagator: W3CTraceContextPropagator;
  /** Sends what is buffered; resolves even when the collector is down. */
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  readonly serviceVersion?: string;
  /**
   * Told of every export: the error of a batch that failed, `undefined` for one that went
   * through. Usually traceExportReporter, which counts failures and logs once per outage.
   */
  onExportError(error: Error | undefined): void;
  /** Batch delay; tests shorten it. */
  readonly scheduledDelayMs?: number;
}

/** Wraps the exporter to report each batch's result to us instead of to OpenTelemetry. */
class ReportingExporter implements SpanExporter {
  constructor(
    private readonly inner: SpanExporter,
    private readonly report: (error: Error | undefined) => void,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      // Every failure counts: the outage log's summary says how many batches were dropped.
      if (result.code === ExportResultCode.SUCCESS) this.report(undefined);
      else this.report(result.error ?? new Error('span export failed'));
      // The processor would hand a failure to the global error handler (a stack per batch).
      done({ code: ExportResultCode.SUCCESS });
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

export function startTracing(settings: TelemetrySettings, options: TracingOptions): TracingHandle {
  const exporter = new ReportingExporter(
    new OTLPTraceExporter({ url: settings.tracesUrl, timeoutMillis: 5_000 }),
    options.onExportError,
  );
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      ...settings.resourceAttributes,
      [ATTR_SERVICE_NAME]: settings.serviceName,
      ...(options.serviceVersion ? { [ATTR_SERVICE_VERSION]: options.serviceVersion } : {}),
    }),
    sampler: settings.parentBased
      ? new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sampleRatio) })
      : new TraceIdRatioBasedSampler(settings.sampleRatio),
    spanProcessors: [
      new BatchSpanProcessor(exporter, {
        scheduledDelayMillis: options.scheduledDelayMs ?? 2_000,
        maxQueueSize: 4_096,
        maxExportBatchSize: 512,
      }),
    ],
  });
  // Not registered globally: each service holds its own tracer, and a library that traces
  // through the global API cannot add spans (or cost) we did not ask for.
  const tracer = provider.getTracer('lanekeeper');
  return {
    tracer,
    propagator: new W3CTraceContextPropagator(),
    forceFlush: () => provider.forceFlush().catch(() => undefined),
    shutdown: () => provider.shutdown().catch(() => undefined),
  };
}
