/**
 * Usage: GET /v1/tenants/{id}/usage (from the ledger's hourly rollups, billing-grade) and
 * GET /v1/tenants/{id}/usage/current-hour (live counters from the proxies' Redis buckets,
 * which lead the ledger by the stream's lag).
 */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { BadRequestError, NotFoundError, UpstreamStoreError } from '../errors.js';
import { tenantParams, usageQuery } from '../http/schemas.js';
import { currentHourKey, hourFromHash } from '../redis-layout.js';
import { getTenant } from '../stores/tenants.js';
import { totalOf, usageBuckets } from '../stores/usage-reports.js';

const DAY_MS = 86_400_000;
/** Widest range per request, so one call cannot ask for years of hourly rows. */
const MAX_SPAN_MS = { hour: 31 * DAY_MS, day: 400 * DAY_MS };
const DEFAULT_SPAN_MS = { hour: DAY_MS, day: 30 * DAY_MS };

const admin = (summary: string) => ({ auth: 'admin' as const, summary });

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
      const to = request.query.to ? new Date(request.query.to) : new Date();
      const from = request.query.from
        ? new Date(request.query.from)
        : new Date(to.getTime() - DEFAULT_SPAN_MS[granularity]);
      if (from >= to) {
        throw new BadRequestError('querystring.from: must be before "to"', [
          { field: 'querystring.from', message: 'must be before "to"' },
        ]);
      }
      if (to.getTime() - from.getTime() > MAX_SPAN_MS[granularity]) {
        const days = MAX_SPAN_MS[granularity] / DAY_MS;
        throw new BadRequestError(
          `querystring.from: at granularity=${granularity} a range spans at most ${days} days`,
          [
            {
              field: 'querystring.from',
              message: `at granularity=${granularity} a range spans at most ${days} days`,
            },
          ],
        );
      }
      if (!(await getTenant(deps.pool, id))) throw new NotFoundError(`tenant "${id}" does not exist`);
      const buckets = await usageBuckets(deps.pool, id, from, to, granularity);
      return {
        tenant: id,
        granularity,
        from: from.toISOString(),
        to: to.toISOString(),
        buckets,
        total: totalOf(buckets),
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/tenants/:id/usage/current-hour',
    { schema: { params: tenantParams }, config: admin("This hour's live counters from Redis") },
    async (request) => {
      const { id } = request.params;
      if (!(await getTenant(deps.pool, id))) throw new NotFoundError(`tenant "${id}" does not exist`);
      const now = Date.now();
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
