/**
 * The RequestTracer behind `telemetry:`: one SERVER span per request (continuing an incoming
 * W3C traceparent), a child span per traced stage (rate-limit admission) and one CLIENT span
 * per upstream call, each call sent with its own traceparent. Attributes follow the HTTP and
 * GenAI semantic conventions plus `lanekeeper.*`; prompts and completions are never
 * recorded: every value below is a count, a name, an id or a status.
 *
 * Spans are not SDK objects: a request keeps the few values its spans need, and once it has
 * ended its spans are written, a few dozen requests at a time, field by field, straight into
 * the export body, as OTLP protobuf (otlp-proto.ts, the default) or OTLP/JSON
 * (otlp-json.ts), which the official OTLP/HTTP transport sends in batches (span-batch.ts). Issue 18 asks for tracing under 10 µs a
 * request; the SDK's span objects alone cost ~30 µs for a request's three spans, before its
 * exporter serialised them again (docs/observability.md).
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
  type SpanFormat,
  type SpanWriter,
} from './span-format.js';
import type { RequestTrace, RequestTracer, StageSpan } from './request-trace.js';
import { createSpanBatch } from './span-batch.js';

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
/** The char codes of the hex digits. */
const DIGITS = Array.from('0123456789abcdef', (digit) => digit.charCodeAt(0));
/** Scratch char codes for an 8-byte and a 16-byte id. */
const CODES = { 8: new Array<number>(16).fill(0), 16: new Array<number>(32).fill(0) };

function randomHex(bytes: 8 | 16): string {
  if (poolOffset + bytes > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  // Hex digits in JS and one flat string: Buffer's toString('hex') is a call into C++
  // (~0.2 µs) for each of a request's four ids.
  const codes = CODES[bytes];
  let any = 0;
  for (let i = 0; i < bytes; i++) {
    const byte = pool[poolOffset + i]!;
    any |= byte;
    codes[2 * i] = DIGITS[byte >>> 4]!;
    codes[2 * i + 1] = DIGITS[byte & 15]!;
  }
  poolOffset += bytes;
  // All zeros is the one invalid id (W3C trace context).
  if (any === 0) return randomHex(bytes);
  return String.fromCharCode.apply(null, codes);
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

/** What a request's GenAI exchange is known to be at one moment (an upstream call's start, or the end). */
interface GenAi {
  operation: string | undefined;
  provider: string | undefined;
  requestModel: string | undefined;
  responseModel: string | undefined;
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  maxTokens: number | undefined;
}

function genAiOf(ctx: RequestContext): GenAi {
  return {
    operation: operationOf(ctx),
    provider: providerOf(ctx),
    requestModel: ctx.model,
    responseModel: ctx.upstreamModel,
    inputTokens: ctx.usage.input,
    outputTokens: ctx.usage.output,
    maxTokens: ctx.maxOutputTokens,
  };
}

/** Ended requests queued before their spans are written, and how long the first may wait. */
const PENDING_MAX = 64;
const PENDING_MS = 20;

/** server.address and server.port of an upstream. */
interface Address {
  host: string;
  port: number;
}

/** The format's writer and keys, shared by every request of one tracer. */
class Spans {
  readonly keys = {} as Record<KeyName, AttributeKey>;
  private readonly addresses = new WeakMap<Upstream, Address>();
  /** Requests over, their spans not written yet. */
  private readonly pending: SampledTrace[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    format: SpanFormat,
    readonly writer: SpanWriter,
  ) {
    for (const name of KEY_NAMES)
      this.keys[name] = format.key(name, { unique: name === 'lanekeeper.request_id' });
  }

  genAi(g: GenAi): void {
    const w = this.writer;
    const k = this.keys;
    if (g.operation) w.string(k['gen_ai.operation.name'], g.operation);
    if (g.provider) w.string(k['gen_ai.provider.name'], g.provider);
    if (g.requestModel !== undefined) w.string(k['gen_ai.request.model'], g.requestModel);
    if (g.responseModel !== undefined) w.string(k['gen_ai.response.model'], g.responseModel);
    if (g.inputTokens !== undefined) w.number(k['gen_ai.usage.input_tokens'], g.inputTokens);
    if (g.outputTokens !== undefined) w.number(k['gen_ai.usage.output_tokens'], g.outputTokens);
    if (g.maxTokens !== undefined) w.number(k['gen_ai.request.max_tokens'], g.maxTokens);
  }

  /**
   * Queues an ended request's spans. They are written a few dozen requests at a time: in
   * one pass the writer's code and the key tables stay in the caches, where written as
   * each request ends, between everything else a request does, the same code ran several
   * times slower (docs/observability.md).
   */
  add(trace: SampledTrace): void {
    this.pending.push(trace);
    if (this.pending.length >= PENDING_MAX) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), PENDING_MS).unref();
  }

  /** Writes every queued request's spans into the body. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const pending = this.pending;
    for (let i = 0; i < pending.length; i++) {
      try {
        pending[i]!.write();
      } catch {
        // A span cut short is taken out of the body; tracing never takes the proxy down.
        this.writer.abort();
      }
    }
    pending.length = 0;
  }

  address(upstream: Upstream): Address {
    let address = this.addresses.get(upstream);
    if (address === undefined) {
      const url = new URL(upstream.origin);
      address = { host: url.hostname, port: Number(url.port) || (url.protocol === 'https:' ? 443 : 80) };
      this.addresses.set(upstream, address);
    }
    return address;
  }
}

interface Attempt {
  spanId: string;
  name: string;
  startMs: number;
  endMs: number | undefined;
  method: string;
  upstream: Upstream;
  /** url.full: the origin and the path without its query (a query may carry a provider key). */
  url: string;
  /** The call's number on this request, from 0: http.request.resend_count after the first. */
  resend: number;
  /** What was known at the call's start, for a call given up; the last call writes the request's outcome. */
  genAi: GenAi;
  statusCode: number;
  errorType: string | undefined;
  status: number;
  statusMessage: string | undefined;
  /** The request's outcome, for the last call (written with the request's end). */
  outcome: GenAi | undefined;
}

