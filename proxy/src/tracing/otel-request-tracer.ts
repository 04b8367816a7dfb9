/**
 * The RequestTracer behind `telemetry:`: one SERVER span per request (continuing an incoming
 * W3C traceparent), a child span per traced stage (rate-limit admission) and one CLIENT span
 * per upstream call, each call sent with its own traceparent. Attributes follow the HTTP and
 * GenAI semantic conventions plus `lanekeeper.*`; prompts and completions are never
 * recorded: every value below is a count, a name, an id or a status.
 *
 * Spans are not SDK objects: a request keeps the few values its spans need, and once it has
 * ended its spans are written, up to a hundred requests at a time, straight into the export
 * body, as OTLP protobuf (otlp-proto.ts, the default) or OTLP/JSON (otlp-json.ts), which the
 * official OTLP/HTTP transport sends in batches (span-batch.ts). The attributes that repeat
 * from request to request are copied as runs already written (RunCache). Issue 18 asks for
 * tracing under 10 µs a request; the SDK's span objects alone cost ~30 µs for a request's
 * three spans, before its exporter serialised them again (docs/observability.md).
 * Sampling and traceparent parsing are the official ones (ParentBased(TraceIdRatio)).
 *
 * Imported dynamically by start.ts only when tracing is on.
 */
