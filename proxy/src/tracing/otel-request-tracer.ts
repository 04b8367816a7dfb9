/**
 * The RequestTracer behind `telemetry:`: one SERVER span per request (continuing an incoming
 * W3C traceparent), a child span per traced stage (rate-limit admission) and one CLIENT span
 * per upstream call, each call sent with its own traceparent. Attributes follow the HTTP and
 * GenAI semantic conventions plus `lanekeeper.*`; prompts and completions are never
 * recorded: every value below is a count, a name, an id or a status.
 *
 * Spans are not SDK objects: each is written as OTLP protobuf bytes (otlp-proto.ts, the
 * default) or OTLP/JSON text (otlp-json.ts) when it ends, and sent in batches by the official
 * OTLP/HTTP transport (span-batch.ts). Issue 18 asks
 * for tracing under 10 µs a request; the SDK's span objects alone cost ~30 µs for a
 * request's three spans, before its exporter serialised them again (docs/observability.md).
 * Sampling and traceparent parsing are the official ones (ParentBased(TraceIdRatio)).
 *
 * Imported dynamically by start.ts only when tracing is on.
 */
import { parseTraceParent } from '@opentelemetry/core';
import { TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import { ROOT_CONTEXT, SamplingDecision } from '@opentelemetry/api';
import { tracesUrl, type TelemetrySettings } from '@lanekeeper/contract';
import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { RequestContext } from '../context.js';
import type { Upstream } from '../runtime.js';
import { otlpJson } from './otlp-json.js';
import { otlpProto } from './otlp-proto.js';
import {
  KIND_CLIENT,
  KIND_INTERNAL,
  KIND_SERVER,
  STATUS_ERROR,
  STATUS_UNSET,
  type AttributeKey,
  type SpanFields,
  type SpanFormat,
} from './span-format.js';
import type { RequestTrace, RequestTracer, StageSpan } from './request-trace.js';
import { createSpanBatch, type SpanBatch } from './span-batch.js';

/** Every attribute key the spans carry. */
const KEY_NAMES = [
  'gen_ai.operation.name',
  'gen_ai.provider.name',
  'gen_ai.request.model',
  'gen_ai.response.model',
  'gen_ai.usage.input_tokens',
  'gen_ai.usage.output_tokens',
  'gen_ai.request.max_tokens',
  'server.address',
  'server.port',
  'lanekeeper.admitted',
  'lanekeeper.refused_status',
  'http.request.method',
  'url.full',
  'lanekeeper.upstream',
  'http.request.resend_count',
  'http.response.status_code',
  'error.type',
  'lanekeeper.request_id',
  'lanekeeper.tenant',
  'lanekeeper.plan',
  'lanekeeper.model_requested',
  'lanekeeper.cost_usd',
  'lanekeeper.usage.provenance',
  'lanekeeper.outcome',
  'lanekeeper.stream',
  'url.path',
  'url.scheme',
  'client.address',
] as const;

type KeyName = (typeof KEY_NAMES)[number];

/**
 * One wire format, with every attribute key encoded in it once, at start. Call sites read
 * `keys` by constant name: a lookup by a name passed in would be one shared, megamorphic
 * keyed load for all ~40 attributes of a request.
 */
interface Writer {
  readonly format: SpanFormat;
  readonly keys: Record<KeyName, AttributeKey>;
  /** server.address and server.port of an upstream, worked out once per upstream. */
  readonly upstreamAddresses: WeakMap<Upstream, string>;
}

function writerFor(format: SpanFormat): Writer {
  const keys = {} as Record<KeyName, AttributeKey>;
  for (const name of KEY_NAMES) keys[name] = format.key(name);
  return { format, keys, upstreamAddresses: new WeakMap() };
}

/** The wire formats by OTLP protocol name (OTEL_EXPORTER_OTLP_PROTOCOL). */
const FORMATS: Record<TelemetrySettings['protocol'], SpanFormat> = {
  'http/protobuf': otlpProto,
  'http/json': otlpJson,
};

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

/** Random ids from a CSPRNG, drawn from a pool so an id is a slice, not a system call. */
const pool = Buffer.allocUnsafe(4_096);
let poolOffset = pool.length;

function randomHex(bytes: 8 | 16): string {
  if (poolOffset + bytes > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  // All zeros is the one invalid id (W3C trace context).
  return /^0+$/.test(hex) ? randomHex(bytes) : hex;
}

function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

function operationOf(ctx: RequestContext): string | undefined {
  const endpoint = ctx.upstreamRoute?.endpoint ?? ctx.route?.endpoint;
  return endpoint === undefined ? undefined : OPERATIONS[endpoint];
}

function providerOf(ctx: RequestContext): string | undefined {
  const name = ctx.upstreamDialect?.name ?? ctx.upstream?.dialect?.name ?? ctx.dialect?.name;
  return name === undefined ? undefined : (PROVIDERS[name] ?? name);
}

/** The outcome of one request's GenAI exchange, shared by the request span and the last call's span. */
function genAiAttributes(writer: Writer, ctx: RequestContext): string {
  let out = '';
  const operation = operationOf(ctx);
  if (operation) out += writer.format.attribute(writer.keys['gen_ai.operation.name'], operation);
  const provider = providerOf(ctx);
  if (provider) out += writer.format.attribute(writer.keys['gen_ai.provider.name'], provider);
  if (ctx.model !== undefined) out += writer.format.attribute(writer.keys['gen_ai.request.model'], ctx.model);
  if (ctx.upstreamModel !== undefined)
    out += writer.format.attribute(writer.keys['gen_ai.response.model'], ctx.upstreamModel);
  if (ctx.usage.input !== undefined)
    out += writer.format.attribute(writer.keys['gen_ai.usage.input_tokens'], ctx.usage.input);
  if (ctx.usage.output !== undefined)
    out += writer.format.attribute(writer.keys['gen_ai.usage.output_tokens'], ctx.usage.output);
  if (ctx.maxOutputTokens !== undefined)
    out += writer.format.attribute(writer.keys['gen_ai.request.max_tokens'], ctx.maxOutputTokens);
  return out;
}

function upstreamAddress(writer: Writer, upstream: Upstream): string {
  let encoded = writer.upstreamAddresses.get(upstream);
  if (encoded === undefined) {
    const url = new URL(upstream.origin);
    encoded =
      writer.format.attribute(writer.keys['server.address'], url.hostname) +
      writer.format.attribute(
        writer.keys['server.port'],
        Number(url.port) || (url.protocol === 'https:' ? 443 : 80),
      );
    writer.upstreamAddresses.set(upstream, encoded);
  }
  return encoded;
}

interface Attempt {
  spanId: string;
  name: string;
  startMs: number;
  endMs: number | undefined;
  attributes: string;
  status: number;
  statusMessage: string | undefined;
}

interface OpenStage {
  spanId: string;
  name: string;
  startMs: number;
}

const NO_STAGE: StageSpan = { end: () => undefined };

/** A request that is not sampled: no spans, yet its trace id still goes upstream, unsampled. */
class UnsampledTrace implements RequestTrace {
  readonly traceId = undefined;
  constructor(private readonly trace: string) {}
  stage(): StageSpan {
    return NO_STAGE;
  }
  attemptStart(): string {
    return `00-${this.trace}-${randomHex(8)}-00`;
  }
  attemptStatus(): void {}
  attemptEnd(): void {}
  end(): void {}
}

class SampledTrace implements RequestTrace {
  /** This span's and the trace's ids as the format writes them. */
  private readonly spanId: string;
  private readonly traceIdBytes: string;
  /** Spans already ended (child spans), each led by the format's separator. */
  private done = '';
  private count = 0;
  private attempt: Attempt | undefined;
  private attempts = 0;
  private readonly open: OpenStage[] = [];
  private ended = false;

  constructor(
    private readonly writer: Writer,
    private readonly batch: SpanBatch,
    readonly traceId: string,
    /** Hex, empty for a root span. */
    private readonly parentSpanId: string,
    private readonly startMs: number,
    private readonly serverAttributes: string,
  ) {
    this.spanId = writer.format.id(randomHex(8));
    this.traceIdBytes = writer.format.id(traceId);
  }

  private span(fields: SpanFields): string {
    return this.writer.format.span(fields);
  }

  private add(span: string): void {
    this.done += this.writer.format.separator + span;
    this.count++;
  }

  private child(
    spanId: string,
    name: string,
    kind: number,
    startMs: number,
    endMs: number,
    attributes: string,
    status = STATUS_UNSET,
    statusMessage?: string,
  ): string {
    return this.span({
      traceId: this.traceIdBytes,
      spanId: this.writer.format.id(spanId),
      parentSpanId: this.spanId,
      remoteParent: false,
      name,
      kind,
      startMs,
      endMs,
      attributes,
      status,
      statusMessage,
    });
  }

  stage(name: string): StageSpan {
    const open: OpenStage = { spanId: randomHex(8), name, startMs: epochMs() };
    this.open.push(open);
    return {
      end: (refused) => {
        const at = this.open.indexOf(open);
        if (at < 0 || this.ended) return;
        this.open.splice(at, 1);
        const attributes =
          refused === undefined
            ? this.writer.format.firstAttribute(this.writer.keys['lanekeeper.admitted'], true)
            : this.writer.format.firstAttribute(this.writer.keys['lanekeeper.admitted'], false) +
              this.writer.format.attribute(this.writer.keys['lanekeeper.refused_status'], refused);
        this.add(this.child(open.spanId, name, KIND_INTERNAL, open.startMs, epochMs(), attributes));
      },
    };
  }

  attemptStart(upstream: Upstream, method: string, path: string, ctx: RequestContext): string {
    this.closeAttempt('');
    const operation = operationOf(ctx);
    const query = path.indexOf('?');
    let attributes =
      this.writer.format.firstAttribute(this.writer.keys['http.request.method'], method) +
      genAiAttributes(this.writer, ctx) +
      upstreamAddress(this.writer, upstream) +
      // The path without the query: a query may carry a provider key.
      this.writer.format.attribute(
        this.writer.keys['url.full'],
        upstream.origin + (query < 0 ? path : path.slice(0, query)),
      ) +
      this.writer.format.attribute(this.writer.keys['lanekeeper.upstream'], upstream.name);
    if (this.attempts > 0)
      attributes += this.writer.format.attribute(
        this.writer.keys['http.request.resend_count'],
        this.attempts,
      );
    this.attempts++;
    const spanId = randomHex(8);
    this.attempt = {
      spanId,
      name: operation ? `${operation} ${ctx.model ?? ''}`.trim() : method,
      startMs: epochMs(),
      endMs: undefined,
      attributes,
      status: STATUS_UNSET,
      statusMessage: undefined,
    };
    return `00-${this.traceId}-${spanId}-01`;
  }

  attemptStatus(status: number): void {
    const attempt = this.attempt;
    if (!attempt) return;
    attempt.attributes += this.writer.format.attribute(this.writer.keys['http.response.status_code'], status);
    if (status >= 400)
      attempt.attributes += this.writer.format.attribute(this.writer.keys['error.type'], String(status));
    if (status >= 500 || status === 429) attempt.status = STATUS_ERROR;
  }

  attemptEnd(error: string | undefined): void {
    const attempt = this.attempt;
    if (!attempt || attempt.endMs !== undefined) return;
    if (error !== undefined) {
      attempt.attributes += this.writer.format.attribute(this.writer.keys['error.type'], error);
      attempt.status = STATUS_ERROR;
      attempt.statusMessage = error;
      attempt.endMs = epochMs();
      this.closeAttempt('');
      return;
    }
    // The last call's usage is known only once the response-end hooks ran: its span is
    // written then, with the time it really ended.
    attempt.endMs = epochMs();
  }

  /** Writes the current call's span, given up for a retry or fallback, or over. */
  private closeAttempt(extra: string): void {
    const attempt = this.attempt;
    if (!attempt) return;
    this.attempt = undefined;
    this.add(
      this.child(
        attempt.spanId,
        attempt.name,
        KIND_CLIENT,
        attempt.startMs,
        attempt.endMs ?? epochMs(),
        attempt.attributes + extra,
        attempt.status,
        attempt.statusMessage,
      ),
    );
  }

  end(ctx: RequestContext): void {
    if (this.ended) return;
    const now = epochMs();
    const genAi = genAiAttributes(this.writer, ctx);
    this.closeAttempt(genAi);
    for (const open of this.open)
      this.add(this.child(open.spanId, open.name, KIND_INTERNAL, open.startMs, now, ''));
    this.ended = true;
    const status = ctx.status ?? 0;
    let attributes =
      this.serverAttributes +
      genAi +
      this.writer.format.attribute(this.writer.keys['http.response.status_code'], status) +
      this.writer.format.attribute(this.writer.keys['lanekeeper.request_id'], ctx.id);
    if (ctx.tenant)
      attributes +=
        this.writer.format.attribute(this.writer.keys['lanekeeper.tenant'], ctx.tenant.id) +
        this.writer.format.attribute(this.writer.keys['lanekeeper.plan'], ctx.tenant.planName);
    if (ctx.modelRequested !== undefined)
      attributes += this.writer.format.attribute(
        this.writer.keys['lanekeeper.model_requested'],
        ctx.modelRequested,
      );
    if (ctx.costUsd !== undefined)
      attributes += this.writer.format.attribute(this.writer.keys['lanekeeper.cost_usd'], ctx.costUsd);
    if (ctx.provenance !== undefined)
      attributes += this.writer.format.attribute(
        this.writer.keys['lanekeeper.usage.provenance'],
        ctx.provenance,
      );
    if (ctx.outcome !== undefined)
      attributes += this.writer.format.attribute(this.writer.keys['lanekeeper.outcome'], ctx.outcome);
    if (ctx.upstream)
      attributes += this.writer.format.attribute(this.writer.keys['lanekeeper.upstream'], ctx.upstream.name);
    attributes += this.writer.format.attribute(this.writer.keys['lanekeeper.stream'], ctx.stream);
    if (ctx.errorCode !== undefined)
      attributes += this.writer.format.attribute(this.writer.keys['error.type'], ctx.errorCode);
    else if (status >= 500)
      attributes += this.writer.format.attribute(this.writer.keys['error.type'], String(status));
    const method = ctx.request.method;
    const server = this.span({
      traceId: this.traceIdBytes,
      spanId: this.spanId,
      parentSpanId: this.parentSpanId === '' ? '' : this.writer.format.id(this.parentSpanId),
      remoteParent: this.parentSpanId !== '',
      name: ctx.route && !ctx.route.fallback ? `${method} ${ctx.request.path}` : method,
      kind: KIND_SERVER,
      startMs: this.startMs,
      endMs: now,
      attributes,
      status: status >= 500 || ctx.outcome === 'upstream_error' ? STATUS_ERROR : STATUS_UNSET,
    });
    this.batch.push(server + this.done, this.count + 1);
  }
}

/** The request's own attributes, known at arrival. */
function serverAttributes(writer: Writer, ctx: RequestContext): string {
  const host = ctx.clientHeaders.host ?? '';
  let out =
    writer.format.firstAttribute(writer.keys['http.request.method'], ctx.request.method) +
    writer.format.attribute(writer.keys['url.path'], ctx.request.path) +
    writer.format.attribute(writer.keys['url.scheme'], ctx.secure ? 'https' : 'http') +
    writer.format.attribute(writer.keys['client.address'], ctx.remoteAddress);
  if (host) {
    const colon = host.lastIndexOf(':');
    const bracketed = host.endsWith(']');
    if (colon > 0 && !bracketed)
      out +=
        writer.format.attribute(writer.keys['server.address'], host.slice(0, colon)) +
        writer.format.attribute(writer.keys['server.port'], Number(host.slice(colon + 1)));
    else out += writer.format.attribute(writer.keys['server.address'], host);
  }
  return out;
}

export interface OtelTracerOptions {
  /** Told the outcome of every export (an Error when it failed). */
  onExportResult(error: Error | undefined): void;
  scheduledDelayMs?: number;
}

export function createOtelRequestTracer(
  settings: TelemetrySettings,
  options: OtelTracerOptions,
): RequestTracer {
  const format = FORMATS[settings.protocol];
  const writer = writerFor(format);
  const batch = createSpanBatch({
    url: tracesUrl(settings.endpoint),
    serviceName: settings.serviceName,
    format,
    onExportResult: options.onExportResult,
    scheduledDelayMs: options.scheduledDelayMs,
  });
  const ratio = settings.sampleRatio;
  const sampler = new TraceIdRatioBasedSampler(ratio);
  const sampledRoot = (traceId: string) =>
    ratio >= 1 ||
    (ratio > 0 &&
      sampler.shouldSample(ROOT_CONTEXT, traceId).decision === SamplingDecision.RECORD_AND_SAMPLED);
  return {
    start(ctx) {
      const incoming = ctx.clientHeaders.traceparent;
      const parent = typeof incoming === 'string' ? parseTraceParent(incoming) : null;
      const traceId = parent ? parent.traceId : randomHex(16);
      // ParentBased: a caller's decision stands; a new trace is sampled at the ratio.
      const sampled = parent ? (parent.traceFlags & 1) === 1 : sampledRoot(traceId);
      if (!sampled) return new UnsampledTrace(traceId);
      return new SampledTrace(
        writer,
        batch,
        traceId,
        parent ? parent.spanId : '',
        performance.timeOrigin + ctx.startedAt,
        serverAttributes(writer, ctx),
      );
    },
    shutdown: () => batch.shutdown(),
  };
}
