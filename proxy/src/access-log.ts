/**
 * The access-log line: one JSON line per request, written when the response is over.
 *
 * It is the one log line every request pays for, so it is built by hand rather than through
 * pino's generic serialiser (which walks the object, tests every value's type and runs the
 * redaction hook): a fixed list of fields, strings escaped with JSON.stringify, numbers as
 * they print. The line is byte-for-byte what `logger.info(fields, 'request')` would write
 * (same level, time, bindings and field order; access-log.test.ts checks it), and goes to the
 * logger's own destination, so it stays in order with every other line. It carries no
 * header and no body by construction, so there is nothing to redact.
 *
 * A logger that is not a pino logger (or whose stream needs pino's metadata) gets the
 * ordinary `logger.info` call.
 */
import { pino } from 'pino';
import type { RequestContext } from './context.js';
import type { Logger } from './log.js';

/** The fields of an access-log line, in the order they are written. */
export interface AccessLogFields {
  request_id: string;
  tenant: string | null;
  plan: string | null;
  method: string;
  path: string;
  dialect: string | null;
  /** The upstream that served the request (after any fallback), by its config name. */
  upstream: string | null;
  model: string | null;
  model_requested: string | null;
  upstream_model: string | null;
  status: number;
  outcome: string | null;
  error: string | null;
  stream: boolean;
  input_tokens: number | null;
  output_tokens: number | null;
  cached_input_tokens: number | null;
  cache_write_tokens: number | null;
  reasoning_tokens: number | null;
  provenance: string | null;
  cost_usd: number | null;
  latency_ms: number;
  ttfb_ms: number | null;
  /** Only when tracing is on and the request was sampled: the line is unchanged otherwise. */
  trace_id?: string;
}

export function accessLogFields(ctx: RequestContext): AccessLogFields {
  return {
    request_id: ctx.id,
    tenant: ctx.tenant?.id ?? null,
    plan: ctx.tenant?.planName ?? null,
    method: ctx.request.method,
    path: ctx.request.path,
    dialect: ctx.dialect?.name ?? null,
    upstream: ctx.upstream?.name ?? null,
    model: ctx.model ?? null,
    model_requested: ctx.modelRequested ?? null,
    upstream_model: ctx.upstreamModel ?? null,
    status: ctx.status ?? 0,
    outcome: ctx.outcome ?? null,
    error: ctx.errorCode ?? null,
    stream: ctx.stream,
    input_tokens: ctx.usage.input ?? null,
    output_tokens: ctx.usage.output ?? null,
    cached_input_tokens: ctx.usage.cachedInput ?? null,
    cache_write_tokens: ctx.usage.cacheWrite ?? null,
    reasoning_tokens: ctx.usage.reasoning ?? null,
    provenance: ctx.provenance ?? null,
    cost_usd: ctx.costUsd ?? null,
    latency_ms: Math.round(ctx.durationMs ?? 0),
    ttfb_ms: ctx.ttfbMs === undefined ? null : Math.round(ctx.ttfbMs),
    ...(ctx.trace?.traceId === undefined ? {} : { trace_id: ctx.trace.traceId }),
  };
}

function str(value: string | null): string {
  return value === null ? 'null' : JSON.stringify(value);
}

function num(value: number | null): string {
  return value === null || !Number.isFinite(value) ? 'null' : String(value);
}

/** The level as the proxy's logger writes it (a word: contract/src/logging.ts). */
const INFO = '"info"';

interface PinoInternals {
  [pino.symbols.streamSym]?: { write(line: string): unknown; [pino.symbols.needsMetadataGsym]?: boolean };
  [pino.symbols.timeSym]?: () => string;
  [pino.symbols.chindingsSym]?: string;
  isLevelEnabled?: (level: string) => boolean;
}

/**
 * The JSON members of the line after pino's prefix, without the braces, read straight from
 * the context: the line every request pays for is one template, with no fields object in
 * between. access-log.test.ts holds it byte for byte equal to `logger.info(accessLogFields(ctx))`.
 */
export function accessLogMembersOf(ctx: RequestContext): string {
  const u = ctx.usage;
  const tenant = ctx.tenant;
  return (
    `"request_id":${str(ctx.id)},"tenant":${str(tenant?.id ?? null)},"plan":${str(tenant?.planName ?? null)}` +
    `,"method":${str(ctx.request.method)},"path":${str(ctx.request.path)},"dialect":${str(ctx.dialect?.name ?? null)}` +
    `,"upstream":${str(ctx.upstream?.name ?? null)},"model":${str(ctx.model ?? null)}` +
    `,"model_requested":${str(ctx.modelRequested ?? null)},"upstream_model":${str(ctx.upstreamModel ?? null)}` +
    `,"status":${num(ctx.status ?? 0)},"outcome":${str(ctx.outcome ?? null)},"error":${str(ctx.errorCode ?? null)}` +
    `,"stream":${ctx.stream ? 'true' : 'false'},"input_tokens":${num(u.input ?? null)}` +
    `,"output_tokens":${num(u.output ?? null)},"cached_input_tokens":${num(u.cachedInput ?? null)}` +
    `,"cache_write_tokens":${num(u.cacheWrite ?? null)},"reasoning_tokens":${num(u.reasoning ?? null)}` +
    `,"provenance":${str(ctx.provenance ?? null)},"cost_usd":${num(ctx.costUsd ?? null)}` +
    `,"latency_ms":${num(Math.round(ctx.durationMs ?? 0))}` +
    `,"ttfb_ms":${ctx.ttfbMs === undefined ? 'null' : num(Math.round(ctx.ttfbMs))}` +
    (ctx.trace?.traceId === undefined ? '' : `,"trace_id":${str(ctx.trace.traceId)}`)
  );
}

/** Writes a request's access-log line through `logger`. */
export function writeAccessLog(logger: Logger, ctx: RequestContext): void {
  const internals = logger as Logger & PinoInternals;
  const stream = internals[pino.symbols.streamSym];
  const time = internals[pino.symbols.timeSym];
  const bindings = internals[pino.symbols.chindingsSym];
  if (
    !stream ||
    !time ||
    bindings === undefined ||
    !internals.isLevelEnabled ||
    stream[pino.symbols.needsMetadataGsym]
  ) {
    logger.info(accessLogFields(ctx), 'request');
    return;
  }
  if (!internals.isLevelEnabled('info')) return;
  stream.write(`{"level":${INFO}${time()}${bindings},${accessLogMembersOf(ctx)},"msg":"request"}\n`);
}
