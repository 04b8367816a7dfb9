/**
 * One request's exchange: the pipeline's request hooks, then a local reply or the upstream
 * call through the undici dispatcher, then the response hooks as the answer arrives. Bytes
 * go to the client chunk by chunk, never buffered whole.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { errors as undiciErrors, type Dispatcher } from 'undici';
import type { RequestContext } from '../context.js';
import type { ProxyError } from '../errors.js';
import {
  InvalidRequestError,
  renderError,
  RequestTimeoutError,
  ShuttingDownError,
  UpstreamAuthError,
  UpstreamTimeoutError,
  UpstreamUnreachableError,
  type ErrorStyle,
} from '../errors.js';
import { accountHeaderRefused, HEADER_LANEKEEPER_REQUEST_ID } from '../headers.js';
import type { JsonBody } from '../dialects/dialect.js';
import type { Logger } from '../log.js';
import { encodePath } from '../request/canonical-path.js';
import type { Metrics } from '../metrics.js';
import type { Runtime, Upstream } from '../runtime.js';
import { remainingCandidates, useCandidate } from '../stages/route-upstream.js';
import { FALLBACK_ON } from '../config/upstreams.js';
import type { UpstreamHealth } from '../upstream/health.js';
import { backoffMs, failureName, matches, retryAfterMs, unhealthy, type Failure } from '../upstream/retry.js';
import { reply, type LocalReply, type ResponseHead, type Stage } from '../stage.js';
import { blamesStreamOptions, type UpstreamQuirks } from '../upstream-quirks.js';
import type { RequestTracer } from '../tracing/request-trace.js';
import { readBody } from './read-body.js';
import { decoderFor, forwardableHeaders } from './upstream-response.js';

export interface ProxyHandlerDeps {
  getRuntime(): Runtime;
  pipeline: readonly Stage[];
  /** The keep-alive pool of an upstream. */
  dispatcher(upstream: Upstream): Dispatcher;
  health: UpstreamHealth;
  metrics: Metrics;
  logger: Logger;
  /** True once shutdown began: new requests get 503. */
  isDraining(): boolean;
  quirks: UpstreamQuirks;
  /** Told about each request's response-end work, so shutdown can wait for metering to finish. */
  track(work: Promise<void>): void;
  /** Set when `telemetry:` (or OTEL_*) turned tracing on. */
  tracer?: RequestTracer | undefined;
}

const EMPTY = Buffer.alloc(0);

/**
 * Paths that are one dialect's own whatever the route: their errors take its shape even
 * before a dialect is known, and an unreadable target keeps its prefix for that (server.ts).
 */
export const DIALECT_PATH_PREFIXES: readonly (readonly [string, ErrorStyle])[] = [
  ['/v1beta/', 'gemini'],
  ['/api/', 'ollama'],
];

export function errorStyleOf(ctx: RequestContext): ErrorStyle {
  // A catch-all route (`/v1/*` that no dialect names) goes to the first dialect that has
  // one, OpenAI; an Anthropic client there still deserves Anthropic's error shape.
  const anthropicClient = ctx.clientHeaders['anthropic-version'] !== undefined;
  if (ctx.dialect && !(ctx.route?.fallback && anthropicClient)) return ctx.dialect.errorStyle;
  const vector = ctx.runtime.config.vector;
  if (vector && ctx.request.path.startsWith(`${vector.path_prefix.replace(/\/+$/, '')}/`)) return 'qdrant';
  // Before a dialect is known, Anthropic clients still deserve their own error shape, and a
  // Gemini or Ollama path its own.
  if (anthropicClient) return 'anthropic';
  return errorStyleOfPath(ctx.request.path);
}

/** The error shape a path's own API uses (a Gemini or Ollama prefix), OpenAI's otherwise. */
export function errorStyleOfPath(path: string): ErrorStyle {
  return DIALECT_PATH_PREFIXES.find(([prefix]) => path.startsWith(prefix))?.[1] ?? 'openai';
}

/** The fields every log line about a request carries (docs/observability.md, Logs). */
export function logFieldsOf(ctx: RequestContext): { request_id: string; tenant?: string; trace_id?: string } {
  const fields: { request_id: string; tenant?: string; trace_id?: string } = { request_id: ctx.id };
  if (ctx.tenant) fields.tenant = ctx.tenant.id;
  if (ctx.trace?.traceId !== undefined) fields.trace_id = ctx.trace.traceId;
  return fields;
}

/** The 503 a request gets while the proxy drains. */
function shuttingDown(): ProxyError {
  return new ShuttingDownError('The proxy is shutting down; retry on another instance.');
}

/** An error as a JSON answer in the client's own shape: its body and the headers it goes with. */
function errorAnswer(error: ProxyError, ctx: RequestContext): { body: Buffer; headers: OutgoingHttpHeaders } {
  const body = Buffer.from(JSON.stringify(renderError(error, errorStyleOf(ctx))));
  return {
    body,
    headers: { 'content-type': 'application/json', 'content-length': String(body.length), ...error.headers },
  };
}

type Decoder = NonNullable<ReturnType<typeof decoderFor>>;

/** The most of a 400 held while deciding whether it blames the proxy's stream_options. */
const PROBE_MAX_BYTES = 64 * 1024;

/** Why the proxy aborted a call whose upstream passed its `max_duration_ms`. */
class MaxDurationError extends Error {
  constructor(readonly maxDurationMs: number) {
    super(`the upstream did not finish within max_duration_ms (${maxDurationMs} ms)`);
  }
}