interface OpenStage {
  spanId: string;
  name: string;
  startMs: number;
  /** Set when it ended; still undefined when the request ended first. */
  endMs: number | undefined;
  refused: number | undefined;
}

/** What the request span says, read from the context when the request ended. */
interface Final {
  endMs: number;
  name: string;
  method: string;
  path: string;
  secure: boolean;
  remoteAddress: string;
  host: string;
  genAi: GenAi;
  status: number;
  requestId: string;
  tenant: string | undefined;
  plan: string | undefined;
  modelRequested: string | undefined;
  costUsd: number | undefined;
  provenance: string | undefined;
  outcome: string | undefined;
  upstream: string | undefined;
  stream: boolean;
  errorCode: string | undefined;
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
  private readonly spanId = randomHex(8);
  private attempt: Attempt | undefined;
  private attempts = 0;
  /** Every stage span, ended or not, and every call span ended, in order. */
  private readonly stages: OpenStage[] = [];
  private readonly calls: Attempt[] = [];
  private final: Final | undefined;

  constructor(
    private readonly spans: Spans,
    readonly traceId: string,
    /** Hex, empty for a root span. */
    private readonly parentSpanId: string,
    private readonly startMs: number,
  ) {}

  stage(name: string): StageSpan {
    const open: OpenStage = {
      spanId: randomHex(8),
      name,
      startMs: epochMs(),
      endMs: undefined,
      refused: undefined,
    };
    this.stages.push(open);
    return {
      end: (refused) => {
        if (open.endMs !== undefined || this.final) return;
        open.endMs = epochMs();
        open.refused = refused;
      },
    };
  }

  attemptStart(upstream: Upstream, method: string, path: string, ctx: RequestContext): string {
    this.closeAttempt(undefined);
    const genAi = genAiOf(ctx);
    const query = path.indexOf('?');
    const spanId = randomHex(8);
    this.attempt = {
      spanId,
      name: genAi.operation ? `${genAi.operation} ${ctx.model ?? ''}`.trim() : method,
      startMs: epochMs(),
      endMs: undefined,
      method,
      upstream,
      url: upstream.origin + (query < 0 ? path : path.slice(0, query)),
      resend: this.attempts++,
      genAi,
      statusCode: 0,
      errorType: undefined,
      status: STATUS_UNSET,
      statusMessage: undefined,
      outcome: undefined,
    };
    return `00-${this.traceId}-${spanId}-01`;
  }

  attemptStatus(status: number): void {
    const attempt = this.attempt;
    if (!attempt) return;
    attempt.statusCode = status;
    if (status >= 400) attempt.errorType = String(status);
    if (status >= 500 || status === 429) attempt.status = STATUS_ERROR;
  }

  attemptEnd(error: string | undefined): void {
    const attempt = this.attempt;
    if (!attempt || attempt.endMs !== undefined) return;
    attempt.endMs = epochMs();
    if (error !== undefined) {
      attempt.errorType = error;
      attempt.status = STATUS_ERROR;
      attempt.statusMessage = error;
      this.closeAttempt(undefined);
    }
    // Otherwise the last call's usage is known only once the response-end hooks ran: its
    // span takes the request's outcome then, with the time it really ended.
  }

  /** The current call is over: given up for a retry or fallback, failed, or the last one (`outcome`). */
  private closeAttempt(outcome: GenAi | undefined): void {
    const attempt = this.attempt;
    if (!attempt) return;
    this.attempt = undefined;
    attempt.endMs ??= epochMs();
    attempt.outcome = outcome;
    this.calls.push(attempt);
  }

