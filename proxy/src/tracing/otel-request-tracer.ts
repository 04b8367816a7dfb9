/**
 * The RequestTracer behind `telemetry:`: one SERVER span per request (continuing an incoming
 * W3C traceparent), a child span per traced stage (rate-limit admission) and one CLIENT span
 * per upstream call, each call sent with its own traceparent. Attributes follow the HTTP and
 * GenAI semantic conventions plus `lanekeeper.*`; prompts and completions are never
 * recorded: every value below is a count, a name, an id or a status.
 *
 * Imported dynamically by main.ts only when tracing is on.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  startTracing,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TracingHandle,
} from '@lanekeeper/contract/telemetry-provider';
import type { TelemetrySettings } from '@lanekeeper/contract';
import { performance } from 'node:perf_hooks';
import type { RequestContext } from '../context.js';
import type { Upstream } from '../runtime.js';
import type { RequestTrace, RequestTracer, StageSpan } from './request-trace.js';

/** gen_ai.operation.name for each dialect endpoint that has one. */
const OPERATIONS: Record<string, string> = {
  'chat.completions': 'chat',
  chat: 'chat',
  messages: 'chat',
  responses: 'chat',
  completions: 'text_completion',
  generate: 'text_completion',
  generateContent: 'generate_content',
  streamGenerateContent: 'generate_content',
  embeddings: 'embeddings',
  embed: 'embeddings',
  embedContent: 'embeddings',
  batchEmbedContents: 'embeddings',
};

/** gen_ai.provider.name for each dialect (the well-known values where the spec has one). */
const PROVIDERS: Record<string, string> = {
  openai: 'openai',
  anthropic: 'anthropic',
  gemini: 'gcp.gemini',
};

const HEADER_GETTER = {
  keys: (carrier: RequestContext['clientHeaders']) => Object.keys(carrier),
  get: (carrier: RequestContext['clientHeaders'], key: string) => carrier[key],
};

const HEADER_SETTER = {
  set: (carrier: Record<string, string>, key: string, value: string) => {
    carrier[key] = value;
  },
};

function operationOf(ctx: RequestContext): string | undefined {
  const endpoint = ctx.upstreamRoute?.endpoint ?? ctx.route?.endpoint;
  return endpoint === undefined ? undefined : OPERATIONS[endpoint];
}

function providerOf(ctx: RequestContext): string | undefined {
  const name = ctx.upstreamDialect?.name ?? ctx.upstream?.dialect?.name ?? ctx.dialect?.name;
  return name === undefined ? undefined : (PROVIDERS[name] ?? name);
}

/** The outcome of one request's GenAI exchange, shared by the request span and the last call's span. */
function genAiAttributes(ctx: RequestContext): Attributes {
  const attributes: Attributes = {};
  const operation = operationOf(ctx);
  if (operation) attributes['gen_ai.operation.name'] = operation;
  const provider = providerOf(ctx);
  if (provider) attributes['gen_ai.provider.name'] = provider;
  if (ctx.model !== undefined) attributes['gen_ai.request.model'] = ctx.model;
  if (ctx.upstreamModel !== undefined) attributes['gen_ai.response.model'] = ctx.upstreamModel;
  if (ctx.usage.input !== undefined) attributes['gen_ai.usage.input_tokens'] = ctx.usage.input;
  if (ctx.usage.output !== undefined) attributes['gen_ai.usage.output_tokens'] = ctx.usage.output;
  if (ctx.maxOutputTokens !== undefined) attributes['gen_ai.request.max_tokens'] = ctx.maxOutputTokens;
  return attributes;
}

function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

class OtelRequestTrace implements RequestTrace {
  readonly traceId: string | undefined;
  private readonly parent: Context;
  private attempt: { span: Span; endedAt: number | undefined } | undefined;
  private attempts = 0;
  private readonly open = new Set<Span>();

  constructor(
    private readonly handle: TracingHandle,
    private readonly span: Span,
  ) {
    const spanContext = span.spanContext();
    this.traceId = span.isRecording() ? spanContext.traceId : undefined;
    this.parent = trace.setSpan(ROOT_CONTEXT, span);
  }

  stage(name: string): StageSpan {
    const child = this.handle.tracer.startSpan(name, { kind: SpanKind.INTERNAL }, this.parent);
    this.open.add(child);
    return {
      end: (refused) => {
        if (refused !== undefined) {
          child.setAttribute('lanekeeper.refused_status', refused);
          child.setAttribute('lanekeeper.admitted', false);
        } else child.setAttribute('lanekeeper.admitted', true);
        child.end();
        this.open.delete(child);
      },
    };
  }

