/**
 * The OpenAPI 3.1 document at GET /openapi.json, built from the routes themselves (an
 * onRoute hook collects each route's JSON schemas), so the document cannot drift from what
 * the server validates. 3.1, because those schemas use JSON Schema keywords 3.0 lacks. A dependency such as @fastify/swagger would do the same with far
 * more surface; this needs only the four parts we declare.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';

/** Which token a route needs; declared in each route's `config.auth`. */
export type AuthKind = 'admin' | 'proxy' | 'none';

/**
 * The statuses a route answers when it succeeds, with what each means; 200 when a route
 * declares none. A client generated from the document checks the status it gets against
 * these, so a 201 documented as 200 fails it.
 */
export type Successes = Readonly<Record<number, string>>;

/** What a route declares of itself in its `config`, for the document and the auth hook. */
export interface RouteDoc {
  auth: AuthKind;
  summary?: string;
  success?: Successes;
  hide?: boolean;
}

/** An admin-token route's config. */
export const admin = (summary: string, success?: Successes): RouteDoc => ({
  auth: 'admin',
  summary,
  ...(success ? { success } : {}),
});

/** Statuses sent without a body. */
const NO_CONTENT = new Set([204, 304]);

interface Collected {
  method: string;
  path: string;
  auth: AuthKind;
  summary?: string;
  success: Successes;
  schema: Record<string, unknown>;
}

const toOpenApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/** The body of every error the control plane sends (errors.ts `errorBody`). */
const ERROR_BODY = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
    },
  },
};

/** What a token route answers before its handler runs (auth.ts `requireBearer`). */
const TOKEN_REFUSALS = {
  401: {
    description: 'No bearer token, or a wrong one (CP_ERR_UNAUTHORIZED)',
    headers: { 'WWW-Authenticate': { schema: { type: 'string' } } },
    content: { 'application/json': { schema: ERROR_BODY } },
  },
  429: {
    description:
      'Too many wrong tokens from this address (CP_ERR_TOO_MANY_ATTEMPTS): refused, even with the right token, until Retry-After has passed',
    headers: { 'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer', minimum: 1 } } },
    content: { 'application/json': { schema: ERROR_BODY } },
  },
};

/** Starts collecting routes; call before any route is registered. Returns the document builder. */
export function collectOpenApi(app: FastifyInstance, info: { title: string; version: string }): () => object {
  const routes: Collected[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter((m) => m !== 'HEAD');
    const config = (route.config ?? {}) as Partial<RouteDoc>;
    if (config.hide) return;
    for (const method of methods) {
      routes.push({
        method: method.toLowerCase(),
        path: toOpenApiPath(route.url),
        auth: config.auth ?? 'none',
        summary: config.summary,
        success: config.success ?? { 200: 'OK' },
        schema: (route.schema ?? {}) as Record<string, unknown>,
      });
    }
  });
  return () => {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const r of routes) {
      const parameters: unknown[] = [];
      for (const [part, where] of [
        ['params', 'path'],
        ['querystring', 'query'],
      ] as const) {
        const s = r.schema[part] as { properties?: Record<string, unknown>; required?: string[] } | undefined;
        for (const [name, schema] of Object.entries(s?.properties ?? {})) {
          parameters.push({
            name,
            in: where,
            required: where === 'path' || (s?.required ?? []).includes(name),
            schema,
          });
        }
      }
      const operation: Record<string, unknown> = {
        ...(r.summary ? { summary: r.summary } : {}),
        ...(parameters.length ? { parameters } : {}),
        ...(r.schema.body
          ? { requestBody: { required: true, content: { 'application/json': { schema: r.schema.body } } } }
          : {}),
        responses: {
          ...(r.auth === 'none' ? {} : TOKEN_REFUSALS),
          ...Object.fromEntries(
            Object.entries(r.success).map(([code, description]) => {
              const schema = (r.schema.response as Record<string, unknown> | undefined)?.[code];
              return [
                code,
                NO_CONTENT.has(Number(code))
                  ? { description }
                  : { description, content: { 'application/json': { schema: schema ?? {} } } },
              ];
            }),
          ),
        },
        ...(r.auth === 'none' ? { security: [] } : { security: [{ [`${r.auth}Token`]: [] }] }),
      };
      (paths[r.path] ??= {})[r.method] = operation;
    }
    return {
      openapi: '3.1.0',
      info,
      components: {
        securitySchemes: {
          adminToken: { type: 'http', scheme: 'bearer', description: 'LANEKEEPER_ADMIN_TOKEN' },
          proxyToken: { type: 'http', scheme: 'bearer', description: 'LANEKEEPER_PROXY_TOKEN' },
        },
      },
      paths,
    };
  };
}