/** A call that failed without a status, as a retry/fallback trigger. */
const BUSY = 'no connection to the upstream came free within its timeout_ms: all were busy';

/** What an upstream's outage log says of a failed answer. */
function outageReason(failure: Failure): string {
  if (!('status' in failure)) return failure.kind;
  return failure.status === 401
    ? "answered 401: it refused the proxy's credentials (check the upstream's key)"
    : `answered ${failure.status}`;
}

function failureOf(error: Error): Failure & { readonly kind: 'connect_error' | 'timeout' } {
  return error instanceof MaxDurationError ||
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError
    ? { kind: 'timeout' }
    : { kind: 'connect_error' };
}

function upstreamError(error: Error): ProxyError {
  if (error instanceof MaxDurationError) {
    return new UpstreamTimeoutError(
      `The upstream did not finish within ${error.maxDurationMs} ms (its max_duration_ms).`,
    );
  }
  if (failureOf(error).kind === 'timeout') {
    return new UpstreamTimeoutError('The upstream did not answer in time.');
  }
  return new UpstreamUnreachableError(
    `The upstream could not be reached (${(error as NodeJS.ErrnoException).code ?? error.message}).`,
  );
}

/**
 * One request's journey: request hooks, then either a local reply or the upstream exchange,
 * then response hooks. `reached` is how far down the pipeline the request got; only those
 * stages see the response.
 */
/**
 * One upstream call's dispatch handler: it passes undici's events on to its exchange while
 * the call is the exchange's current one. A call given up while it still waited for one of
 * the upstream's connections (all busy) would start later on a freed one, unasked: it is
 * aborted there, before its request is written.
 */
class Call implements Dispatcher.DispatchHandler {
  constructor(
    private readonly exchange: Exchange,
    private readonly seq: number,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.exchange.callSeq === this.seq) this.exchange.onRequestStart(controller);
    else controller.abort(new Error('given up while waiting for a connection'));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (this.exchange.callSeq === this.seq) this.exchange.onResponseStart(controller, status, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.exchange.callSeq === this.seq) this.exchange.onResponseData(controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController): void {
    if (this.exchange.callSeq === this.seq) this.exchange.onResponseEnd(controller);
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    if (this.exchange.callSeq === this.seq) this.exchange.onResponseError(controller, error);
  }
}

export class Exchange {
  private reached = -1;
  private sentAt = 0;
  private headSent = false;
  private finished = false;
  private clientGone = false;
  private controller: Dispatcher.DispatchController | undefined;
  private decoder: Decoder | undefined;
  /** A 400 to a request where the proxy added stream_options, held until we know whether to retry without. */
  private probe:
    { status: number; headers: OutgoingHttpHeaders; chunks: Buffer[]; bytes: number } | undefined;
  private retried = false;
  /**
   * The upstream retried without stream_options: if that succeeds, it provably rejects the
   * field, and the quirk is learned for everyone on it.
   */
  private provingQuirk: string | undefined;
  /** The translated body sent carried the translator's stream_options (a stream it meters). */
  private sentStreamOptions = false;
  /** Translated bodies go without stream_options: the upstream refused them on this request. */
  private dropStreamOptions = false;
  private drained = 0;
  /** Calls made to the current candidate's upstream (reset on a fallback). */
  private attempts = 0;
  /** When the first call was sent: retries stay within the upstream's timeout from here. */
  private firstSentAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  /** The current call's number: events of earlier calls are not this exchange's any more (Call). */
  callSeq = 0;
  /** The current call has a connection (undici started writing it). */
  private callStarted = false;
  /** Gives up a call still waiting for a connection at its upstream's timeout_ms. */
  private queueTimer: NodeJS.Timeout | undefined;
  /** Ends the current upstream's part at its max_duration_ms (restarted on a fallback). */
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** When that is, on performance.now()'s clock; Infinity without a bound. */
  private deadlineAt = Infinity;
  /** Set once it passed: no retry, no fallback, and a call not yet started is aborted at once. */
  private deadlinePassed: MaxDurationError | undefined;
  /** Whether the current call's result was counted (metrics, health). */
  private outcomeNoted = false;
  /** The upstream whose credentials ctx.upstreamHeaders carries. */
  private headersUpstream: Upstream | undefined;
  private traceEnded = false;
  /** A head a stage holds (ResponseHead.held), written with the first bytes out. */
  private heldHead: ResponseHead | undefined;
  /** The client got an error in place of a held answer: what the chunk hooks give is dropped. */
  private heldAnswerFailed = false;

  constructor(
    private readonly ctx: RequestContext,
    private readonly res: ServerResponse,
    private readonly deps: ProxyHandlerDeps,
    /** Why the request target could not be read as a path: answered 400 without going further. */
    private readonly badTarget: string | undefined = undefined,
  ) {}