  end(ctx: RequestContext): void {
    if (this.final) return;
    const endMs = epochMs();
    const genAi = genAiOf(ctx);
    this.closeAttempt(genAi);
    const method = ctx.request.method;
    // The context is read now: its hooks may still be running when the spans are written.
    this.final = {
      endMs,
      name: ctx.route && !ctx.route.fallback ? `${method} ${ctx.request.path}` : method,
      method,
      path: ctx.request.path,
      secure: ctx.secure,
      remoteAddress: ctx.remoteAddress,
      host: ctx.clientHeaders.host ?? '',
      genAi,
      status: ctx.status ?? 0,
      requestId: ctx.id,
      tenant: ctx.tenant?.id,
      plan: ctx.tenant?.planName,
      modelRequested: ctx.modelRequested,
      costUsd: ctx.costUsd,
      provenance: ctx.provenance,
      outcome: ctx.outcome,
      upstream: ctx.upstream?.name,
      stream: ctx.stream,
      errorCode: ctx.errorCode,
    };
    this.spans.add(this);
  }

  /** Writes the request's spans into the body: its stages, its calls, then itself. */
  write(): void {
    const f = this.final!;
    const { writer: w, keys: k } = this.spans;
    for (const stage of this.stages) {
      w.begin(
        this.traceId,
        stage.spanId,
        this.spanId,
        false,
        stage.name,
        KIND_INTERNAL,
        stage.startMs,
        stage.endMs ?? f.endMs,
      );
      // A stage still open when the request ended says nothing of admission.
      if (stage.endMs !== undefined) {
        w.boolean(k['lanekeeper.admitted'], stage.refused === undefined);
        if (stage.refused !== undefined) w.int(k['lanekeeper.refused_status'], stage.refused);
      }
      w.end(STATUS_UNSET, undefined);
    }
    for (const call of this.calls) {
      w.begin(
        this.traceId,
        call.spanId,
        this.spanId,
        false,
        call.name,
        KIND_CLIENT,
        call.startMs,
        call.endMs!,
      );
      w.string(k['http.request.method'], call.method);
      this.spans.genAi(call.outcome ?? call.genAi);
      const address = this.spans.address(call.upstream);
      w.string(k['server.address'], address.host);
      w.int(k['server.port'], address.port);
      w.string(k['url.full'], call.url);
      w.string(k['lanekeeper.upstream'], call.upstream.name);
      if (call.resend > 0) w.int(k['http.request.resend_count'], call.resend);
      if (call.statusCode !== 0) w.int(k['http.response.status_code'], call.statusCode);
      if (call.errorType !== undefined) w.string(k['error.type'], call.errorType);
      w.end(call.status, call.statusMessage);
    }
    const status = f.status;
    w.begin(
      this.traceId,
      this.spanId,
      this.parentSpanId,
      this.parentSpanId !== '',
      f.name,
      KIND_SERVER,
      this.startMs,
      f.endMs,
    );
    w.string(k['http.request.method'], f.method);
    w.string(k['url.path'], f.path);
    w.string(k['url.scheme'], f.secure ? 'https' : 'http');
    w.string(k['client.address'], f.remoteAddress);
    const host = f.host;
    if (host) {
      const colon = host.lastIndexOf(':');
      if (colon > 0 && !host.endsWith(']')) {
        w.string(k['server.address'], host.slice(0, colon));
        w.number(k['server.port'], Number(host.slice(colon + 1)));
      } else w.string(k['server.address'], host);
    }
    this.spans.genAi(f.genAi);
    w.int(k['http.response.status_code'], status);
    w.string(k['lanekeeper.request_id'], f.requestId);
    if (f.tenant !== undefined) w.string(k['lanekeeper.tenant'], f.tenant);
    if (f.plan !== undefined) w.string(k['lanekeeper.plan'], f.plan);
    if (f.modelRequested !== undefined) w.string(k['lanekeeper.model_requested'], f.modelRequested);
    if (f.costUsd !== undefined) w.number(k['lanekeeper.cost_usd'], f.costUsd);
    if (f.provenance !== undefined) w.string(k['lanekeeper.usage.provenance'], f.provenance);
    if (f.outcome !== undefined) w.string(k['lanekeeper.outcome'], f.outcome);
    if (f.upstream !== undefined) w.string(k['lanekeeper.upstream'], f.upstream);
    w.boolean(k['lanekeeper.stream'], f.stream);
    if (f.errorCode !== undefined) w.string(k['error.type'], f.errorCode);
    else if (status >= 500) w.string(k['error.type'], String(status));
    w.end(status >= 500 || f.outcome === 'upstream_error' ? STATUS_ERROR : STATUS_UNSET, undefined);
  }
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
  // Queued requests are written before any body is sent (spans is set just below).
  const beforeSend = () => spans.flush();
  const batch = createSpanBatch({
    beforeSend,
    url: tracesUrl(settings.endpoint),
    serviceName: settings.serviceName,
    format,
    onExportResult: options.onExportResult,
    scheduledDelayMs: options.scheduledDelayMs,
  });
  const spans = new Spans(format, batch.writer);
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
        spans,
        traceId,
        parent ? parent.spanId : '',
        performance.timeOrigin + ctx.startedAt,
      );
    },
    shutdown: () => batch.shutdown(),
  };
}
