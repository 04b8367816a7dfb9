/**
 * Usage: GET /v1/tenants/{id}/usage (from the ledger's hourly rollups, billing-grade),
 * GET /v1/tenants/{id}/usage/by-model (the same ledger split by model, from its rows) and
 * GET /v1/tenants/{id}/usage/current-hour (live counters from the proxies' Redis buckets,
 * which lead the ledger by the stream's lag).
 */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { BadRequestError, NotFoundError, UpstreamStoreError } from '../errors.js';
import { tenantParams, usageByModelQuery, usageQuery } from '../http/schemas.js';
import { currentHourKey, hourFromHash } from '../redis-layout.js';
import { getTenant } from '../stores/tenants.js';
import { usageBuckets, usageByModel } from '../stores/usage-reports.js';
import { admin } from '../http/openapi.js';

const DAY_MS = 86_400_000;
/**
 * Widest range per request, so one call cannot ask for years of hourly rows. The split by
 * model sums ledger rows (one per request), so it gets the hourly limit.
 */
const MAX_SPAN_MS = { hour: 31 * DAY_MS, day: 400 * DAY_MS, model: 31 * DAY_MS };
const DEFAULT_SPAN_MS = { hour: DAY_MS, day: 30 * DAY_MS, model: DAY_MS };

function badRange(message: string): BadRequestError {
  return new BadRequestError(`querystring.from: ${message}`, [{ field: 'querystring.from', message }]);
}

/** [from, to) from the query, defaulted and bounded for `kind`. */
function rangeOf(
  query: { from?: string; to?: string },
  kind: keyof typeof MAX_SPAN_MS,
): { from: Date; to: Date } {
  const to = query.to ? new Date(query.to) : new Date();
  const from = query.from ? new Date(query.from) : new Date(to.getTime() - DEFAULT_SPAN_MS[kind]);
  if (from >= to) throw badRange('must be before "to"');
  if (to.getTime() - from.getTime() > MAX_SPAN_MS[kind]) {
    const days = MAX_SPAN_MS[kind] / DAY_MS;
    const what = kind === 'model' ? 'by model' : `at granularity=${kind}`;
    throw badRange(`${what} a range spans at most ${days} days`);
  }
  return { from, to };
}

async function requireTenant(deps: AppDeps, id: string): Promise<void> {
  if (!(await getTenant(deps.pool, id))) throw new NotFoundError(`tenant "${id}" does not exist`);
}

export function registerUsageRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.get<{
    Params: { id: string };
    Querystring: { from?: string; to?: string; granularity: 'hour' | 'day' };
  }>(
    '/v1/tenants/:id/usage',
    {
      schema: { params: tenantParams, querystring: usageQuery },
      config: admin('Usage from the ledger by hour or day'),
    },
    async (request) => {
      const { id } = request.params;
      const { granularity } = request.query;
      const { from, to } = rangeOf(request.query, granularity);
      await requireTenant(deps, id);
      const { parts: buckets, total } = await usageBuckets(deps.pool, id, from, to, granularity);
      return { tenant: id, granularity, from: from.toISOString(), to: to.toISOString(), buckets, total };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { from?: string; to?: string } }>(
    '/v1/tenants/:id/usage/by-model',
    {
      schema: { params: tenantParams, querystring: usageByModelQuery },
      config: admin('Usage from the ledger by model (at most 31 days)'),
    },
    async (request) => {
      const { id } = request.params;
      const { from, to } = rangeOf(request.query, 'model');
      await requireTenant(deps, id);
      const { parts: models, total } = await usageByModel(deps.pool, id, from, to);
      return { tenant: id, from: from.toISOString(), to: to.toISOString(), models, total };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/tenants/:id/usage/current-hour',
    { schema: { params: tenantParams }, config: admin("This hour's live counters from Redis") },
    async (request) => {
      const { id } = request.params;
      await requireTenant(deps, id);
      const now = Date.now();
      if (!deps.redis) {
        throw new UpstreamStoreError(
          'no live counters: the control plane runs without Redis (REDIS_URL unset); the ledger has the booked usage',
        );
      }
      try {
        const hash = await deps.redis.hgetall(currentHourKey(deps.config.keyPrefix, id, now));
        return hourFromHash(id, now, hash);
      } catch (error) {
        throw new UpstreamStoreError(
          `could not read the current hour from Redis: ${(error as Error).message}`,
        );
      }
    },
  );
}
