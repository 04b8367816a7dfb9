/**
 * What the request path sees of tracing: two small interfaces and nothing from
 * OpenTelemetry. With tracing off `ctx.trace` is undefined and every hook is one null
 * check; with it on, main.ts imports otel-request-tracer.ts (and the SDK) dynamically.
 */
import type { RequestContext } from '../context.js';
import type { Upstream } from '../runtime.js';

/** A child span of the request span, for one pipeline stage (stage.ts `span`). */
export interface StageSpan {
  /** Ends it; `refused` marks a local reply (a 429 from admission) on the span. */
  end(refused: number | undefined): void;
}

/** One request's spans: the server span, its stage children and one client span per upstream call. */
export interface RequestTrace {
  /** The request span's trace id (hex), for logs; undefined when the request is not sampled. */
  readonly traceId: string | undefined;
  /**
   * The trace is the one of the client's valid traceparent. Otherwise the proxy starts a new
   * one, and a tracestate the client sent belongs to no trace the upstream sees: W3C Trace
   * Context has it discarded.
   */
  readonly continues: boolean;
  stage(name: string): StageSpan;
  /** Starts the client span of an upstream call; returns the traceparent to send with it. */
  attemptStart(upstream: Upstream, method: string, path: string, ctx: RequestContext): string;
  /** The upstream answered with this status (headers arrived). */
  attemptStatus(status: number): void;
  /** The call is over: given up for a retry or fallback, failed (`error`), or ended. */
  attemptEnd(error: string | undefined): void;
  /** Ends the request span (and anything still open) with what the context learnt; the exchange calls it once. */
  end(ctx: RequestContext): void;
}

export interface RequestTracer {
  start(ctx: RequestContext): RequestTrace;
  shutdown(): Promise<void>;
}