import { parseTraceParent } from '@opentelemetry/core';
import { TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import { ROOT_CONTEXT, SamplingDecision } from '@opentelemetry/api';
import type { TelemetrySettings } from '@lanekeeper/contract';
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
  type AttributeRun,
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

/** performance.timeOrigin is a getter into C++: read once. */
const TIME_ORIGIN = performance.timeOrigin;

function epochMs(): number {
  return TIME_ORIGIN + performance.now();
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

/** How a run's value is written: as a string, an int, a number (int or double) or a boolean. */
const STRING = 0;
const INT = 1;
const NUMBER = 2;
const BOOLEAN = 3;
type Kind = typeof STRING | typeof INT | typeof NUMBER | typeof BOOLEAN;

/** The attributes of a run, in order: each value of a run is written with its key and kind. */
type RunSpec = readonly (readonly [KeyName, Kind])[];

/** A run's values, by position in its spec; undefined is left out. */
type RunValues = (string | number | boolean | undefined)[];

/** The request span's attributes that repeat from request to request (the rest are written each time). */
const REQUEST_RUN: RunSpec = [
  ['http.request.method', STRING],
  ['url.path', STRING],
  ['url.scheme', STRING],
  ['client.address', STRING],
  ['server.address', STRING],
  ['server.port', NUMBER],
  ['gen_ai.operation.name', STRING],
  ['gen_ai.provider.name', STRING],
  ['gen_ai.request.model', STRING],
  ['gen_ai.response.model', STRING],
  ['gen_ai.request.max_tokens', NUMBER],
  ['http.response.status_code', INT],
  ['lanekeeper.tenant', STRING],
  ['lanekeeper.plan', STRING],
  ['lanekeeper.model_requested', STRING],
  ['lanekeeper.usage.provenance', STRING],
  ['lanekeeper.outcome', STRING],
  ['lanekeeper.upstream', STRING],
  ['lanekeeper.stream', BOOLEAN],
  ['error.type', STRING],
];

/** An upstream call span's attributes that repeat from call to call. */
const CALL_RUN: RunSpec = [
  ['http.request.method', STRING],
  ['gen_ai.operation.name', STRING],
  ['gen_ai.provider.name', STRING],
  ['gen_ai.request.model', STRING],
  ['gen_ai.response.model', STRING],
  ['gen_ai.request.max_tokens', NUMBER],
  ['server.address', STRING],
  ['server.port', INT],
  ['url.full', STRING],
  ['lanekeeper.upstream', STRING],
  ['http.request.resend_count', INT],
  ['http.response.status_code', INT],
  ['error.type', STRING],
  ['lanekeeper.tenant', STRING],
];

/** Runs kept per cache key (a tenant), and keys kept before the cache starts over. */
const RUNS_PER_KEY = 4;
const RUN_KEYS = 1_024;

interface KeptRun {
  values: RunValues;
  run: AttributeRun;
}

/**
 * Runs of attributes already written, by the values they were written from. Most of a
 * request's attributes (its tenant, path, models, upstream, status) repeat request after
 * request; copying their bytes in one go, rather than writing twenty attributes one by one,
 * cut about 5 µs a request side by side (docs/observability.md). A run is only reused
 * for values equal, one by one, to those it was written from: what a span says is always
 * its own request's, whatever the cache holds. Bounded: a few runs per key, a thousand keys,
 * then it starts over; a run with long values is not kept (the writer's RUN_MAX).
 */
class RunCache {
  private readonly byKey = new Map<string, KeptRun[]>();
  private readonly keys: AttributeKey[];

  constructor(
    private readonly spec: RunSpec,
    keys: Record<KeyName, AttributeKey>,
  ) {
    this.keys = spec.map(([name]) => keys[name]);
  }

  write(w: SpanWriter, cacheKey: string, values: RunValues): void {
    let kept = this.byKey.get(cacheKey);
    if (kept !== undefined) {
      for (let i = 0; i < kept.length; i++) {
        const candidate = kept[i]!;
        if (sameValues(candidate.values, values)) {
          w.copy(candidate.run);
          return;
        }
      }
    }
    w.mark();
    const { spec, keys } = this;
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      if (value === undefined) continue;
      const key = keys[i]!;
      switch (spec[i]![1]) {
        case STRING:
          w.string(key, value as string);
          break;
        case INT:
          w.int(key, value as number);
          break;
        case NUMBER:
          w.number(key, value as number);
          break;
        default:
          w.boolean(key, value as boolean);
      }
    }
    const run = w.capture();
    if (run === undefined) return;
    if (kept === undefined) {
      if (this.byKey.size >= RUN_KEYS) this.byKey.clear();
      kept = [];
      this.byKey.set(cacheKey, kept);
    }
    // The newest first: a key's runs turn over oldest first.
    if (kept.length >= RUNS_PER_KEY) kept.pop();
    kept.unshift({ values, run });
  }
}

function sameValues(a: RunValues, b: RunValues): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Ended requests queued before their spans are written, and how long the first may wait. */
const PENDING_MAX = 128;
const PENDING_MS = 100;

/** server.address and server.port of an upstream. */
interface Address {
  host: string;
  port: number;
}

/** The format's writer and keys, shared by every request of one tracer. */
class Spans {
  /**
   * Built in one go: an object given its 28 keys one by one falls into dictionary mode, and
   * every key read from it was a hash lookup through a generic property load.
   */
  readonly keys: Record<KeyName, AttributeKey>;
  readonly requestRuns: RunCache;
  readonly callRuns: RunCache;
  private readonly addresses = new WeakMap<Upstream, Address>();
  /** Requests over, their spans not written yet. */
  private readonly pending: SampledTrace[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    format: SpanFormat,
    readonly writer: SpanWriter,
    /** How long the first queued request may wait: never longer than the batch's own delay. */
    private readonly pendingMs: number,
  ) {
    this.keys = Object.fromEntries(
      KEY_NAMES.map((name) => [name, format.key(name, { unique: name === 'lanekeeper.request_id' })]),
    ) as Record<KeyName, AttributeKey>;
    this.requestRuns = new RunCache(REQUEST_RUN, this.keys);
    this.callRuns = new RunCache(CALL_RUN, this.keys);
  }

  /** The token counts, which change from request to request. */
  tokens(g: GenAi): void {
    const w = this.writer;
    const k = this.keys;
    if (g.inputTokens !== undefined) w.number(k['gen_ai.usage.input_tokens'], g.inputTokens);
    if (g.outputTokens !== undefined) w.number(k['gen_ai.usage.output_tokens'], g.outputTokens);
  }

  /**
   * Queues an ended request's spans. They are written up to 128 requests at a time (or
   * 100 ms after the first, never later than the batch's own delay): in one pass the
   * writer's code and the key tables stay in the caches, where written as each request
   * ends, between everything else a request does, the same code ran several times slower
   * (docs/observability.md).
   */
  add(trace: SampledTrace): void {
    this.pending.push(trace);
    if (this.pending.length >= PENDING_MAX) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.pendingMs).unref();
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

  /** The last call span name and what it was made of: a new string a span costs more than the check. */
  private lastCall = { operation: '', model: '', name: '' };
  private lastRequest = { method: '', path: '', name: '' };

  /** A call span's name: its operation and the model it asked for (the SDK's span name), or its method. */
  callName(operation: string | undefined, model: string | undefined, method: string): string {
    if (!operation) return method;
    const last = this.lastCall;
    const asked = model ?? '';
    if (operation !== last.operation || asked !== last.model)
      this.lastCall = { operation, model: asked, name: `${operation} ${asked}`.trim() };
    return this.lastCall.name;
  }

  /** A request span's name: a route's is its method and path; anything else only its method (unbounded paths). */
  requestName(named: boolean, method: string, path: string): string {
    if (!named) return method;
    const last = this.lastRequest;
    if (method !== last.method || path !== last.path)
      this.lastRequest = { method, path, name: `${method} ${path}` };
    return this.lastRequest.name;
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
  startMs: number;
  endMs: number | undefined;
  method: string;
  upstream: Upstream;
  /** The path sent, query and all: url.full leaves the query out (it may carry a provider key). */
  path: string;
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

/** A stage's span: open until `end`, which the stage calls once it is done (or the request ends first). */
class OpenStage implements StageSpan {
  readonly startMs = epochMs();
  /** Set when it ended; still undefined when the request ended first. */
  endMs: number | undefined = undefined;
  refused: number | undefined = undefined;

  constructor(
    readonly name: string,
    private readonly trace: SampledTrace,
  ) {}

  end(refused: number | undefined): void {
    if (this.endMs !== undefined || this.trace.ended) return;
    this.endMs = epochMs();
    this.refused = refused;
  }
}

/** What the request span says, read from the context when the request ended. */
interface Final {
  endMs: number;
  /** The request matched a route: its span is named for the path too. */
  named: boolean;
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
  constructor(
    private readonly trace: string,
    readonly continues: boolean,
  ) {}
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

  get ended(): boolean {
    return this.final !== undefined;
  }

  get continues(): boolean {
    return this.parentSpanId !== '';
  }

  stage(name: string): StageSpan {
    const open = new OpenStage(name, this);
    this.stages.push(open);
    return open;
  }

  attemptStart(upstream: Upstream, method: string, path: string, ctx: RequestContext): string {
    this.closeAttempt(undefined);
    const spanId = randomHex(8);
    this.attempt = {
      spanId,
      startMs: epochMs(),
      endMs: undefined,
      method,
      upstream,
      path,
      resend: this.attempts++,
      genAi: genAiOf(ctx),
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
      named: ctx.route !== undefined && !ctx.route.fallback,
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
    // Ids no header carries are drawn here, many requests at a time, not on the request path.
    const spanId = randomHex(8);
    for (const stage of this.stages) {
      w.begin(
        this.traceId,
        randomHex(8),
        spanId,
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
      // The tenant on every span, so a backend finds a tenant's admissions and upstream calls
      // without joining them to their request span.
      if (f.tenant !== undefined) w.string(k['lanekeeper.tenant'], f.tenant);
      w.end(STATUS_UNSET, undefined);
    }
    for (const call of this.calls) {
      const asked = call.genAi;
      w.begin(
        this.traceId,
        call.spanId,
        spanId,
        false,
        this.spans.callName(asked.operation, asked.requestModel, call.method),
        KIND_CLIENT,
        call.startMs,
        call.endMs!,
      );
      const g = call.outcome ?? asked;
      const query = call.path.indexOf('?');
      const address = this.spans.address(call.upstream);
      // Keyed by tenant, as the request runs are: a run holds the tenant.
      this.spans.callRuns.write(w, f.tenant ?? '', [
        call.method,
        g.operation || undefined,
        g.provider || undefined,
        g.requestModel,
        g.responseModel,
        g.maxTokens,
        address.host,
        address.port,
        call.upstream.origin + (query < 0 ? call.path : call.path.slice(0, query)),
        call.upstream.name,
        call.resend > 0 ? call.resend : undefined,
        call.statusCode !== 0 ? call.statusCode : undefined,
        call.errorType,
        f.tenant,
      ]);
      this.spans.tokens(g);
      w.end(call.status, call.statusMessage);
    }
    const status = f.status;
    w.begin(
      this.traceId,
      spanId,
      this.parentSpanId,
      this.parentSpanId !== '',
      this.spans.requestName(f.named, f.method, f.path),
      KIND_SERVER,
      this.startMs,
      f.endMs,
    );
    // server.address and server.port from the Host the client sent.
    const host = f.host;
    let serverAddress: string | undefined;
    let serverPort: number | undefined;
    if (host) {
      const colon = host.lastIndexOf(':');
      if (colon > 0 && !host.endsWith(']')) {
        serverAddress = host.slice(0, colon);
        serverPort = Number(host.slice(colon + 1));
      } else serverAddress = host;
    }
    const g = f.genAi;
    this.spans.requestRuns.write(w, f.tenant ?? '', [
      f.method,
      f.path,
      f.secure ? 'https' : 'http',
      f.remoteAddress,
      serverAddress,
      serverPort,
      g.operation || undefined,
      g.provider || undefined,
      g.requestModel,
      g.responseModel,
      g.maxTokens,
      status,
      f.tenant,
      f.plan,
      f.modelRequested,
      f.provenance,
      f.outcome,
      f.upstream,
      f.stream,
      f.errorCode ?? (status >= 500 ? String(status) : undefined),
    ]);
    this.spans.tokens(g);
    w.string(k['lanekeeper.request_id'], f.requestId);
    if (f.costUsd !== undefined) w.number(k['lanekeeper.cost_usd'], f.costUsd);
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
    url: settings.tracesUrl,
    serviceName: settings.serviceName,
    resource: settings.resourceAttributes,
    format,
    onExportResult: options.onExportResult,
    scheduledDelayMs: options.scheduledDelayMs,
  });
  const spans = new Spans(format, batch.writer, Math.min(PENDING_MS, options.scheduledDelayMs ?? PENDING_MS));
  const ratio = settings.sampleRatio;
  const parentBased = settings.parentBased;
  const sampler = new TraceIdRatioBasedSampler(ratio);
  const sampledByRatio = (traceId: string) =>
    ratio >= 1 ||
    (ratio > 0 &&
      sampler.shouldSample(ROOT_CONTEXT, traceId).decision === SamplingDecision.RECORD_AND_SAMPLED);
  return {
    start(ctx) {
      const incoming = ctx.clientHeaders.traceparent;
      const parent = typeof incoming === 'string' ? parseTraceParent(incoming) : null;
      const traceId = parent ? parent.traceId : randomHex(16);
      // ParentBased (the default): a caller's decision stands; a new trace, or every trace
      // under a sampler that is not parent-based, is sampled at the ratio by its trace id.
      const sampled = parent && parentBased ? (parent.traceFlags & 1) === 1 : sampledByRatio(traceId);
      if (!sampled) return new UnsampledTrace(traceId, parent !== null);
      return new SampledTrace(spans, traceId, parent ? parent.spanId : '', TIME_ORIGIN + ctx.startedAt);
    },
    shutdown: () => batch.shutdown(),
  };
}
