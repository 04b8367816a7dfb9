/**
 * The HTTP surface: a Fastify app with strict JSON-schema validation, one error shape, the
 * admin routes behind the admin token, GET /v1/config behind the proxy token, and the open
 * operational endpoints (/healthz, /readyz, /metrics, /openapi.json), and the web console
 * at /console (console/plugin.ts). Routes are thin;
 * the stores and `commitChange` do the work.
 */
import { randomUUID } from 'node:crypto';
import { createOutageLog, nestsDeeperThan } from '@lanekeeper/contract';
import { tenantOf, type ControlPlaneTracing } from './tracing.js';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { ConfigPublisher } from './changes.js';
import type { ControlPlaneConfig } from './config.js';
import { consolePlugin, isConsoleUrl, setConsoleHeaders } from './console/plugin.js';
import { ApiError, errorBody } from './errors.js';
import { requireBearer } from './http/auth.js';
import { createFailureThrottle } from './http/failure-throttle.js';
import { createInternalCallMark } from './http/internal-call.js';
import { createLimitedServer } from './http/listener.js';
import { registerDocsViewer } from './http/docs-viewer.js';
import { collectOpenApi } from './http/openapi.js';
import { fieldProblems, installValidation } from './http/validation.js';
import type { LedgerConsumer } from './ledger/consumer.js';
import type { Metrics } from './metrics.js';
import type { PriceSwitch } from './price-switch.js';
import { registerAuditRoutes } from './routes/audit.js';
import { registerCollectionRoutes } from './routes/collections.js';
import { registerConfigRoutes } from './routes/config.js';
import { registerKeyRoutes } from './routes/keys.js';
import { registerPlanRoutes } from './routes/plans.js';
import { registerPricingRoutes } from './routes/pricing.js';
import { registerTenantRoutes } from './routes/tenants.js';
import { registerUsageEventRoutes } from './routes/usage-events.js';
import { registerUsageRoutes } from './routes/usage.js';
import { recordAudit } from './stores/audit.js';
import { getTenant } from './stores/tenants.js';
import type { VectorStore } from './stores/vector-store.js';

/** Everything a route may use. */
export interface AppDeps {
  config: ControlPlaneConfig;
  pool: pg.Pool;
  /** The shared command connection (not the ledger's blocking one); absent without REDIS_URL. */
  redis?: Redis;
  publisher: ConfigPublisher;
  metrics: Metrics;
  logger: Logger;
  /** Absent when QDRANT_URL is unset: no collections, and erasure skips the vector step. */
  vectors?: VectorStore;
  priceSwitch: PriceSwitch;
  ledger?: LedgerConsumer;
  /** Set when OTEL_* turned tracing on (tracing.ts). */
  tracing?: ControlPlaneTracing;
}

/** The deepest a JSON body may nest: the API's own bodies nest a handful of levels. */
const MAX_BODY_DEPTH = 64;

/** A body the JSON parser refuses: Fastify answers it 400 through the error handler. */
function badBody(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400 });
}

/**
 * The database could not be reached (refused, reset, timed out, shutting down: SQLSTATE
 * classes 08 and 57P): an outage of a dependency, not a failed call. Every proxy polls, so
 * such a call wrote an error line each (63 in two minutes with two proxies).
 */
export function databaseUnreachable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    if (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EPIPE|EAI_AGAIN)$/.test(code))
      return true;
    if (code.startsWith('08') || /^57P0[1-3]$/.test(code)) return true;
  }
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(
    message,
  );
}

const PG_ERRORS: Record<string, { status: number; code: string }> = {
  '23503': { status: 409, code: 'CP_ERR_CONFLICT' }, // foreign key: a concurrent change removed what this needs
  '23505': { status: 409, code: 'CP_ERR_CONFLICT' },
};

/**
 * Headers every answer carries: none is to be read as anything but the type it names (a JSON
 * error echoing a path must never be sniffed as HTML), and under /console the console's own.
 */
