import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { RequestContext } from './context.js';
import { accessLogFields, writeAccessLog, type AccessLogFields } from './access-log.js';
import { createLogger, type Logger } from './log.js';

/** A logger whose raw lines are collected, with the time made constant so lines compare byte for byte. */
function capture(level = 'info'): { raw: string[]; logger: pino.Logger } {
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) raw.push(line);
      done();
    },
  });
  const logger = createLogger(level, sink);
  // The same instant for both lines of a comparison.
  (logger as unknown as Record<symbol, unknown>)[pino.symbols.timeSym] = () =>
    ',"time":"2026-12-04T05:00:00.000Z"';
  return { raw, logger };
}

const FIELDS: AccessLogFields = {
  request_id: '6b1f3c2e-0d4a-4f5e-9a8b-7c6d5e4f3a2b',
  tenant: 'acme',
  plan: 'pro',
  method: 'POST',
  path: '/v1/chat/completions',
  dialect: 'openai',
  upstream: 'default',
  model: 'gpt-4o-mini',
  model_requested: 'fast',
  upstream_model: 'gpt-4o-mini-2024-07-18',
  status: 200,
  outcome: 'completed',
  error: null,
  stream: true,
  input_tokens: 25,
  output_tokens: 20,
  cached_input_tokens: null,
  cache_write_tokens: 0,
  reasoning_tokens: null,
  provenance: 'reported',
  cost_usd: 0.00001575,
  latency_ms: 3,
  ttfb_ms: null,
};

describe('access-log line', () => {
  it.each<[string, AccessLogFields, { durationMs?: number; ttfbMs?: number }?]>([
    ['a typical request', FIELDS],
    ['a request whose times are rounded to the millisecond', FIELDS, { durationMs: 3.4, ttfbMs: 1.6 }],
    [
      'a refused request: no tenant, dialect, upstream, model or usage',
      {
        ...FIELDS,
        tenant: null,
        plan: null,
        dialect: null,
        upstream: null,
        model: null,
        input_tokens: null,
        output_tokens: null,
        cache_write_tokens: null,
        provenance: null,
        cost_usd: null,
        status: 401,
        error: 'invalid_api_key',
      },
    ],
    [
      'strings an attacker chose (quotes, control characters, line breaks, unicode, a lone surrogate)',
      {
        ...FIELDS,
        tenant: null,
        plan: null,
        path: '/v1/"x"\\\n\r\t\u0000\u001f/\u2028é🚀\ud800',
        model_requested: '","tenant":"other',
        status: 401,
        error: 'invalid_api_key',
        stream: false,
      },
    ],
    [
      'numbers JSON prints in exponent form, and ones it cannot print',
      { ...FIELDS, cost_usd: 1.5e-7, input_tokens: 1e21, output_tokens: Number.NaN, latency_ms: Infinity },
    ],
  ])('is byte for byte what logger.info writes: %s', (_name, fields, extra) => {
    const ctx = contextOf(fields, extra);
    const byPino = capture();
    byPino.logger.info({ ...accessLogFields(ctx) }, 'request');
    const byHand = capture();
    writeAccessLog(byHand.logger, ctx);
    expect(byHand.raw).toHaveLength(1);
    expect(byHand.raw[0]).toBe(byPino.raw[0]);
    const parsed = JSON.parse(byHand.raw[0] as string) as Record<string, unknown>;
    expect(parsed).toMatchObject({ level: 'info', service: 'lanekeeper-proxy', msg: 'request' });
    expect(parsed.path).toBe(fields.path);
    expect(parsed.tenant).toBe(fields.tenant);
    if (extra?.durationMs !== undefined) expect(parsed).toMatchObject({ latency_ms: 3, ttfb_ms: 2 });
  });

  it('is not written when the level is above info', () => {
    const { raw, logger } = capture('warn');
    writeAccessLog(logger, contextOf(FIELDS));
    logger.warn({}, 'still written');
    expect(raw).toHaveLength(1);
    expect(JSON.parse(raw[0] as string)).toMatchObject({ msg: 'still written' });
  });

  it('keeps a child logger’s bindings', () => {
    const { raw, logger } = capture();
    writeAccessLog(logger.child({ replica: 'r-2' }), contextOf(FIELDS));
    expect(JSON.parse(raw[0] as string)).toMatchObject({ replica: 'r-2', request_id: FIELDS.request_id });
  });

  it('goes through logger.info for a logger that is not pino', () => {
    const calls: unknown[][] = [];
    const record = (...args: unknown[]) => void calls.push(args);
    const logger = { info: record, warn: record, error: record, debug: record, child: () => logger };
    writeAccessLog(logger as unknown as Logger, contextOf(FIELDS));
    expect(calls).toEqual([[FIELDS, 'request']]);
  });
});

/** A context holding what the access line reads, from the fields it should produce. */
function contextOf(f: AccessLogFields, extra: { durationMs?: number; ttfbMs?: number } = {}): RequestContext {
  const usage: Record<string, number> = {};
  const put = (key: string, value: number | null) => {
    if (value !== null) usage[key] = value;
  };
  put('input', f.input_tokens);
  put('output', f.output_tokens);
  put('cachedInput', f.cached_input_tokens);
  put('cacheWrite', f.cache_write_tokens);
  put('reasoning', f.reasoning_tokens);
  const defined = <T>(value: T | null) => value ?? undefined;
  return {
    id: f.request_id,
    tenant: f.tenant === null ? undefined : { id: f.tenant, planName: f.plan },
    request: { method: f.method, path: f.path },
    dialect: f.dialect === null ? undefined : { name: f.dialect },
    upstream: f.upstream === null ? undefined : { name: f.upstream },
    model: defined(f.model),
    modelRequested: defined(f.model_requested),
    upstreamModel: defined(f.upstream_model),
    status: f.status,
    outcome: defined(f.outcome),
    errorCode: defined(f.error),
    stream: f.stream,
    usage,
    provenance: defined(f.provenance),
    costUsd: defined(f.cost_usd),
    durationMs: extra.durationMs ?? f.latency_ms,
    ttfbMs: extra.ttfbMs,
  } as unknown as RequestContext;
}