  async run(req: IncomingMessage): Promise<void> {
    const { ctx, res, deps } = this;
    res.on('close', () => this.onClientClose());
    if (deps.tracer) ctx.trace = deps.tracer.start(ctx);
    if (this.badTarget !== undefined)
      return this.refuseUnread(req, reply(new InvalidRequestError(this.badTarget)));
    if (deps.isDraining()) return this.refuseUnread(req, reply(shuttingDown()));
    const stages = deps.pipeline;
    for (let i = 0; i < stages.length; i++) {
      const hook = stages[i]?.onHeaders;
      if (!hook) continue;
      this.reached = i;
      const result = hook(ctx);
      const verdict = result instanceof Promise ? await result : result;
      if (verdict) return this.refuseUnread(req, verdict);
      if (this.clientGone) return this.finish('client_aborted');
    }
    const judgedBy = ctx.runtime;
    const config = judgedBy.config;
    const read = await readBody(req, config.max_body_bytes, config.server.body_idle_timeout_ms);
    if (read.kind !== 'read') return this.clientStopped(req, read.kind);
    ctx.rawBody = read.body;
    ctx.bodyTooLarge = read.tooLarge;
    ctx.runtime = deps.getRuntime();
    ctx.judgedBeforeBody = ctx.runtime === judgedBy;
    if (deps.isDraining()) {
      this.reached = 0;
      return this.localReply(shuttingDown());
    }
    for (let i = 0; i < stages.length; i++) {
      this.reached = i;
      const stage = stages[i];
      const hook = stage?.onRequest;
      if (!hook) continue;
      const span = ctx.trace && stage.span !== undefined ? ctx.trace.stage(stage.span) : undefined;
      // Most hooks are synchronous; awaiting only real promises saves a microtask per stage.
      const result = hook(ctx);
      const verdict = result instanceof Promise ? await result : result;
      span?.end(verdict && 'error' in verdict ? verdict.error.status : undefined);
      if (verdict) return this.answerLocally(verdict);
      if (this.clientGone) return this.finish('client_aborted');
    }
    this.forward();
  }

  /**
   * A refusal decided before the body was read. The body is read on and dropped, within the
   * same limits as an upload (idle timeout, at most 64 MiB), never buffered or parsed; then
   * the answer goes out. Answered before the upload ends, a client still writing would get
   * a reset instead of it once the connection closes.
   */
  private async refuseUnread(req: IncomingMessage, verdict: LocalReply): Promise<void> {
    if (this.reached < 0) this.reached = 0;
    const read = await readBody(req, 0, this.ctx.runtime.config.server.body_idle_timeout_ms);
    if (read.kind === 'aborted') return this.clientStopped(req, 'aborted');
    // A client gone silent mid-upload gets the answer, and the connection closes after it.
    if (read.kind === 'idle') this.res.shouldKeepAlive = false;
    this.answerLocally(verdict);
    if (read.kind === 'idle') req.socket.destroySoon();
  }

  /** A stage's local reply: its error, or the response it made. */
  private answerLocally(verdict: LocalReply): void {
    if ('error' in verdict) this.localReply(verdict.error);
    else this.localResponse(verdict.response);
  }

  /**
   * The client hung up, or went silent, before its body was complete. Nothing was admitted
   * or forwarded yet (limits run after the body is read), so there is nothing to release:
   * an info line says what happened, a silent client gets a 408, and the socket is closed.
   */
  private clientStopped(req: IncomingMessage, how: 'aborted' | 'idle'): void {
    const { ctx, res, deps } = this;
    deps.logger.info(
      { ...logFieldsOf(ctx), method: ctx.request.method, path: ctx.request.path, remote: ctx.remoteAddress },
      how === 'idle' ? 'client went silent mid-upload: 408' : 'client hung up mid-upload',
    );
    if (how === 'idle' && !this.clientGone && !res.headersSent) {
      this.reached = 0;
      res.shouldKeepAlive = false;
      this.localReply(new RequestTimeoutError('The request body stopped arriving; send it without pauses.'));
    } else {
      this.finished = true;
      ctx.outcome = 'client_aborted';
      this.endTrace();
    }
    req.socket.destroySoon();
  }

  /**
   * Ends an exchange that threw inside the proxy, so its response-end hooks still run and
   * the tenant's concurrency slot and reservation are released. True when the client is
   * still owed an answer (nothing was sent yet). (From the canonical-request helper's branch.)
   */
  abandon(): boolean {
    const owed = !this.headSent;
    try {
      if (!this.finished) {
        this.headSent = true;
        // upstream_error: finish() leaves the response open for the caller's 500.
        this.finish('upstream_error');
      }
    } finally {
      // Also when it threw after finishing (a chunk hook), or finishing threw itself.
      this.endTrace();
    }
    return owed;
  }

  private localReply(error: ProxyError): void {
    const { ctx } = this;
    ctx.errorCode = error.apiCode;
    const answer = errorAnswer(error, ctx);
    this.respondHead(error.status, answer.headers);
    this.deliver(answer.body);
    this.finish('local_reply');
  }

  private localResponse(response: { status: number; headers: OutgoingHttpHeaders; body: Buffer }): void {
    this.respondHead(response.status, {
      ...response.headers,
      'content-length': String(response.body.length),
    });
    this.deliver(response.body);
    this.finish('local_reply');
  }

