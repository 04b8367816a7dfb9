/**
 * The tracer copies runs of attributes already written for equal values (RunCache). Here
 * every value such a run holds is changed, one at a time, between requests that are
 * otherwise the same, in both wire formats: each request's spans must say exactly its own
 * values, never those of the run written before it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OtlpProtocol } from '@lanekeeper/contract';
import type { RequestContext } from '../context.js';
import { createOtelRequestTracer } from './otel-request-tracer.js';
import type { RequestTrace, RequestTracer } from './request-trace.js';
import { startOtlpReceiver, type OtlpReceiver } from '../../../test/fakes/otlp/otlp-receiver.js';
import { servedChat, tracedUpstream, tracingEverything } from '../../test/helpers/traced-context.js';

const INTERNAL = 1;
const SERVER = 2;
const CLIENT = 3;

const upstreamB = tracedUpstream('backup', 'http://10.0.0.7:8000');

/** A request's trace through one admitted rate-limit stage and one upstream call answered 200. */
function serveTraced(
  tracer: RequestTracer,
  ctx: RequestContext,
  path = '/v1/chat/completions',
): RequestTrace {
  const trace = tracer.start(ctx);
  trace.stage('lanekeeper.rate_limit').end(undefined);
  trace.attemptStart(ctx.upstream!, 'POST', path, ctx);
  trace.attemptStatus(200);
  trace.attemptEnd(undefined);
  trace.end(ctx);
  return trace;
}

/** One value of a run changed, and what the request span (and call span) must then say. */
interface Change {
  name: string;
  change(ctx: Record<string, unknown>): void;
  request: Record<string, unknown>;
  call?: Record<string, unknown>;
}

const CHANGES: Change[] = [
  {
    name: 'method',
    change: (c) => (c.request = { method: 'PUT', path: '/v1/chat/completions' }),
    request: { 'http.request.method': 'PUT' },
  },
  {
    name: 'path',
    change: (c) => (c.request = { method: 'POST', path: '/v1/completions' }),
    request: { 'url.path': '/v1/completions' },
  },
  { name: 'scheme', change: (c) => (c.secure = true), request: { 'url.scheme': 'https' } },
  {
    name: 'client',
    change: (c) => (c.remoteAddress = '10.9.9.9'),
    request: { 'client.address': '10.9.9.9' },
  },
  {
    name: 'host',
    change: (c) => (c.clientHeaders = { host: 'other.internal:9090' }),
    request: { 'server.address': 'other.internal', 'server.port': 9090 },
  },
  {
    name: 'operation',
    change: (c) => (c.upstreamRoute = { endpoint: 'embeddings' }),
    request: { 'gen_ai.operation.name': 'embeddings' },
    call: { 'gen_ai.operation.name': 'embeddings' },
  },
  {
    name: 'provider',
    change: (c) => (c.upstreamDialect = { name: 'anthropic' }),
    request: { 'gen_ai.provider.name': 'anthropic' },
    call: { 'gen_ai.provider.name': 'anthropic' },
  },
  {
    name: 'model',
    change: (c) => (c.model = 'small-model'),
    request: { 'gen_ai.request.model': 'small-model' },
    call: { 'gen_ai.request.model': 'small-model' },
  },
  {
    name: 'response model',
    change: (c) => (c.upstreamModel = 'big-model-2026'),
    request: { 'gen_ai.response.model': 'big-model-2026' },
    call: { 'gen_ai.response.model': 'big-model-2026' },
  },
  {
    name: 'max tokens',
    change: (c) => (c.maxOutputTokens = 64),
    request: { 'gen_ai.request.max_tokens': 64 },
    call: { 'gen_ai.request.max_tokens': 64 },
  },
  { name: 'status', change: (c) => (c.status = 201), request: { 'http.response.status_code': 201 } },
  {
    name: 'tenant',
    change: (c) => (c.tenant = { id: 'globex', planName: 'pro' }),
    request: { 'lanekeeper.tenant': 'globex' },
    call: { 'lanekeeper.tenant': 'globex' },
  },
  {
    name: 'plan',
    change: (c) => (c.tenant = { id: 'acme', planName: 'enterprise' }),
    request: { 'lanekeeper.plan': 'enterprise' },
  },
  {
    name: 'model asked for',
    change: (c) => (c.modelRequested = 'big-model'),
    request: { 'lanekeeper.model_requested': 'big-model' },
  },
  {
    name: 'provenance',
    change: (c) => (c.provenance = 'estimated'),
    request: { 'lanekeeper.usage.provenance': 'estimated' },
  },
  {
    name: 'outcome',
    change: (c) => (c.outcome = 'client_aborted'),
    request: { 'lanekeeper.outcome': 'client_aborted' },
  },
  {
    name: 'upstream',
    change: (c) => (c.upstream = upstreamB),
    request: { 'lanekeeper.upstream': 'backup' },
    call: {
      'lanekeeper.upstream': 'backup',
      'server.address': '10.0.0.7',
      'server.port': 8000,
      'url.full': 'http://10.0.0.7:8000/v1/chat/completions',
    },
  },
  { name: 'stream', change: (c) => (c.stream = true), request: { 'lanekeeper.stream': true } },
  {
    name: 'error',
    change: (c) => (c.errorCode = 'upstream_timeout'),
    request: { 'error.type': 'upstream_timeout' },
  },
];

