/**
 * The control plane's spans, loaded only when tracing is on (tracing.ts): one SERVER span per
 * API request with HTTP semantic conventions, continuing an incoming traceparent, and one span
 * per booked ledger batch. Bodies, tokens and query strings are never recorded.
 */
import type { TelemetrySettings } from '@lanekeeper/contract';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  startTracing,
  type Span,
  type TracingOptions,
} from '@lanekeeper/contract/telemetry-provider';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { tenantOf, type ControlPlaneTracing } from './tracing.js';

const HEADER_GETTER = {
  keys: (carrier: FastifyRequest['headers']) => Object.keys(carrier),
  get: (carrier: FastifyRequest['headers'], key: string) => carrier[key],
};

export function createControlPlaneTracing(
  settings: TelemetrySettings,
  options: TracingOptions,
): ControlPlaneTracing {
  const handle = startTracing(settings, options);
  const spans = new WeakMap<FastifyRequest, Span>();

  function open(request: FastifyRequest): void {
    const parent =
      request.headers.traceparent === undefined
        ? ROOT_CONTEXT
        : handle.propagator.extract(ROOT_CONTEXT, request.headers, HEADER_GETTER);
    const span = handle.tracer.startSpan(
      request.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': request.method,
          'url.path': request.url.split('?', 1)[0] ?? '/',
          'url.scheme': request.protocol,
          'server.address': request.hostname,
          // From the Host header, as server.address is; the listening port when it names none.
          'server.port': request.port ?? request.socket.localPort ?? 0,
          'client.address': request.ip,
        },
      },
      parent,
    );
    spans.set(request, span);
  }

  function close(request: FastifyRequest, reply: FastifyReply): void {
    const span = spans.get(request);
    if (!span) return;
    const route = request.routeOptions.url;
    span.setAttribute('http.response.status_code', reply.statusCode);
    if (route !== undefined) {
      span.setAttribute('http.route', route);
      span.updateName(`${request.method} ${route}`);
    }
    // The tenant a call is about, as the proxy's spans name it. The path's id is only
    // checked against the pattern here (a call refused by validation ran no schema).
    const tenant = tenantOf(route, request.params);
    if (tenant !== undefined) span.setAttribute('lanekeeper.tenant', tenant);
    if (reply.statusCode >= 500) {
      span.setAttribute('error.type', String(reply.statusCode));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }

  return {
    traceHttp(app) {
      app.addHook('onRequest', async (request) => open(request));
      app.addHook('onResponse', async (request, reply) => close(request, reply));
    },
    traceIdOf(request) {
      const context = spans.get(request)?.spanContext();
      // An unsampled request's id names no trace a backend holds.
      return context && context.traceFlags & 1 ? context.traceId : undefined;
    },
    traceUnrouted(request, reply) {
      open(request);
      close(request, reply);
    },
    async traceBatch(entries, book) {
      const span = handle.tracer.startSpan('lanekeeper.ledger.book', {
        kind: SpanKind.CONSUMER,
        attributes: { 'messaging.system': 'redis', 'messaging.batch.message_count': entries },
      });
      try {
        const result = await book();
        span.setAttributes({
          'lanekeeper.ledger.inserted': result.inserted,
          'lanekeeper.ledger.duplicates': result.duplicates,
          'lanekeeper.ledger.rejected': result.rejected,
        });
        return result;
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).name });
        throw error;
      } finally {
        span.end();
      }
    },
    shutdown: () => handle.shutdown(),
  };
}