  /** Sends the request to the current candidate's upstream (again, on a retry or fallback). */
  private forward(): void {
    const { ctx } = this;
    const target = ctx.upstream ?? (ctx.runtime.upstreams[0] as Upstream);
    ctx.upstream = target;
    const method = ctx.request.method;
    let path: string;
    let body: Buffer;
    if (ctx.translator && ctx.route) {
      const translated = ctx.translator.request(ctx.route.endpoint, ctx.request.body ?? {}, {
        model: ctx.model ?? '',
      });
      path = `${target.pathPrefix}${translated.path}${translated.query ? `?${translated.query}` : ''}`;
      // The translator asks for stream usage as the client did not; an upstream known to
      // refuse the field, or that just refused it, is asked without (its usage estimated).
      if (
        translated.body.stream_options !== undefined &&
        (this.dropStreamOptions || this.deps.quirks.rejectsStreamOptions(target.config.url))
      )
        delete translated.body.stream_options;
      this.sentStreamOptions = translated.body.stream_options !== undefined;
      body = Buffer.from(JSON.stringify(translated.body));
      ctx.upstreamRoute = ctx.upstreamDialect?.match('POST', translated.path);
    } else {
      path = `${target.pathPrefix}${encodePath(ctx.request.path)}${ctx.upstreamQuery ? `?${ctx.upstreamQuery}` : ''}`;
      // A parsed body is always sent re-serialised: one copy of every key, the one the proxy
      // checked, whatever duplicates or spellings the client's text held.
      body = ctx.request.body ? Buffer.from(JSON.stringify(ctx.request.body)) : ctx.rawBody;
      ctx.upstreamRoute = ctx.route;
    }
    const headers = this.headersFor(target);
    // Each call is its own client span, a child of the request span; with tracing off an
    // incoming traceparent passes through as inject-identity copied it.
    if (ctx.trace) {
      headers.traceparent = ctx.trace.attemptStart(target, method, path, ctx);
      if (headers.tracestate !== undefined && !ctx.trace.continues) delete headers.tracestate;
    }
    if (body.length > 0 || (method !== 'GET' && method !== 'HEAD'))
      headers['content-length'] = String(body.length);
    // The first call to this upstream (attempts restart at a fallback) starts its bound.
    if (this.attempts === 0) this.startDeadline(target.config.max_duration_ms);
    this.attempts++;
    this.sentAt = performance.now();
    if (this.firstSentAt === 0) this.firstSentAt = this.sentAt;
    this.outcomeNoted = false;
    this.deps.health.begin(target);
    // undici's own timeouts start once the request is written. Waiting for a connection,
    // behind a stalled upstream, is bounded here: the Nth request in the queue waited about N
    // times timeout_ms before its fallback was tried (20 minutes for the 129th, by default).
    const seq = ++this.callSeq;
    this.callStarted = false;
    clearTimeout(this.queueTimer);
    this.queueTimer = setTimeout(() => this.onQueueTimeout(seq), target.config.timeout_ms);
    this.deps.dispatcher(target).dispatch(
      {
        origin: target.origin,
        path,
        method: method as Dispatcher.HttpMethod,
        headers,
        body: body.length > 0 ? body : null,
        headersTimeout: target.config.timeout_ms,
        bodyTimeout: target.config.timeout_ms,
      },
      new Call(this, seq),
    );
  }

  /** The upstream headers, with the credentials of `target` (a fallback may change upstream). */
  private headersFor(target: Upstream): Record<string, string | string[]> {
    const headers = this.ctx.upstreamHeaders;
    const sentTo = this.headersUpstream;
    if (sentTo !== undefined && sentTo !== target) {
      for (const name of Object.keys(sentTo.config.headers)) delete headers[name.toLowerCase()];
      // What the first upstream let a client choose of its account, the next may not.
      for (const name of Object.keys(headers))
        if (accountHeaderRefused(name, target.config)) delete headers[name];
      for (const [name, value] of Object.entries(target.config.headers)) headers[name.toLowerCase()] = value;
    }
    this.headersUpstream = target;
    return headers;
  }

  /** Counts one call's result and tells the upstream's health about it, once per call. */
  /** `detail` says what failed, for the upstream's outage log (a connection error's message). */
  private noteOutcome(failure: Failure | undefined, status: number, detail?: string): void {
    if (this.outcomeNoted) return;
    this.outcomeNoted = true;
    const upstream = this.ctx.upstream;
    if (!upstream) return;
    this.deps.metrics.upstreamCall(upstream.name, status);
    // A call cut at max_duration_ms says how long the tenant's request ran, which the tenant
    // chooses (a long answer, a big max_tokens), not that the upstream is unwell: counted,
    // two long requests of one tenant ejected a healthy upstream for every tenant.
    if (this.deadlinePassed) return;
    if (failure && unhealthy(failure)) this.deps.health.failed(upstream, detail ?? outageReason(failure));
    else this.deps.health.succeeded(upstream);
  }

