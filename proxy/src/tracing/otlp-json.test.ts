import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assertRunsWriteTheSame,
  officialSpan,
  ourBodies,
  spanOptions,
  type SpanOptions,
} from '../../test/helpers/official-span.js';
import { attributeKey, exportBody, firstAttribute, otlpJson, spanJson, unixNanos } from './otlp-json.js';

/** What the official SDK and serializer write for one span, parsed. */
function official(options: SpanOptions) {
  const finished = officialSpan(options);
  const body = JSON.parse(Buffer.from(JsonTraceSerializer.serializeRequest([finished])!).toString('utf8'));
  return { body, traceId: finished.spanContext().traceId, spanId: finished.spanContext().spanId };
}

/** Drops what OTLP defines as the default (empty lists, zero counts), which ours leaves out. */
function withoutDefaults(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutDefaults);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (/^dropped.*Count$/.test(key) && item === 0) continue;
    if ((key === 'events' || key === 'links') && Array.isArray(item) && item.length === 0) continue;
    out[key] = withoutDefaults(item);
  }
  return out;
}

/** Our export body for the same span, as the batch sends it, parsed. */
function ours(sdk: { traceId: string; spanId: string }, options: SpanOptions): unknown {
  const { bodies } = ourBodies(otlpJson, [{ options, ...sdk }]);
  expect(bodies).toHaveLength(1);
  return JSON.parse(bodies[0]!.toString('utf8'));
}

/** The two bodies with times compared to the microsecond, the precision ours keeps. */
function expectSameExport(actual: unknown, expected: unknown): void {
  const times = (body: unknown) => {
    const span = (body as { resourceSpans: { scopeSpans: { spans: Record<string, string>[] }[] }[] })
      .resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    const found = [BigInt(span.startTimeUnixNano!), BigInt(span.endTimeUnixNano!)];
    span.startTimeUnixNano = span.endTimeUnixNano = '';
    return found;
  };
  const [ourStart, ourEnd] = times(actual);
  const [start, end] = times(expected);
  expect(Number(ourStart! - start!)).toBeLessThanOrEqual(1_000);
  expect(Number(ourStart! - start!)).toBeGreaterThanOrEqual(-1_000);
  expect(Number(ourEnd! - end!)).toBeLessThanOrEqual(1_000);
  expect(Number(ourEnd! - end!)).toBeGreaterThanOrEqual(-1_000);
  expect(actual).toStrictEqual(withoutDefaults(expected));
}

describe('OTLP/JSON spans', () => {
  it('writes what the official SDK and serializer write, for any attributes, name and status', () => {
    const value = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Object.is(n, -0)),
      fc.boolean(),
    );
    fc.assert(
      fc.property(spanOptions(value), (options) => {
        const sdk = official(options);
        expectSameExport(ours(sdk, options), sdk.body);
      }),
      { numRuns: 200 },
    );
  });

  it('copies a run of attributes as the very text it wrote, across bodies and drops', () => {
    assertRunsWriteTheSame(otlpJson);
  });

  it('keeps the microsecond of a wall-clock time', () => {
    expect(unixNanos(1_796_497_813_844.904)).toBe('1796497813844904000');
    expect(unixNanos(1_796_497_813_000)).toBe('1796497813000000000');
  });

  it('escapes what a client sends into a name or an attribute, so the body stays one valid JSON', () => {
    const hostile = 'a"},{"key":"lanekeeper.tenant","value":{"stringValue":"victim"}}]\u2028\\';
    const body = JSON.parse(
      exportBody(
        'svc',
        spanJson({
          traceId: '0af7651916cd43dd8448eb211c80319c',
          spanId: 'b7ad6b7169203331',
          parentSpanId: '',
          remoteParent: false,
          name: hostile,
          kind: 2,
          startMs: 1,
          endMs: 2,
          attributes: firstAttribute(attributeKey('gen_ai.request.model'), hostile),
          status: 0,
        }),
      ),
    );
    const span = body.resourceSpans[0].scopeSpans[0].spans[0];
    expect(span.name).toBe(hostile);
    expect(span.attributes).toEqual([{ key: 'gen_ai.request.model', value: { stringValue: hostile } }]);
  });

  it('writes bodies of many spans, split by size, each one valid JSON', () => {
    const ids = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' };
    const spans = Array.from({ length: 60 }, (_, i) => ({
      options: {
        name: `s${i}`,
        kind: 1,
        attributes: [['k', `ü${'v'.repeat(i * 20)}`]] as [string, string][],
        startMs: 1,
        endMs: 2,
      },
      ...ids,
    }));
    const { bodies, body } = ourBodies(otlpJson, spans, 4_096);
    expect(bodies.length).toBeGreaterThan(3);
    const names = bodies.flatMap((bytes) =>
      (
        JSON.parse(bytes.toString('utf8')) as {
          resourceSpans: { scopeSpans: { spans: { name: string }[] }[] }[];
        }
      ).resourceSpans[0]!.scopeSpans[0]!.spans.map((s) => s.name),
    );
    expect(names).toEqual(spans.map((s) => s.options.name));
    expect(body.dropped).toBe(0);
  });
});
