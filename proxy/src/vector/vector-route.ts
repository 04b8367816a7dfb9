/**
 * The tenant-scoped Qdrant route. An app points its Qdrant client at
 * `http://proxy:8080/qdrant` with its tenant key; after the proxy has identified the tenant,
 * `handle` confines the call to that tenant and forwards it to the real Qdrant:
 *
 * - `collection` mode: logical names (`documents`) become `tenant_{id}_{name}`;
 * - `partition` mode: the shared `lanekeeper_{name}` with the tenant filter on every read and
 *   write, `tenant_id` set on every payload write and stripped from every returned payload.
 *
 * It is independent of the HTTP server: the server calls `matches` and `handle` and writes the
 * returned status, headers and body. Refusals use Qdrant's error envelope; every call is
 * counted in lanekeeper_vector_requests_total{tenant, operation, status}.
 */
import { createOutageLog, nestsDeeperThan } from '@lanekeeper/contract';
import { TENANT_ID_PATTERN, type Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import { HANDLERS, UpstreamAnswer, type HandlerContext, type HandlerOutcome } from './vector-handlers.js';
import { classifyOperation, type VectorOperation } from './vector-operations.js';
import { errorEnvelope, forbidden, okEnvelope, VectorRefusal, badRequest } from './vector-refusal.js';
import { checkClientBody, asObject, stripTenantField } from './tenant-scope.js';
import { createVectorUpstream, type UpstreamReply } from './vector-upstream.js';

/** The `vector` block of the proxy config. */
export type VectorConfig = NonNullable<Config['vector']>;

/** The tenant as the route needs it: its id and its plan's features (the route needs `rag`). */
export interface VectorTenant {
  id: string;
  features: readonly string[];
}

/** A request as the server read it; `path` is what follows path_prefix. */
export interface VectorRequest {
  method: string;
  path: string;
  /** The query string (with or without "?"), or already parsed. */
  query?: string | URLSearchParams | Record<string, string | string[] | undefined>;
  headers?: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The deepest the body may nest: the proxy's max_json_depth, as for any other body. */
  maxJsonDepth: number;
}

/** What to send back to the client. */
export interface VectorResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** The route as the server uses it. */
export interface VectorRoute {
  /** True when a request path belongs to this route (it starts with path_prefix). */
  matches(path: string): boolean;
  /** Strips path_prefix from a full request path (call after `matches`). */
  stripPrefix(path: string): string;
  handle(tenant: VectorTenant, request: VectorRequest): Promise<VectorResponse>;
  close(): Promise<void>;
}

/** Logs a route problem; pino's Logger fits. */
export interface VectorLogger {
  warn(details: Record<string, unknown>, message: string): void;
  info(details: Record<string, unknown>, message: string): void;
}

/** The plan feature a tenant needs to use the route. */
export const RAG_FEATURE = 'rag';
/** Query parameters passed to Qdrant; everything else is dropped. */
const FORWARDED_QUERY = ['wait', 'ordering', 'timeout', 'consistency'];
const JSON_HEADERS = { 'content-type': 'application/json' };

function parseQuery(query: VectorRequest['query'], fromPath: string): URLSearchParams {
  const all = new URLSearchParams(fromPath);
  const extra =
    query instanceof URLSearchParams
      ? query
      : typeof query === 'string'
        ? new URLSearchParams(query.replace(/^\?/, ''))
        : new URLSearchParams(
            Object.entries(query ?? {}).flatMap(([k, v]) =>
              v === undefined ? [] : (Array.isArray(v) ? v : [v]).map((x): [string, string] => [k, x]),
            ),
          );
  for (const [k, v] of extra) all.append(k, v);
  const out = new URLSearchParams();
  for (const [k, v] of all) if (FORWARDED_QUERY.includes(k)) out.append(k, v);
  return out;
}

function parseBody(body: Buffer, maxDepth: number): Record<string, unknown> {
  if (body.length === 0) return {};
  const text = body.toString('utf8');
  // Before parsing, as parse-request does for the AI routes, which this path does not go
  // through: a body of `[[[[…` held the event loop for seconds in JSON.parse, and one that
  // parsed overflowed the stack of the walks after it (a 502 for a 3,000-level filter).
  if (nestsDeeperThan(text, maxDepth))
    throw badRequest(`Format error in JSON body: nested more than ${maxDepth} levels deep`);
  try {
    return asObject(JSON.parse(text), 'the body');
  } catch (error) {
    if (error instanceof VectorRefusal) throw error;
    throw badRequest(`Format error in JSON body: ${(error as Error).message}`);
  }
}

/** Creates the route for one `vector` config block. */
export function createVectorRoute(deps: {
  config: VectorConfig;
  metrics: Metrics;
  logger: VectorLogger;
}): VectorRoute {
  const { config, metrics, logger } = deps;
  const prefix = config.path_prefix.replace(/\/+$/, '');
  const partition = config.mode === 'partition';
  const templates = new Map(config.templates.map((t) => [t.name, t]));
  // Qdrant out of reach is an outage of a dependency: a warning, a summary a minute, one
  // line when it answers again; it wrote a warning with a stack for every call.
  const outage = createOutageLog(logger, 'qdrant');
  const upstream = createVectorUpstream({
    url: config.url,
    apiKey: config.api_key,
    maxResponseBytes: config.max_response_bytes,
  });

  function physicalName(tenant: string, logical: unknown): string {
    if (typeof logical !== 'string' || !templates.has(logical)) {
      if (typeof logical === 'string' && /^(tenant|lanekeeper)_/.test(logical)) {
        throw forbidden(
          'physical collection names are not addressable: use the logical name, e.g. "documents"',
        );
      }
      throw new VectorRefusal(
        403,
        'PROXY_ERR_VECTOR_UNKNOWN_COLLECTION',
        `collection ${JSON.stringify(logical)} is not available; this deployment offers: ${[...templates.keys()].join(', ')}`,
      );
    }
    return partition ? `lanekeeper_${logical}` : `tenant_${tenant}_${logical}`;
  }

  /** Qdrant's answer, with our physical names turned back into logical ones and tenant_id stripped. */
  function mapReply(tenant: string, reply: UpstreamReply, started: number): VectorResponse {
    if (reply.json === undefined) {
      return {
        status: reply.status,
        headers: { 'content-type': reply.contentType || 'text/plain' },
        body: reply.body,
      };
    }
    const envelope = reply.json as { result?: unknown; status?: unknown };
    if (envelope.status && typeof envelope.status === 'object') {
      const message = String((envelope.status as { error?: unknown }).error ?? 'error')
        .split(`tenant_${tenant}_`)
        .join('')
        .split('lanekeeper_')
        .join('');
      return { status: reply.status, headers: JSON_HEADERS, body: errorEnvelope(message, started) };
    }
    if (partition) stripTenantField(envelope.result);
    return { status: reply.status, headers: JSON_HEADERS, body: Buffer.from(JSON.stringify(envelope)) };
  }

  async function listCollections(tenant: string): Promise<HandlerOutcome> {
    const reply = await upstream.request('GET', '/collections', new URLSearchParams());
    if (reply.status >= 400 || !reply.json) return { reply };
    const names = (
      (reply.json as { result: { collections: { name: string }[] } }).result?.collections ?? []
    ).map((c) => c.name);
    const mine = [...templates.keys()].filter((logical) => names.includes(physicalName(tenant, logical)));
    return { result: { collections: mine.map((name) => ({ name })) } };
  }

  async function run(tenant: string, op: VectorOperation, request: VectorRequest, query: URLSearchParams) {
    if (op.name === 'root' || op.name === 'health') {
      return { reply: await upstream.request('GET', request.path.split('?')[0]!, new URLSearchParams()) };
    }
    if (op.name === 'list_collections') return listCollections(tenant);
    const body = parseBody(request.body, request.maxJsonDepth);
    checkClientBody(body);
    const ctx: HandlerContext = {
      tenant,
      partition,
      op,
      body,
      query,
      upstream,
      physical: (logical) => physicalName(tenant, logical),
      template: (logical) => templates.get(logical)!,
    };
    ctx.physical(op.collection); // refuses unknown and physical-looking names before anything else
    return HANDLERS[op.name]!(ctx);
  }

  return {
    matches(path) {
      const p = path.split('?')[0]!;
      return p === prefix || p.startsWith(`${prefix}/`);
    },
    stripPrefix(path) {
      return path.startsWith(prefix) ? path.slice(prefix.length) || '/' : path;
    },
    async handle(tenant, request) {
      const started = performance.now();
      let operation = 'refused';
      let response: VectorResponse;
      try {
        if (!TENANT_ID_PATTERN.test(tenant.id))
          throw forbidden('this tenant id cannot be mapped to Qdrant collections');
        if (!tenant.features.includes(RAG_FEATURE)) {
          throw new VectorRefusal(
            403,
            'PROXY_ERR_VECTOR_FEATURE',
            `the tenant's plan does not include the "${RAG_FEATURE}" feature`,
          );
        }
        const [path, pathQuery = ''] = request.path.split('?', 2) as [string, string?];
        const op = classifyOperation(request.method, path);
        operation = op.name;
        const outcome = await run(tenant.id, op, { ...request, path }, parseQuery(request.query, pathQuery));
        response =
          'reply' in outcome
            ? mapReply(tenant.id, outcome.reply, started)
            : { status: 200, headers: JSON_HEADERS, body: okEnvelope(outcome.result, started) };
        outage.succeeded();
      } catch (error) {
        if (error instanceof UpstreamAnswer) {
          outage.succeeded();
          response = mapReply(tenant.id, error.reply, started);
        } else if (error instanceof VectorRefusal) {
          if (error.code === 'PROXY_ERR_VECTOR_UPSTREAM') outage.failed(error.message);
          else if (error.status >= 500)
            logger.warn({ tenant: tenant.id, operation, err: error.message }, 'vector call failed');
          response = {
            status: error.status,
            headers: JSON_HEADERS,
            body: errorEnvelope(error.message, started),
          };
        } else {
          logger.warn({ tenant: tenant.id, operation, err: (error as Error).message }, 'vector route failed');
          response = {
            status: 502,
            headers: JSON_HEADERS,
            body: errorEnvelope('Lanekeeper could not complete the Qdrant call', started),
          };
        }
      }
      metrics.vectorCalls.inc({
        tenant: metrics.tenantLabel(tenant.id),
        operation,
        status: String(response.status),
      });
      return response;
    },
    close: () => upstream.close(),
  };
}