  /**
   * A call failed before the client got a byte: retry it on the same upstream, or move to
   * the next model of the alias's fallback list. False when neither applies, and the
   * failure is answered as it is.
   */
  private tryAgain(failure: Failure, retryAfter: string | string[] | undefined): boolean {
    const { ctx, deps } = this;
    const upstream = ctx.upstream;
    if (!upstream || this.clientGone || this.headSent || this.deadlinePassed) return false;
    const retries = upstream.config.retries;
    if (this.attempts < retries.attempts && matches(retries.on, failure)) {
      const wait = backoffMs(this.attempts, {
        base: retries.base_backoff_ms,
        max: retries.max_backoff_ms,
        retryAfter: retryAfterMs(retryAfter),
      });
      // Retries stay within the upstream's timeout, counted from the first call, and its
      // max_duration_ms.
      const now = performance.now();
      if (now - this.firstSentAt + wait < upstream.config.timeout_ms && now + wait < this.deadlineAt) {
        deps.metrics.upstreamRetries.inc({ upstream: upstream.name, reason: failureName(failure) });
        this.giveUpCall();
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          if (this.clientGone) this.finish('client_aborted');
          else this.forward();
        }, wait);
        return true;
      }
    }
    const next = remainingCandidates(ctx)[0];
    if (!next || !matches(FALLBACK_ON, failure)) return false;
    deps.metrics.fallbacks.inc({ from: ctx.model ?? '', to: next.model, reason: failureName(failure) });
    // Counted in lanekeeper_fallbacks_total; what failed is in the upstream's outage log.
    deps.logger.debug(
      { ...logFieldsOf(ctx), from: ctx.model, to: next.model, reason: failureName(failure) },
      'falling back to the next model',
    );
    this.giveUpCall();
    useCandidate(ctx, next);
    this.attempts = 0;
    // Not from inside the failed call's callback: let undici finish with it first.
    setImmediate(() => (this.clientGone ? this.finish('client_aborted') : this.forward()));
    return true;
  }

  /**
   * Stops the current call, started or still waiting for a connection: its later events are
   * ignored (Call checks its number), and a queued one is aborted when it would start.
   */
  private giveUpCall(): void {
    const controller = this.controller;
    this.controller = undefined;
    this.decoder = undefined;
    this.callSeq++;
    clearTimeout(this.queueTimer);
    controller?.abort(new Error('retried elsewhere'));
  }

  /**
   * The current call waited its upstream's timeout_ms for a connection: given up as a
   * timeout (retry or fallback as any, else 504). The upstream had not got it: nothing is
   * charged.
   */
  private onQueueTimeout(seq: number): void {
    if (seq !== this.callSeq || this.callStarted || this.finished) return;
    this.giveUpCall();
    const failure = { kind: 'timeout' } as const;
    this.ctx.trace?.attemptEnd('timeout');
    this.noteOutcome(failure, 0, BUSY);
    if (this.clientGone) return this.finish('client_aborted');
    if (this.tryAgain(failure, undefined)) return;
    // The upstream's outage log has said it; per request only at debug (issue 18).
    this.deps.logger.debug({ ...logFieldsOf(this.ctx), upstream: this.ctx.upstream?.name }, BUSY);
    this.localReply(new UpstreamTimeoutError('The upstream did not answer in time.'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.callStarted = true;
    clearTimeout(this.queueTimer);
    this.controller = controller;
    if (this.deadlinePassed) controller.abort(this.deadlinePassed);
    else if (this.clientGone && !this.ctx.upstream?.config.drain_on_client_abort)
      controller.abort(new Error('client went away'));
    // undici calls this on a connected socket, as it writes the request.
    else this.ctx.upstreamUnanswered = true;
  }

  private startDeadline(maxDurationMs: number | undefined): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.deadlineAt = Infinity;
    if (maxDurationMs === undefined) return;
    this.deadlineAt = performance.now() + maxDurationMs;
    this.deadlineTimer = setTimeout(() => this.onDeadline(maxDurationMs), maxDurationMs);
  }

  /**
   * The upstream passed its max_duration_ms: the call is aborted, and onResponseError
   * answers a 504 if the client has nothing yet, or cuts its stream as any upstream failure
   * after the first byte does. Either way the request is metered and its slot freed.
   */
  private onDeadline(maxDurationMs: number): void {
    this.deadlineTimer = undefined;
    // A fallback is about to start (attempts restart at 0): the bound was the upstream given
    // up on, and the next one's starts with its first call.
    if (this.finished || this.attempts === 0) return;
    const error = new MaxDurationError(maxDurationMs);
    this.deadlinePassed = error;
    this.deps.logger.warn(
      { ...logFieldsOf(this.ctx), upstream: this.ctx.upstream?.name, max_duration_ms: maxDurationMs },
      'request passed its upstream max_duration_ms',
    );
    if (this.retryTimer) {
      // Waiting to retry: nothing is in flight to abort.
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      if (this.clientGone) return this.finish('client_aborted');
      return this.localReply(upstreamError(error));
    }
    if (!this.callStarted) {
      // Still waiting for a connection: given up here, or it would only start to be aborted.
      this.giveUpCall();
      if (this.clientGone) return this.finish('client_aborted');
      return this.localReply(upstreamError(error));
    }
    this.controller?.abort(error);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    rawHeaders: Record<string, string | string[] | undefined>,
  ): void {
    if (controller !== this.controller) return;
    // An interim answer (102 Processing, 103 Early Hints): undici reads on to the final head.
    // Taken for the head, it was written to the client, and the real one then cut the call.
    if (status < 200) return;
    const { ctx } = this;
    ctx.upstreamUnanswered = false;
    ctx.trace?.attemptStatus(status);
    // A 401 is about the proxy's key for this upstream, never the client's: the next
    // candidate, with its own key, may well answer, and an upstream refusing its key is down.
    const failed = status === 429 || status === 401 || status >= 500 ? { status } : undefined;
    this.noteOutcome(failed, status);
    if (failed && this.tryAgain(failed, rawHeaders['retry-after'])) return;
    ctx.ttfbMs = performance.now() - this.sentAt;
    if (status === 401) return this.upstreamRefusedCredentials();
    if (status >= 300 && status < 400 && status !== 304 && ctx.route?.metered)
      return this.upstreamRedirected(status, rawHeaders.location);
    if (this.provingQuirk !== undefined) {
      // A fallback's answer proves nothing about the upstream that refused the field.
      if (status < 400 && this.provingQuirk === ctx.upstream?.config.url) this.learnNoStreamOptions();
      this.provingQuirk = undefined;
    }
    const headers = forwardableHeaders(rawHeaders);
    // Decoded before anything reads the body, the held 400 below included: compressed, it
    // was passed on as it came, its provider key unredacted and its blame of stream_options
    // unread.
    const encoding = rawHeaders['content-encoding'];
    this.decoder = encoding === undefined ? undefined : decoderFor(String(encoding));
    if (this.decoder) {
      // Metering needs plain bytes; the client gets the decoded body, which any HTTP
      // client accepts, so the encoding headers no longer apply.
      delete headers['content-encoding'];
      delete headers['content-length'];
      const decoder = this.decoder;
      decoder.on('data', (chunk: Buffer) => this.onDecoded(controller, decoder, chunk));
      decoder.on('error', (error) => this.onDecodeError(controller, error));
    }
    if (
      status === 400 &&
      !this.retried &&
      (ctx.translator
        ? this.sentStreamOptions
        : ctx.usageInjected &&
          ctx.dialect?.withoutStreamUsage !== undefined &&
          onlyInjectedStreamOptions(ctx.request.body))
    ) {
      this.probe = { status, headers, chunks: [], bytes: 0 };
      return;
    }
    // Only stream stages (hidden usage, mid-stream cut-offs) change response bytes; a
    // rewritten request body does not, so a JSON answer keeps its length and goes out
    // in one write instead of chunked.
    if (ctx.stream || ctx.usageInjected) delete headers['content-length'];
    this.respondHead(status, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (controller !== this.controller) return;
    if (this.probe && !this.decoder) return this.holdProbe(chunk);
    // Decoded bytes are counted where they come out of the decoder: a compressed body
    // inflates a thousandfold, and the drain bound is on what the meter reads.
    if (this.clientGone && !this.decoder) this.countDrained(controller, chunk.length);
    if (this.decoder) {
      if (!this.decoder.write(chunk)) this.pauseUntilDrained(controller, this.decoder);
      return;
    }
    if (!this.deliver(chunk)) this.pauseUntilDrained(controller, this.res);
  }

  /**
   * Holds the upstream until the client has taken what it was sent (`source` drains: the
   * response, or the decoder that feeds it). A client that takes nothing more for
   * server.response_stall_timeout_ms is cut off as if it had hung up: paused, undici runs no
   * body timeout, and each such client held one of the upstream's connections for good.
   */
  private pauseUntilDrained(controller: Dispatcher.DispatchController, source: NodeJS.EventEmitter): void {
    controller.pause();
    const stallMs = this.ctx.runtime.config.server.response_stall_timeout_ms;
    const timer = setTimeout(() => this.onClientStalled(stallMs), stallMs).unref();
    source.once('drain', () => {
      clearTimeout(timer);
      controller.resume();
    });
  }

  private onClientStalled(stallMs: number): void {
    if (this.finished || this.clientGone) return;
    this.deps.logger.info(
      { ...logFieldsOf(this.ctx), response_stall_timeout_ms: stallMs },
      'the client read nothing of its response for server.response_stall_timeout_ms: cut off',
    );
    this.res.destroy();
  }

  /**
   * A decoded chunk on its way to the client. Passed on without regard to the client's pace,
   * a small compressed body (a gzip bomb) inflated whole into the response's buffer: a
   * client that stops reading now pauses the decoder, whose full buffer pauses the upstream.
   */
  private onDecoded(controller: Dispatcher.DispatchController, decoder: Decoder, chunk: Buffer): void {
    if (this.probe) return this.holdProbe(chunk);
    if (this.clientGone) this.countDrained(controller, chunk.length);
    if (this.deliver(chunk) || this.clientGone || decoder.isPaused()) return;
    decoder.pause();
    const resume = () => {
      this.res.off('drain', resume);
      this.res.off('close', resume);
      decoder.resume();
    };
    // On close too: a client that leaves never drains, and a drain_on_client_abort must go on.
    this.res.once('drain', resume);
    this.res.once('close', resume);
  }

  /** A chunk of the held 400 (decoded, when it came compressed). */
  private holdProbe(chunk: Buffer): void {
    const probe = this.probe!;
    probe.chunks.push(chunk);
    probe.bytes += chunk.length;
    // Held whole until the answer ends, a 400 of any length would be held in memory, and
    // one that never ends for ever; a refusal of one field is a line or two. A longer one
    // goes on as the upstream's answer, read as any other.
    if (probe.bytes > PROBE_MAX_BYTES) {
      this.probe = undefined;
      this.respondHead(probe.status, probe.headers);
      for (const held of probe.chunks) this.deliver(held);
    }
  }

  private countDrained(controller: Dispatcher.DispatchController, bytes: number): void {
    this.drained += bytes;
    if (this.drained > (this.ctx.upstream?.config.drain_max_bytes ?? 0))
      controller.abort(new Error('drain byte limit'));
  }

  onResponseEnd(controller: Dispatcher.DispatchController): void {
    if (controller !== this.controller) return;
    this.ctx.trace?.attemptEnd(undefined);
    if (this.probe && !this.decoder) return this.settleProbe();
    this.ctx.upstreamEnded = true;
    if (this.decoder) {
      this.decoder.once('end', () =>
        this.probe ? this.settleProbe() : this.finish(this.clientGone ? 'client_aborted' : 'completed'),
      );
      this.decoder.end();
      return;
    }
    this.finish(this.clientGone ? 'client_aborted' : 'completed');
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    // A call the exchange gave up on, or aborted by the proxy itself after the response was
    // complete (a cut-off).
    if (controller !== this.controller || this.finished) return;
    this.ctx.trace?.attemptEnd(failureOf(error).kind);
    if (this.clientGone) return this.finish('client_aborted');
    if (!this.headSent) {
      if (!this.outcomeNoted) {
        const failure = failureOf(error);
        this.noteOutcome(failure, 0, error.message);
        if (this.tryAgain(failure, undefined)) return;
      }
      this.deps.logger.debug({ ...logFieldsOf(this.ctx), err: error.message }, 'upstream request failed');
      return this.localReply(upstreamError(error));
    }
    if (this.heldHead) return this.failHeldAnswer(upstreamError(error));
    // The head is out: all that is left is to cut the client's stream, so it sees a
    // truncated response rather than a clean end.
    this.finish('upstream_error');
    this.res.destroy(error);
  }

  /**
   * The upstream failed while a stage held the head (a translated JSON answer goes out only
   * whole): the client has had no byte, so it gets the error in its own shape, as before a
   * head, not a cut connection. The hooks still see the end, so what the upstream sent is
   * metered as partial; what they would make of the broken answer is dropped.
   */
  private failHeldAnswer(error: ProxyError): void {
    const { ctx, res } = this;
    const head = this.heldHead!;
    this.heldHead = undefined;
    this.heldAnswerFailed = true;
    ctx.status = error.status;
    ctx.errorCode = error.apiCode;
    this.deps.logger.warn({ ...logFieldsOf(ctx), err: error.message }, 'upstream request failed');
    this.finish('upstream_error');
    const answer = errorAnswer(error, ctx);
    res.writeHead(error.status, { ...head.headers, ...answer.headers });
    res.end(answer.body);
  }

  /**
   * The upstream refused a request the proxy had added stream_options to. If it blames that
   * field, retry once without it; else pass its 400 on as it was. The quirk is learned only
   * when the retry succeeds (onResponseStart): a 400 whose text merely names the field, which
   * a tenant can provoke, must not change how every tenant on the upstream is metered.
   */
  private settleProbe(): void {
    const probe = this.probe;
    this.probe = undefined;
    this.decoder = undefined;
    if (!probe) return;
    const { ctx } = this;
    const text = Buffer.concat(probe.chunks).toString('utf8');
    if (blamesStreamOptions(text) && (ctx.translator || (ctx.dialect?.withoutStreamUsage && ctx.route))) {
      this.retried = true;
      ctx.upstreamEnded = false;
      this.provingQuirk = ctx.upstream?.config.url;
      if (ctx.translator) this.dropStreamOptions = true;
      else if (ctx.route) {
        ctx.dialect!.withoutStreamUsage!(ctx.request, ctx.route);
        ctx.usageInjected = false;
      }
      return this.forward();
    }
    this.respondHead(probe.status, probe.headers);
    for (const chunk of probe.chunks) this.deliver(chunk);
    this.finish('completed');
  }

  /**
   * A redirect in answer to a model call is a misconfigured upstream url (http:// to a
   * provider that sends every client to https://, an old path). Passed on, the client
   * followed it itself: it re-sent the prompt to wherever the upstream named, past the
   * proxy (and its key too, from a client that keeps it across origins). The client gets a
   * 502, the operator a warning naming where the upstream pointed (its origin only).
   */
  private upstreamRedirected(status: number, location: string | string[] | undefined): void {
    const { ctx } = this;
    const target = Array.isArray(location) ? location[0] : location;
    let to: string | undefined;
    try {
      to = target === undefined ? undefined : new URL(target, ctx.upstream?.origin).origin;
    } catch {
      to = undefined;
    }
    this.deps.logger.warn(
      { ...logFieldsOf(ctx), upstream: ctx.upstream?.name, status, location_origin: to },
      'upstream answered a model call with a redirect: check the upstream url',
    );
    this.giveUpCall();
    this.localReply(
      new UpstreamUnreachableError(
        `The upstream answered with a redirect (${status}); the operator must fix its url.`,
      ),
    );
  }

  /**
   * A 401 from the upstream is about the credentials the proxy sent (the client's never go
   * upstream): the operator's key is wrong or revoked. Its body would tell the tenant that
   * its own key was wrong, and may quote the operator's (OpenAI shows the key's first and
   * last characters), so the tenant gets a 502 of the proxy's and the operator a warning.
   */
  private upstreamRefusedCredentials(): void {
    const { ctx } = this;
    this.deps.logger.debug(
      { ...logFieldsOf(ctx), upstream: ctx.upstream?.name, status: 401 },
      "upstream refused the proxy's credentials: check the upstream's key",
    );
    this.giveUpCall();
    this.localReply(
      new UpstreamAuthError(
        "The upstream refused this service's credentials; the operator must fix its provider key.",
      ),
    );
  }

  private learnNoStreamOptions(): void {
    const url = this.ctx.upstream!.config.url;
    this.deps.quirks.markRejectsStreamOptions(url);
    this.deps.logger.warn(
      { upstream: url },
      'upstream rejects stream_options: its stream usage will be estimated for an hour',
    );
  }

  /**
   * The compressed body does not decode. Before the upstream ended, aborting the call ends
   * the exchange through onResponseError. After it ended (a body truncated yet delivered
   * whole, its gzip trailer missing), the call is over and an abort does nothing: the
   * exchange ends here, or it would never be metered and its slot never freed.
   */
  private onDecodeError(controller: Dispatcher.DispatchController, error: Error): void {
    if (!this.ctx.upstreamEnded) return controller.abort(error);
    if (this.finished) return;
    this.deps.logger.warn({ ...logFieldsOf(this.ctx), err: error.message }, 'upstream body did not decode');
    this.finish('upstream_error');
    this.res.destroy(error);
  }

  /** Runs response-header hooks (bottom to top) and writes the head. */
  private respondHead(status: number, headers: OutgoingHttpHeaders): void {
    const { ctx } = this;
    const head: ResponseHead = { status, headers };
    const stages = this.deps.pipeline;
    for (let i = this.reached; i >= 0; i--) stages[i]?.onResponseHeaders?.(ctx, head);
    head.headers[HEADER_LANEKEEPER_REQUEST_ID] = ctx.id;
    ctx.status = head.status;
    ctx.responseHeaders = head.headers;
    this.headSent = true;
    if (head.held) this.heldHead = head;
    else if (!this.clientGone) this.res.writeHead(head.status, head.headers);
  }

  private writeHeldHead(): void {
    const head = this.heldHead!;
    this.heldHead = undefined;
    this.ctx.status = head.status;
    if (!this.clientGone) this.res.writeHead(head.status, head.headers);
  }

  /** Passes a chunk through the chunk hooks to the client; false asks the upstream to wait. */
  private deliver(chunk: Buffer, end = false): boolean {
    const stages = this.deps.pipeline;
    let out = chunk;
    for (let i = this.reached; i >= 0; i--) {
      const hook = stages[i]?.onResponseChunk;
      if (hook) out = hook(this.ctx, out, end);
    }
    if (this.heldHead && (out.length > 0 || end)) this.writeHeldHead();
    const ok = this.clientGone || this.heldAnswerFailed || out.length === 0 ? true : this.res.write(out);
    if (this.ctx.cutoff !== undefined && !end && !this.finished) {
      // A stage ended the stream at an event boundary (mid-stream enforcement): stop the
      // upstream generating, and close the client's response cleanly.
      this.finish('completed');
      this.controller?.abort(new Error(`cut off: ${this.ctx.cutoff}`));
    }
    return ok;
  }

  private onClientClose(): void {
    if (this.res.writableFinished || this.finished) return;
    this.clientGone = true;
    if (this.retryTimer) {
      // Waiting to retry: nothing is in flight to stop.
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      return this.finish('client_aborted');
    }
    const config = this.ctx.upstream?.config;
    if (this.attempts > 0 && !this.callStarted && !this.finished) {
      // Its call still waits for a connection: nothing was sent, nothing to read on.
      this.giveUpCall();
      return this.finish('client_aborted');
    }
    if (!this.controller || !config) return;
    if (config.drain_on_client_abort) {
      this.drainBounded(config.drain_timeout_ms);
    } else {
      this.controller.abort(new Error('client went away'));
    }
  }

  /** Keeps reading after the client left, so the provider's final usage is captured, within bounds. */
  private drainBounded(timeoutMs: number): void {
    const timer = setTimeout(() => this.controller?.abort(new Error('drain time limit')), timeoutMs);
    timer.unref();
    this.res.once('finish', () => clearTimeout(timer));
    this.controller?.resume();
  }

  private finish(outcome: NonNullable<RequestContext['outcome']>): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.deadlineTimer);
    clearTimeout(this.queueTimer);
    const { ctx, res } = this;
    // A call that ended without a status (the client left first) says nothing of the
    // upstream's health; if it was an ejected upstream's probe, another may go.
    if (ctx.upstream && this.attempts > 0 && !this.outcomeNoted) this.deps.health.released(ctx.upstream);
    ctx.outcome = ctx.cutoff ? 'cut_off' : outcome;
    if (this.reached >= 0) this.deliver(EMPTY, true);
    if (!this.clientGone && !res.writableEnded && outcome !== 'upstream_error') res.end();
    ctx.durationMs = performance.now() - ctx.startedAt;
    this.deps.track(this.runEndHooks());
  }

  /**
   * Starts every response-end hook in order (bottom to top) without waiting for the one
   * before: each sets what later hooks read before its first await (meter-usage fixes the
   * usage and cost synchronously), and the store calls they issue in the same tick are
   * pipelined by the Redis client into one round trip.
   */
  private async runEndHooks(): Promise<void> {
    const stages = this.deps.pipeline;
    const running: Promise<void>[] = [];
    for (let i = this.reached; i >= 0; i--) {
      const stage = stages[i];
      if (!stage?.onResponseEnd) continue;
      try {
        const result = stage.onResponseEnd(this.ctx);
        if (result) running.push(result.catch((error: unknown) => this.hookFailed(stage.name, error)));
      } catch (error) {
        this.hookFailed(stage.name, error);
      }
    }
    // After every hook has set what it sets synchronously (usage, cost, the access log), and
    // whether or not one failed: a span left open is never exported.
    this.endTrace();
    await Promise.all(running);
  }

  /**
   * Ends the request span, once, whichever way the request finished: the exchange started
   * it, so the exchange ends it, including where no response-end hook runs (a client that
   * hung up mid-upload).
   */
  private endTrace(): void {
    if (this.traceEnded || !this.ctx.trace) return;
    this.traceEnded = true;
    // Guarded as it was inside a response-end hook: tracing never fails a request.
    try {
      this.ctx.trace.end(this.ctx);
    } catch (error) {
      this.hookFailed('trace', error);
    }
  }

  private hookFailed(stage: string, error: unknown): void {
    this.deps.logger.error({ ...logFieldsOf(this.ctx), err: error, stage }, 'response-end hook failed');
  }
}

/**
 * The request's stream_options is only what the proxy injected (include_usage, nothing the
 * client chose): a 400 blaming stream_options can then only be about the proxy's field, not
 * a value of the client's that the upstream names in its error.
 */
function onlyInjectedStreamOptions(body: JsonBody | undefined): boolean {
  const options = body?.stream_options;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) return false;
  const keys = Object.keys(options);
  return keys.length === 1 && keys[0] === 'include_usage';
}