/** What the request span of an unchanged context says. */
const BASE_REQUEST = {
  'http.request.method': 'POST',
  'url.path': '/v1/chat/completions',
  'url.scheme': 'http',
  'client.address': '10.1.2.3',
  'server.address': 'proxy.internal',
  'server.port': 8080,
  'gen_ai.operation.name': 'chat',
  'gen_ai.provider.name': 'openai',
  'gen_ai.request.model': 'big-model',
  'gen_ai.response.model': 'big-model-2025',
  'gen_ai.request.max_tokens': 1024,
  'http.response.status_code': 200,
  'lanekeeper.tenant': 'acme',
  'lanekeeper.plan': 'pro',
  'lanekeeper.model_requested': 'smart',
  'lanekeeper.usage.provenance': 'reported',
  'lanekeeper.outcome': 'completed',
  'lanekeeper.upstream': 'openai',
  'lanekeeper.stream': false,
};

const BASE_CALL = {
  'http.request.method': 'POST',
  'gen_ai.operation.name': 'chat',
  'gen_ai.provider.name': 'openai',
  'gen_ai.request.model': 'big-model',
  'gen_ai.response.model': 'big-model-2025',
  'gen_ai.request.max_tokens': 1024,
  'server.address': '127.0.0.1',
  'server.port': 9999,
  'url.full': 'http://127.0.0.1:9999/v1/chat/completions',
  'lanekeeper.upstream': 'openai',
  'http.response.status_code': 200,
  'lanekeeper.tenant': 'acme',
};

let otlp: OtlpReceiver;
beforeAll(async () => {
  otlp = await startOtlpReceiver();
});
afterAll(() => otlp.close());

