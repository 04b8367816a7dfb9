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
import { expect } from 'vitest';
import { SpanBody } from '../../src/tracing/span-body.js';
import type { AttributeRun, SpanFormat, SpanWriter } from '../../src/tracing/span-format.js';

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

/**
 * Writes `spans` with `writer` as the tracer does: typed attributes, then the status. With
 * `runs`, a span's attributes are a run, captured the first time and copied for every later
 * span with the same ones, as the tracer's RunCache does.
 */
export function writeSpans(format: SpanFormat, writer: SpanWriter, spans: OurSpan[], runs = false): void {
  const kept = new Map<string, AttributeRun>();
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
    const same = runs ? JSON.stringify(options.attributes) : '';
    const run = kept.get(same);
    if (run) writer.copy(run);
    else {
      writer.mark();
      for (const [name, value] of options.attributes) {
        const key = format.key(name);
        if (typeof value === 'string') writer.string(key, value);
        else if (typeof value === 'boolean') writer.boolean(key, value);
        else writer.number(key, value);
      }
      const captured = writer.capture();
      if (runs && captured) kept.set(same, captured);
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
  runs = false,
): { bodies: Buffer[]; body: SpanBody } {
  const bodies: Buffer[] = [];
  const body = new SpanBody({
    envelope: format.envelope('svc'),
    capacity,
    maxSpans: Number.MAX_SAFE_INTEGER,
    onReady: (ready) => bodies.push(Buffer.from(ready.bytes)),
    onFirstSpan: () => undefined,
  });
  writeSpans(format, format.writer(body), spans, runs);
  const last = body.take();
  if (last) bodies.push(Buffer.from(last.bytes));
  return { bodies, body };
}

/**
 * Asserts that copying runs (the tracer's RunCache) writes the very bytes that writing each
 * attribute writes, for any spans repeated in any order. (Near the end of a body the two may
 * differ on where a span goes: writing reserves room an attribute at a time, with a margin,
 * and a copy exactly; `otlp-*.test.ts` check copies that cross bodies.)
 */
export function assertRunsWriteTheSame(format: SpanFormat): void {
  const value = fc.oneof(
    fc.string({ unit: 'binary' }),
    fc.string({ minLength: 300, maxLength: 400 }),
    fc.integer(),
    fc.double(),
    fc.boolean(),
  );
  const ids = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' };
  fc.assert(
    fc.property(
      fc.array(spanOptions(value), { minLength: 1, maxLength: 4 }),
      fc.array(fc.nat(), { minLength: 2, maxLength: 24 }),
      (distinct, picks) => {
        const spans = picks.map((pick) => ({ options: distinct[pick % distinct.length]!, ...ids }));
        const written = ourBodies(format, spans, 1024 * 1024, false).bodies;
        const copied = ourBodies(format, spans, 1024 * 1024, true).bodies;
        expect(copied.map((b) => b.toString('hex'))).toEqual(written.map((b) => b.toString('hex')));
      },
    ),
    { numRuns: 150 },
  );
}
