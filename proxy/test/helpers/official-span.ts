/**
 * One span made by the official OpenTelemetry SDK, for the property tests that hold our
 * hand-written OTLP encodings (otlp-json.ts, otlp-proto.ts) equal to what the official
 * serializers write for the same span.
 */
import { ROOT_CONTEXT, SpanKind, trace, TraceFlags, type Attributes } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import fc from 'fast-check';

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

/**
 * Any span the encoders must write as the official serializers do: up to 8 attributes with
 * values from `value`, any name and kind, an optional error status and remote parent, and
 * microsecond times.
 */
export function spanOptions(value: fc.Arbitrary<AttributeValue>): fc.Arbitrary<SpanOptions> {
  return fc
    .tuple(
      fc.uniqueArray(
        // The SDK copies attributes by assignment, so it cannot keep a key named __proto__;
        // ours are constants, never that one.
        fc.tuple(
          fc.string({ unit: 'binary', minLength: 1 }).filter((key) => key !== '__proto__'),
          value,
        ),
        { selector: ([key]) => key, maxLength: 8 },
      ),
      fc.string({ unit: 'binary' }),
      fc.constantFrom(SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.CLIENT),
      fc.option(fc.string({ unit: 'binary' }), { nil: undefined }),
      fc.boolean(),
      fc.integer({ min: 1_600_000_000_000_000, max: 2_000_000_000_000_000 }),
      fc.integer({ min: 0, max: 60_000_000 }),
    )
    .map(([attributes, name, kind, error, remote, startUs, durationUs]) => ({
      name,
      kind,
      attributes,
      startMs: startUs / 1000,
      endMs: (startUs + durationUs) / 1000,
      error,
      remoteParent: remote
        ? { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' }
        : undefined,
    }));
}