describe.each<OtlpProtocol>(['http/protobuf', 'http/json'])('runs of attributes copied (%s)', (protocol) => {
  it('never gives a span the values of the request written before it', async () => {
    const tracer = createOtelRequestTracer(tracingEverything(otlp.url, 'runs', protocol), {
      onExportResult: () => undefined,
    });
    const expected = new Map<string, { request: Record<string, unknown>; call: Record<string, unknown> }>();
    let n = 0;
    const serve = (ctx: RequestContext, request: Record<string, unknown>, call: Record<string, unknown>) => {
      serveTraced(tracer, ctx, '/v1/chat/completions?key=secret');
      expected.set(ctx.id, { request, call });
    };
    // Base, changed, base, changed: each change is both a miss after a kept run and, the
    // second time, a hit on its own.
    for (const { change, request, call } of CHANGES)
      for (let round = 0; round < 2; round++) {
        serve(servedChat(`${protocol}-${n++}`), BASE_REQUEST, BASE_CALL);
        serve(
          servedChat(`${protocol}-${n++}`, change),
          { ...BASE_REQUEST, ...request },
          { ...BASE_CALL, ...(call ?? {}) },
        );
      }
    await tracer.shutdown();

    for (const [id, want] of expected) {
      const span = await otlp.waitFor(
        (s) => s.kind === SERVER && s.attributes['lanekeeper.request_id'] === id,
      );
      const { 'lanekeeper.request_id': _, ...attributes } = span.attributes;
      expect({ id, ...attributes }).toMatchObject({ id, ...want.request });
      const call = otlp.spans.find((s) => s.kind === CLIENT && s.parentSpanId === span.spanId);
      expect({ id, ...call?.attributes }).toMatchObject({ id, ...want.call });
      const stage = otlp.spans.find((s) => s.kind === INTERNAL && s.parentSpanId === span.spanId);
      expect({ id, ...stage?.attributes }).toEqual({
        id,
        'lanekeeper.admitted': true,
        'lanekeeper.tenant': want.request['lanekeeper.tenant'],
      });
    }
  });

  it("gives a request with no tenant no tenant on any span, after another tenant's runs", async () => {
    const tracer = createOtelRequestTracer(tracingEverything(otlp.url, 'no-tenant', protocol), {
      onExportResult: () => undefined,
    });
    // acme's runs first, then requests with no tenant that are otherwise the same: a run
    // kept for acme must not lend them its tenant.
    const ids: { id: string; tenant: string | undefined }[] = [];
    for (let i = 0; i < 6; i++) {
      const tenant = i % 2 === 0 ? 'acme' : undefined;
      const ctx = servedChat(`${protocol}-anonymous-${i}`, (c) => {
        if (tenant === undefined) c.tenant = undefined;
      });
      serveTraced(tracer, ctx);
      ids.push({ id: ctx.id, tenant });
    }
    await tracer.shutdown();
    for (const { id, tenant } of ids) {
      const span = await otlp.waitFor(
        (s) => s.kind === SERVER && s.attributes['lanekeeper.request_id'] === id,
      );
      const family = [span, ...otlp.spans.filter((s) => s.parentSpanId === span.spanId)];
      expect(family.map((s) => s.kind).sort()).toEqual([INTERNAL, SERVER, CLIENT].sort());
      for (const one of family)
        expect({ id, tenant: one.attributes['lanekeeper.tenant'] }).toEqual({ id, tenant });
    }
  });

  it("writes each request's own ids, times, token counts, request id and cost, of every size", async () => {
    const tracer = createOtelRequestTracer(tracingEverything(otlp.url, 'own-values', protocol), {
      onExportResult: () => undefined,
    });
    // One shape served again and again, its values changing: the same sizes, other sizes,
    // ints and doubles, values absent, and a remote parent or none; each request's spans
    // must say its own, whatever was copied from the requests before it.
    const usages = [
      { input: 10, output: 2 },
      { input: 11, output: 3 },
      { input: 99, output: 100 },
      { input: 300, output: 2 },
      { input: 70_000, output: 1 },
      { input: undefined, output: 5 },
      { input: 4, output: undefined },
      { input: 1.5, output: 2 },
    ];
    const costs = [0.000014, 0.5, 0, 3, undefined, 1e-9];
    const served: {
      id: string;
      traceId: string;
      parent: string;
      usage: { input?: number; output?: number };
      cost?: number;
    }[] = [];
    for (let i = 0; i < 60; i++) {
      const usage = usages[i % usages.length]!;
      const cost = costs[i % costs.length];
      const parent = i % 5 === 0 ? (i + 1).toString(16).padStart(16, 'f') : '';
      const ctx = servedChat(`${protocol}-template-${i}`, (c) => {
        c.usage = { ...usage };
        c.costUsd = cost;
        if (parent)
          c.clientHeaders = {
            host: 'proxy.internal:8080',
            traceparent: `00-${'7'.repeat(30)}${String(i).padStart(2, '0')}-${parent}-01`,
          };
      });
      const trace = serveTraced(tracer, ctx);
      served.push({ id: ctx.id, traceId: trace.traceId!, parent, usage, cost });
    }
    await tracer.shutdown();
    const traceIds = new Set<string>();
    for (const one of served) {
      const span = await otlp.waitFor(
        (s) => s.kind === SERVER && s.attributes['lanekeeper.request_id'] === one.id,
      );
      const label = { id: one.id };
      expect({ ...label, trace: span.traceId, parent: span.parentSpanId }).toEqual({
        ...label,
        trace: one.traceId,
        parent: one.parent,
      });
      traceIds.add(span.traceId);
      const children = otlp.spans.filter((s) => s.parentSpanId === span.spanId);
      expect(children.map((s) => s.kind).sort()).toEqual([INTERNAL, CLIENT]);
      for (const child of children) {
        expect({ ...label, trace: child.traceId }).toEqual({ ...label, trace: one.traceId });
        expect(child.spanId).not.toBe(span.spanId);
        // Within the request, in order: its children start after it and end before it.
        expect(BigInt(child.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(span.startTimeUnixNano));
        expect(BigInt(child.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(span.endTimeUnixNano));
      }
      const call = children.find((s) => s.kind === CLIENT)!;
      for (const s of [span, call]) {
        expect({ ...label, tokens: s.attributes['gen_ai.usage.input_tokens'] }).toEqual({
          ...label,
          tokens: one.usage.input,
        });
        expect({ ...label, tokens: s.attributes['gen_ai.usage.output_tokens'] }).toEqual({
          ...label,
          tokens: one.usage.output,
        });
      }
      expect({ ...label, cost: span.attributes['lanekeeper.cost_usd'] }).toEqual({
        ...label,
        cost: one.cost,
      });
    }
    expect(traceIds.size).toBe(served.length);
  });
});
