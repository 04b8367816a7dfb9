/**
 * The console's JSON API under /console/api, for the page scripts, behind the session
 * cookie (401 without one) and, for anything that changes state, the CSRF token (403).
 *
 * Changes go through the admin API itself: /console/api/v1/... is handed to the same
 * routes with the admin token added on the server, so the console validates, audits and
 * publishes exactly like the API (and its errors name fields the same way). Only the
 * views the API lacks (overview, tenant summaries, per-model usage, CSV) are read here.
 */
import type { FastifyInstance, FastifyReply, InjectOptions } from 'fastify';
import { TENANT_ID_PATTERN } from '@lanekeeper/contract';
import type { AppDeps } from '../app.js';
import { BadRequestError, NotFoundError, UnauthorizedError } from '../errors.js';
import { decodeCursor, pageOf } from '../http/cursor.js';
import { CONSOLE_ACTOR } from '../http/auth.js';
import type { InternalCallMark } from '../http/internal-call.js';
import { toCsv } from './csv.js';
import {
  EXPORT_COLUMNS,
  overview,
  tenantSummaries,
  usageByModel,
  usageExport,
  windowStart,
} from './reports.js';
import { CSRF_HEADER, requireCsrf, sessionForCsrf, sessionsNamed, type Sessions } from './session.js';
import { PLAIN_TEXT_MESSAGE, isPlainText } from '../http/plain-text.js';

const DAY_MS = 86_400_000;
const MAX_EXPORT_DAYS = 400;
/** Who the audit log names for changes made in the console. */

const hidden = { hide: true };

function badField(field: string, message: string): BadRequestError {
  return new BadRequestError(`${field}: ${message}`, [{ field, message }]);
}

function tenantIdOf(value: unknown, field: string): string {
  if (typeof value !== 'string' || !TENANT_ID_PATTERN.test(value))
    throw badField(field, 'a tenant id: 1-63 characters of a-z, 0-9 and "-"');
  return value;
}

function dayOf(value: unknown, field: string): Date {
  const match = typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value);
  const date = match ? new Date(`${value}T00:00:00Z`) : new Date(NaN);
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== value)
    throw badField(field, 'a day as YYYY-MM-DD');
  return date;
}

/**
 * The tenant list's query, checked as the admin API checks its own: a page size that is
 * not a whole number (`1.5` reached PostgreSQL as LIMIT 2.5, a 500), or a field given twice,
 * is a 400 naming the field.
 */
const TENANTS_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    q: { type: 'string', maxLength: 100 },
    cursor: { type: 'string', maxLength: 200 },
    limit: { type: 'integer', minimum: 1, maximum: 200, default: 25 },
  },
} as const;

const USAGE_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: { granularity: { type: 'string', enum: ['hour', 'day'], default: 'hour' } },
} as const;

/**
 * The admin API path a /console/api/v1/* request is handed to, as its segments after /v1/:
 * the router's reading of the rest of the path (every percent-escape decoded, an encoded "/"
 * included), without empty segments. The console sends the admin API this path re-encoded,
 * never the client's spelling, which the router and the erase check could read differently.
 * "." and ".." are refused: inject resolves them as a browser would, so the admin API would
 * route another path than the one checked.
 */
function adminPathOf(rest: string): string[] {
  const segments = rest.split('/').filter((segment) => segment !== '');
  if (segments.some((segment) => segment === '.' || segment === '..'))
    throw new BadRequestError('a console API path holds no "." or ".." segments');
  return segments;
}

