/** The RequestContext a request starts with: what the socket says, nothing decided yet. */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import type { RequestContext } from '../context.js';
import type { Runtime } from '../runtime.js';

const EMPTY = Buffer.alloc(0);

export function newContext(
  req: IncomingMessage,
  runtime: Runtime,
  target: { path: string; query: string },
): RequestContext {
  const { path, query: search } = target;
  return {
    id: randomUUID(),
    startedAt: performance.now(),
    receivedAt: Date.now(),
    runtime,
    clientHeaders: req.headers,
    remoteAddress: req.socket.remoteAddress ?? 'unknown',
    secure: Boolean((req.socket as TLSSocket).encrypted),
    request: { method: req.method ?? 'GET', path, query: search, body: undefined },
    rawBody: EMPTY,
    bodyTooLarge: false,
    bodyChanged: false,
    upstreamQuery: search,
    upstreamHeaders: {},
    dialect: undefined,
    route: undefined,
    allowedBy: undefined,
    tenant: undefined,
    apiKeyHash: undefined,
    modelRequested: undefined,
    model: undefined,
    modelFallbacks: [],
    upstream: undefined,
    translator: undefined,
    upstreamDialect: undefined,
    upstreamRoute: undefined,
    upstreamModel: undefined,
    price: undefined,
    stream: false,
    usageInjected: false,
    estimatedPromptTokens: 0,
    maxOutputTokens: undefined,
    outputChoices: 1,
    clientCappedOutput: false,
    reservation: undefined,
    limitHeaders: {},
    status: undefined,
    responseHeaders: undefined,
    usage: {},
    provenance: undefined,
    costUsd: undefined,
    outcome: undefined,
    upstreamEnded: false,
    upstreamUnanswered: false,
    cutoff: undefined,
    errorCode: undefined,
    ttfbMs: undefined,
    durationMs: undefined,
    trace: undefined,
    judgedBeforeBody: false,
  };
}
