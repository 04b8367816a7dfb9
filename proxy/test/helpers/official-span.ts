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
import { SpanBody } from '../../src/tracing/span-body.js';
import type { SpanFormat, SpanWriter } from '../../src/tracing/span-format.js';

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

/** One span to write with our encoders: what it is made of, and the ids the SDK gave it. */
export interface OurSpan {
  options: SpanOptions;
  traceId: string;
  spanId: string;
}

/** Writes `spans` with `writer` as the tracer does: typed attributes, then the status. */
export function writeSpans(format: SpanFormat, writer: SpanWriter, spans: OurSpan[]): void {
  for (const { options, traceId, spanId } of spans) {
    writer.begin(
      traceId,
      spanId,
      options.remoteParent?.spanId ?? '',
      options.remoteParent !== undefined,
      options.name,
      options.kind + 1,
      options.startMs,
      options.endMs,
    );
    for (const [name, value] of options.attributes) {
      const key = format.key(name);
      if (typeof value === 'string') writer.string(key, value);
      else if (typeof value === 'boolean') writer.boolean(key, value);
      else writer.number(key, value);
    }
    writer.end(options.error === undefined ? 0 : 2, options.error);
  }
}

/**
 * The export bodies `format` writes for `spans`, envelope included, as the batch sends them:
 * more than one when they outgrow `capacity`. Also the body, to read what it dropped.
 */
export function ourBodies(
  format: SpanFormat,
  spans: OurSpan[],
  capacity = 1024 * 1024,
): { bodies: Buffer[]; body: SpanBody } {
  const bodies: Buffer[] = [];
  const body = new SpanBody({
    envelope: format.envelope('svc'),
    capacity,
    maxSpans: Number.MAX_SAFE_INTEGER,
    onReady: (ready) => bodies.push(Buffer.from(ready.bytes)),
    onFirstSpan: () => undefined,
  });
  writeSpans(format, format.writer(body), spans);
  const last = body.take();
  if (last) bodies.push(Buffer.from(last.bytes));
  return { bodies, body };
}
