/**
 * What a served chat completion's context holds by the time its trace ends: the input of the
 * tracer's own tests (otel-request-tracer.test.ts) and of its loop benchmark
 * (bench/trace-encode.ts). The client's Host and the upstream differ, so a server span and
 * a call span cannot be told apart by mistake.
 */
import { tracesUrl, type OtlpProtocol, type TelemetrySettings } from '@lanekeeper/contract';
import { performance } from 'node:perf_hooks';
import type { RequestContext } from '../../src/context.js';
import type { Upstream } from '../../src/runtime.js';

/** Every request traced, to the OTLP/HTTP base URL `url`. */
export function tracingEverything(
  url: string,
  serviceName: string,
  protocol: OtlpProtocol,
): TelemetrySettings {
  return {
    endpoint: url,
    tracesUrl: tracesUrl(url),
    sampleRatio: 1,
    parentBased: true,
    serviceName,
    resourceAttributes: {},
    protocol,
  };
}

/** An OpenAI-dialect upstream as the tracer reads it: its name and origin. */
export function tracedUpstream(name: string, origin: string): Upstream {
  return { name, origin, pathPrefix: '', dialect: { name: 'openai' } } as unknown as Upstream;
}

export const TRACED_UPSTREAM = tracedUpstream('openai', 'http://127.0.0.1:9999');

/** The context of request `id`, served by `TRACED_UPSTREAM`; `change` alters it first. */
export function servedChat(
  id: string,
  change: (ctx: Record<string, unknown>) => void = () => undefined,
): RequestContext {
  const ctx: Record<string, unknown> = {
    id,
    startedAt: performance.now(),
    clientHeaders: { host: 'proxy.internal:8080' },
    remoteAddress: '10.1.2.3',
    secure: false,
    request: { method: 'POST', path: '/v1/chat/completions' },
    dialect: { name: 'openai' },
    route: { endpoint: 'chat.completions', fallback: false },
    upstreamRoute: { endpoint: 'chat.completions' },
    upstreamDialect: { name: 'openai' },
    tenant: { id: 'acme', planName: 'pro' },
    modelRequested: 'smart',
    model: 'big-model',
    upstreamModel: 'big-model-2025',
    upstream: TRACED_UPSTREAM,
    usage: { input: 10, output: 2 },
    maxOutputTokens: 1024,
    status: 200,
    costUsd: 0.000014,
    provenance: 'reported',
    outcome: 'completed',
    stream: false,
    errorCode: undefined,
  };
  change(ctx);
  return ctx as unknown as RequestContext;
}