function setSecurityHeaders(request: FastifyRequest, reply: FastifyReply): void {
  reply.header('x-content-type-options', 'nosniff');
  if (isConsoleUrl(request.url)) setConsoleHeaders(reply);
}

/** Builds the app (not yet listening). */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const observe = (request: FastifyRequest, reply: FastifyReply, seconds: number) =>
    deps.metrics.apiLatency.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: String(reply.statusCode),
      },
      seconds,
    );
  const app = Fastify({
    logger: false,
    // Unique across replicas and restarts (Fastify's default counts from req-1), and never
    // the client's: the id in a 500's message finds its line in the log.
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    bodyLimit: 1024 * 1024,
    serverFactory: (handler) =>
      createLimitedServer(handler, {
        requestTimeoutMs: deps.config.requestTimeoutMs,
        maxConnections: deps.config.maxConnections,
      }),
    return503OnClosing: true,
    // Forwarded headers only from the configured proxies (config.ts); any client can send them.
    trustProxy: deps.config.trustedProxies ? [...deps.config.trustedProxies] : false,
    // A path Fastify's router cannot read (bad percent-encoding, a parameter over 100
    // characters) never reaches a route or a hook: without this it was answered in Fastify's
    // own error shape. The message does not echo the path back.
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      const started = performance.now();
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      setSecurityHeaders(request, reply);
      reply
        .code(tooLong ? 414 : 400)
        .send(
          errorBody(
            'CP_ERR_BAD_REQUEST',
            tooLong
              ? 'a path segment is longer than 100 characters'
              : 'the URL path is not valid (bad percent-encoding)',
          ),
        );
      // No hook sees such a request, so it is counted and traced here as the hooks would
      // have done (a scan of malformed paths shows in the dashboards); its time is from the
      // refusal to the answer, since Fastify starts no reply clock for it.
      observe(request, reply, (performance.now() - started) / 1000);
      deps.tracing?.traceUnrouted(request, reply);
      return reply;
    },
  });
  deps.tracing?.traceHttp(app);
  installValidation(app);
  // An empty body with a JSON content type (curl -H on every call) means "no body", not an error.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    // Counted before JSON.parse, which spends ~0.1 s on 1 MiB of `[`: bodies are parsed
    // before a route is matched or a token checked (an unknown path, the sign-in form).
    if (nestsDeeperThan(text, MAX_BODY_DEPTH))
      return done(badBody(`body nests arrays and objects deeper than ${MAX_BODY_DEPTH} levels`), undefined);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(badBody(`body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });
  const openapi = collectOpenApi(app, { title: 'Lanekeeper control plane', version: '1' });

  // PostgreSQL unreachable: a warning, a summary a minute, and a line once a connection is
  // made again (the pool connects anew after its clients failed).
  const database = createOutageLog(deps.logger, 'postgres');
  if (typeof deps.pool.on === 'function') deps.pool.on('connect', () => database.succeeded());
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ApiError) {
      return reply.code(error.status).send(errorBody(error.code, error.message, error.details));
    }
    if (error.validation) {
      const details = fieldProblems(error.validation, error.validationContext ?? 'request');
      const message = details.map((d) => `${d.field}: ${d.message}`).join('; ');
      return reply.code(400).send(errorBody('CP_ERR_BAD_REQUEST', message, details));
    }
    if (databaseUnreachable(error)) {
      database.failed(error);
      return reply
        .code(503)
        .header('retry-after', '5')
        .send(errorBody('CP_ERR_STORE_UNAVAILABLE', 'the database cannot be reached; retry shortly'));
    }
    const pgCode = (error as { code?: string }).code;
    // A deadlock or a serialization failure: PostgreSQL rolled the transaction back, and the
    // same call again succeeds. Not a fault of the control plane's to log with a stack.
    if (pgCode === '40P01' || pgCode === '40001') {
      return reply
        .code(503)
        .header('retry-after', '1')
        .send(errorBody('CP_ERR_RETRY', 'a concurrent change conflicted with this one; retry it'));
    }
    if (pgCode && PG_ERRORS[pgCode]) {
      const { status, code } = PG_ERRORS[pgCode];
      return reply.code(status).send(errorBody(code, (error as Error).message));
    }
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.code(error.statusCode).send(errorBody('CP_ERR_BAD_REQUEST', error.message));
    }
    deps.logger.error(
      {
        err: error,
        request_id: request.id,
        tenant: tenantOf(request.routeOptions.url, request.params),
        trace_id: deps.tracing?.traceIdOf(request),
        // The path only: a query string may carry a token.
        url: request.url.split('?', 1)[0],
      },
      'request failed',
    );
    return reply
      .code(500)
      .send(
        errorBody('CP_ERR_INTERNAL', `internal error; see the control plane log (request_id ${request.id})`),
      );
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send(errorBody('CP_ERR_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );

  // One count of wrong admin tokens per address, whether tried at the console's sign-in or as a bearer.
  const guard = { throttle: createFailureThrottle(deps.pool), internal: createInternalCallMark() };
  // Client addresses are personal data: none is kept much past its minute, even with no calls.
  const sweeping = setInterval(() => {
    guard.throttle.sweep().catch((error: unknown) => {
      deps.logger.debug({ err: error }, 'wrong-token sweep failed; the next one retries');
    });
  }, 60_000).unref();
  app.addHook('onClose', async () => clearInterval(sweeping));

  app.addHook('onSend', async (request, reply, payload) => {
    setSecurityHeaders(request, reply);
    return payload;
  });

  app.addHook('onResponse', async (request, reply) => {
    // The console's call into the admin API is part of the console request, which is counted
    // itself: counting both showed every console change twice.
    if (guard.internal.isInternal(request)) return;
    observe(request, reply, reply.elapsedTime / 1000);
  });

  await app.register(async (admin) => {
    admin.addHook('onRequest', requireBearer(deps.config.adminToken, 'admin', guard));
    registerPlanRoutes(admin, deps);
    registerTenantRoutes(admin, deps);
    registerKeyRoutes(admin, deps);
    registerPricingRoutes(admin, deps);
    registerUsageRoutes(admin, deps);
    registerAuditRoutes(admin, deps);
    if (deps.vectors) {
      registerCollectionRoutes(admin, {
        vectorStore: deps.vectors,
        tenantExists: async (id) => (await getTenant(deps.pool, id)) !== undefined,
        audit: (entry) => recordAudit(deps.pool, entry),
      });
    }
  });
  await app.register(async (proxies) => {
    const proxyTokens = [deps.config.proxyToken, deps.config.previousProxyToken].filter(
      (t): t is string => t !== undefined,
    );
    proxies.addHook('onRequest', requireBearer(proxyTokens, 'proxy'));
    registerConfigRoutes(proxies, deps);
    registerUsageEventRoutes(proxies, deps);
  });

  await app.register(consolePlugin(deps, guard));

  app.get('/healthz', { config: { hide: true } }, async () => ({ ok: true }));
  app.get('/readyz', { config: { hide: true } }, async (_request, reply) => {
    const [postgres, redis] = await Promise.all([
      deps.pool.query('SELECT 1').then(
        () => true,
        () => false,
      ),
      // Without REDIS_URL there is no Redis to wait for: proxies poll and post usage over HTTP.
      deps.redis
        ? deps.redis.ping().then(
            (r) => r === 'PONG',
            () => false,
          )
        : ('not configured' as const),
    ]);
    const ready = postgres && redis !== false;
    return reply.code(ready ? 200 : 503).send({ ready, postgres, redis });
  });
  app.get('/metrics', { config: { hide: true } }, async (_request, reply) => {
    await deps.ledger?.lag().catch(() => undefined);
    return reply
      .header('content-type', deps.metrics.registry.contentType)
      .send(await deps.metrics.registry.metrics());
  });
  app.get('/openapi.json', { config: { hide: true } }, async () => openapi());
  registerDocsViewer(app);
  return app;
}
