/**
 * Pricing: GET /v1/pricing (the version in force and every version) and
 * POST /v1/pricing/versions (a whole new table with the time it takes effect). A version
 * dated in the future reaches proxies when its time comes (see pricing-switch.ts).
 */
import type { FastifyInstance } from 'fastify';
import { priceTableSchema, type Price } from '@lanekeeper/contract';
import type { AppDeps } from '../app.js';
import { commitChange } from '../changes.js';
import { actorOf } from '../http/auth.js';
import { parseWith, pricingVersionBody } from '../http/schemas.js';
import { syncPricingVersion } from '../stores/config-version.js';
import { insertPriceVersion, listPriceVersions, priceVersionAt } from '../stores/pricing.js';
import { admin } from '../http/openapi.js';

export function registerPricingRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.get('/v1/pricing', { config: admin('The price table in force and all versions') }, async () => {
    const versions = await listPriceVersions(deps.pool);
    const now = Date.now();
    const current = versions.find((v) => Date.parse(v.effective_from) <= now) ?? null;
    return { current, versions };
  });

  app.post<{ Body: { effective_from: string; prices: Record<string, unknown> } }>(
    '/v1/pricing/versions',
    {
      schema: { body: pricingVersionBody },
      config: admin('Add a price table version', { 201: 'The version, added' }),
    },
    async (request, reply) => {
      const prices: Record<string, Price> = parseWith(priceTableSchema, request.body.prices, 'body.prices');
      const effectiveFrom = new Date(request.body.effective_from);
      const created = await commitChange(deps, actorOf(request), async (db) => {
        const version = await insertPriceVersion(db, effectiveFrom, prices);
        const inForce = await priceVersionAt(db);
        await syncPricingVersion(db, inForce?.id ?? null);
        return {
          result: version,
          audit: { action: 'pricing.create', resource: `pricing/versions/${version.id}`, after: version },
          affectsConfig: true,
        };
      });
      deps.priceSwitch.rearm();
      return reply.code(201).send(created);
    },
  );
}
