/**
 * GET /v1/config: what every proxy runs on, `{version, plans, tenants, pricing}` in exactly
 * the proxy's YAML shapes, authorised by the proxy token (never the admin token). The
 * version is the ETag; a matching If-None-Match gets 304 after one cheap query. The data
 * is read in one REPEATABLE READ snapshot, so version and content always agree.
 */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { currentConfigVersion, syncPricingVersion } from '../stores/config-version.js';
import { allPlans } from '../stores/plans.js';
import { priceVersionAt } from '../stores/pricing.js';
import { configTenants } from '../stores/tenants.js';

const etagOf = (version: number) => `"${version}"`;

/** True when an If-None-Match header names this ETag (or `*`). */
function matches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim().replace(/^W\//, '');
    return t === etag || t === '*';
  });
}

export function registerConfigRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.get(
    '/v1/config',
    { config: { auth: 'proxy', summary: 'Config snapshot for proxies (ETag, 304)' } },
    async (request, reply) => {
      // A price version that came into force by the clock bumps the version here at the latest.
      const inForce = await priceVersionAt(deps.pool);
      const bumped = await syncPricingVersion(deps.pool, inForce?.id ?? null);
      if (bumped !== undefined) await deps.publisher.publish(bumped);

      const ifNoneMatch = request.headers['if-none-match'];
      if (ifNoneMatch) {
        const etag = etagOf(await currentConfigVersion(deps.pool));
        if (matches(ifNoneMatch, etag)) return reply.code(304).header('etag', etag).send();
      }
      const client = await deps.pool.connect();
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const version = await currentConfigVersion(client);
        const plans = await allPlans(client);
        const tenants = await configTenants(client);
        const pricing = (await priceVersionAt(client))?.prices ?? {};
        await client.query('COMMIT');
        return reply
          .header('etag', etagOf(version))
          .header('cache-control', 'no-cache')
          .send({ version, plans, tenants, pricing });
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
  );
}
