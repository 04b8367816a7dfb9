/**
 * One span made by the official OpenTelemetry SDK, for the property tests that hold our
 * hand-written OTLP encodings (otlp-json.ts, otlp-proto.ts) equal to what the official
 * serializers write for the same span.
 */
import { ROOT_CONTEXT, trace, TraceFlags, type Attributes, type SpanKind } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';

export type AttributeValue = string | number | boolean;

/** What a span is made of, in the tests' own terms. */
export interface SpanOptions {
  name: string;
  kind: SpanKind;
  attributes: [string, AttributeValue][];
  startMs: number;
  endMs: number;
  remoteParent?: { traceId: string; spanId: string };
  error?: string;
}

/** The finished span the SDK records for `options` (resource `service.name` = `svc`). */
export function officialSpan(options: SpanOptions): ReadableSpan {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'svc' }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const parent = options.remoteParent
    ? trace.setSpanContext(ROOT_CONTEXT, {
        ...options.remoteParent,
        traceFlags: TraceFlags.SAMPLED,
        isRemote: true,
      })
    : ROOT_CONTEXT;
  const attributes: Attributes = Object.fromEntries(options.attributes);
  const span = provider
    .getTracer('lanekeeper')
    .startSpan(options.name, { kind: options.kind, attributes, startTime: options.startMs }, parent);
  if (options.error !== undefined) span.setStatus({ code: 2, message: options.error });
  span.end(options.endMs);
  return exporter.getFinishedSpans()[0]!;
}