  attemptStart(upstream: Upstream, method: string, path: string, ctx: RequestContext): string {
    this.closeAttempt();
    const url = new URL(upstream.origin);
    const operation = operationOf(ctx);
    const attributes: Attributes = {
      ...genAiAttributes(ctx),
      'http.request.method': method,
      'server.address': url.hostname,
      'server.port': Number(url.port) || (url.protocol === 'https:' ? 443 : 80),
      // The path without the query: a query may carry a provider key.
      'url.full': `${upstream.origin}${path.split('?', 1)[0]}`,
      'lanekeeper.upstream': upstream.name,
    };
    if (this.attempts > 0) attributes['http.request.resend_count'] = this.attempts;
    this.attempts++;
    const name = operation ? `${operation} ${ctx.model ?? ''}`.trim() : method;
    const span = this.handle.tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, this.parent);
    this.attempt = { span, endedAt: undefined };
    const carrier: Record<string, string> = {};
    this.handle.propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, HEADER_SETTER);
    return carrier.traceparent ?? '';
  }

  attemptStatus(status: number): void {
    const attempt = this.attempt;
    if (!attempt) return;
    attempt.span.setAttribute('http.response.status_code', status);
    if (status >= 400) attempt.span.setAttribute('error.type', String(status));
    if (status >= 500 || status === 429) attempt.span.setStatus({ code: SpanStatusCode.ERROR });
  }

  attemptEnd(error: string | undefined): void {
    const attempt = this.attempt;
    if (!attempt || attempt.endedAt !== undefined) return;
    if (error !== undefined) {
      attempt.span.setAttribute('error.type', error);
      attempt.span.setStatus({ code: SpanStatusCode.ERROR, message: error });
      attempt.span.end();
      this.attempt = undefined;
      return;
    }
    // The last call's usage is known only once the response-end hooks ran: end it then,
    // at the time it really ended.
    attempt.endedAt = epochMs();
  }

  /** Ends a call given up for a retry or fallback, at the time it ended. */
  private closeAttempt(): void {
    const attempt = this.attempt;
    if (!attempt) return;
    attempt.span.end(attempt.endedAt ?? epochMs());
    this.attempt = undefined;
  }

  end(ctx: RequestContext): void {
    const status = ctx.status ?? 0;
    const attempt = this.attempt;
    if (attempt) {
      attempt.span.setAttributes(genAiAttributes(ctx));
      attempt.span.end(attempt.endedAt ?? epochMs());
      this.attempt = undefined;
    }
    for (const child of this.open) child.end();
    this.open.clear();
    const span = this.span;
    const attributes = genAiAttributes(ctx);
    attributes['http.response.status_code'] = status;
    attributes['lanekeeper.request_id'] = ctx.id;
    if (ctx.tenant) {
      attributes['lanekeeper.tenant'] = ctx.tenant.id;
      attributes['lanekeeper.plan'] = ctx.tenant.planName;
    }
    if (ctx.modelRequested !== undefined) attributes['lanekeeper.model_requested'] = ctx.modelRequested;
    if (ctx.costUsd !== undefined) attributes['lanekeeper.cost_usd'] = ctx.costUsd;
    if (ctx.provenance !== undefined) attributes['lanekeeper.usage.provenance'] = ctx.provenance;
    if (ctx.outcome !== undefined) attributes['lanekeeper.outcome'] = ctx.outcome;
    if (ctx.upstream) attributes['lanekeeper.upstream'] = ctx.upstream.name;
    attributes['lanekeeper.stream'] = ctx.stream;
    if (ctx.errorCode !== undefined) attributes['error.type'] = ctx.errorCode;
    else if (status >= 500) attributes['error.type'] = String(status);
    span.setAttributes(attributes);
    if (ctx.route && !ctx.route.fallback) span.updateName(`${ctx.request.method} ${ctx.request.path}`);
    if (status >= 500 || ctx.outcome === 'upstream_error') span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  }
}

export interface OtelTracerOptions {
  onExportError(error: Error | undefined): void;
  scheduledDelayMs?: number;
}

export function createOtelRequestTracer(
  settings: TelemetrySettings,
  options: OtelTracerOptions,
): RequestTracer {
  const handle = startTracing(settings, options);
  return {
    start(ctx) {
      const headers = ctx.clientHeaders;
      const parent =
        headers.traceparent === undefined
          ? ROOT_CONTEXT
          : handle.propagator.extract(ROOT_CONTEXT, headers, HEADER_GETTER);
      const host = headers.host ?? '';
      const colon = host.lastIndexOf(':');
      const attributes: Attributes = {
        'http.request.method': ctx.request.method,
        'url.path': ctx.request.path,
        'url.scheme': ctx.secure ? 'https' : 'http',
        'client.address': ctx.remoteAddress,
      };
      if (host) {
        const bracketed = host.endsWith(']');
        attributes['server.address'] = colon > 0 && !bracketed ? host.slice(0, colon) : host;
        if (colon > 0 && !bracketed) attributes['server.port'] = Number(host.slice(colon + 1));
      }
      const span = handle.tracer.startSpan(
        ctx.request.method,
        { kind: SpanKind.SERVER, attributes, startTime: ctx.receivedAt },
        parent,
      );
      return new OtelRequestTrace(handle, span);
    },
    shutdown: () => handle.shutdown(),
  };
}