/** Registers the API routes, in an instance of their own (the hook below guards them all). */
export function registerConsoleApi(
  app: FastifyInstance,
  deps: AppDeps,
  sessions: Sessions,
  internal: InternalCallMark,
): void {
  app.addHook('onRequest', async (request) => {
    const named = await sessionsNamed(sessions, request.headers.cookie);
    if (named.length === 0) throw new UnauthorizedError('sign in to the console first');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      const presented = request.headers[CSRF_HEADER];
      requireCsrf(
        request,
        sessionForCsrf(named, presented).session,
        presented,
        deps.config.consoleSecureCookie === 'always',
      );
    }
  });

  /** Hands a request to the admin API with the admin token, and relays its answer. */
  async function toAdminApi(reply: FastifyReply, options: InjectOptions) {
    const res = await app.inject({
      ...options,
      headers: {
        ...internal.headers,
        authorization: `Bearer ${deps.config.adminToken}`,
        'x-lanekeeper-actor': CONSOLE_ACTOR,
        ...(options.payload === undefined ? {} : { 'content-type': 'application/json' }),
      },
    });
    const type = res.headers['content-type'];
    if (typeof type === 'string') reply.header('content-type', type);
    return reply.code(res.statusCode).send(res.body);
  }

  app.all<{ Params: { '*': string } }>('/console/api/v1/*', { config: hidden }, async (request, reply) => {
    const segments = adminPathOf(request.params['*']);
    // Erasure has its own route below, which insists on the typed confirmation. The check and
    // the call below see the same segments, so no spelling of the path reaches the admin
    // API's DELETE /v1/tenants/:id past it.
    if (request.method === 'DELETE' && segments.length === 2 && segments[0] === 'tenants') {
      throw new BadRequestError('erase a tenant with POST /console/api/tenants/{id}/erase');
    }
    const query = new URL(request.url, 'http://localhost').search;
    return toAdminApi(reply, {
      method: request.method as InjectOptions['method'],
      url: `/v1/${segments.map(encodeURIComponent).join('/')}${query}`,
      payload: request.body === undefined ? undefined : JSON.stringify(request.body),
    });
  });

  app.post<{ Params: { id: string }; Body: { confirm?: unknown } | undefined }>(
    '/console/api/tenants/:id/erase',
    { config: hidden },
    async (request, reply) => {
      const id = tenantIdOf(request.params.id, 'id');
      if (request.body?.confirm !== id) throw badField('confirm', `type the tenant id "${id}" to confirm`);
      return toAdminApi(reply, { method: 'DELETE', url: `/v1/tenants/${id}` });
    },
  );

  app.get('/console/api/overview', { config: hidden }, async () => overview(deps.pool));

  app.get<{ Querystring: { q?: string; cursor?: string; limit: number } }>(
    '/console/api/tenants',
    { schema: { querystring: TENANTS_QUERY }, config: hidden },
    async (request) => {
      const { q, cursor, limit } = request.query;
      if (q !== undefined && !isPlainText(q)) throw badField('q', PLAIN_TEXT_MESSAGE);
      const rows = await tenantSummaries(deps.pool, {
        search: q?.trim() || undefined,
        after: decodeCursor<string>(cursor, 'string'),
        limit: limit + 1,
      });
      return pageOf(rows, limit, (t) => t.id);
    },
  );

  app.get<{ Params: { id: string }; Querystring: { granularity: 'hour' | 'day' } }>(
    '/console/api/tenants/:id/usage-by-model',
    { schema: { querystring: USAGE_QUERY }, config: hidden },
    async (request) => {
      const tenant = tenantIdOf(request.params.id, 'id');
      const { granularity } = request.query;
      const count = granularity === 'day' ? 30 : 24;
      const from = windowStart(new Date(), granularity, count);
      return usageByModel(deps.pool, { tenant, from, granularity, count });
    },
  );

  app.get<{ Querystring: { tenant?: string; from?: string; to?: string } }>(
    '/console/api/export.csv',
    { config: hidden },
    async (request, reply) => {
      const tenant = tenantIdOf(request.query.tenant, 'tenant');
      const from = dayOf(request.query.from, 'from');
      const to = dayOf(request.query.to, 'to');
      if (to < from) throw badField('to', 'must not be before "from"');
      const end = new Date(to.getTime() + DAY_MS);
      if ((end.getTime() - from.getTime()) / DAY_MS > MAX_EXPORT_DAYS)
        throw badField('to', `a range spans at most ${MAX_EXPORT_DAYS} days`);
      const rows = await usageExport(deps.pool, tenant, from, end);
      // A typo or an erased tenant downloaded an empty file, reported as exported: these
      // lines build invoices, so a tenant that is not there is said to be not there. Usage
      // booked for an id with no tenant row (a proxy with a hand-written config) still exports.
      if (rows.length === 0) {
        const known = await deps.pool.query('SELECT 1 FROM tenants WHERE id = $1', [tenant]);
        if (known.rowCount === 0)
          throw new NotFoundError(`no tenant "${tenant}" (never created, or erased with its usage)`);
      }
      const name = `usage-${tenant}-${request.query.from}-${request.query.to}.csv`;
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="${name}"`)
        .send(toCsv(EXPORT_COLUMNS, rows));
    },
  );
}
