/**
 * GET /v1/config: what every proxy runs on, the contract's ConfigSnapshot: `{version, plans,
 * tenants, pricing}` in exactly the proxy's YAML shapes (plus `vector: {mode, templates}`
 * when Qdrant is configured), authorised by the proxy token (never the admin token). The
 * ETag is the version and a digest of the bytes sent; a matching If-None-Match gets 304. The
 * data is read in one REPEATABLE READ snapshot, so version and content always agree.
 */
import { createHash } from 'node:crypto';
import type { ConfigSnapshot, VectorSection } from '@lanekeeper/contract';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { currentConfigVersion, syncPricingVersion } from '../stores/config-version.js';
import { allPlans } from '../stores/plans.js';
import { priceVersionAt } from '../stores/pricing.js';
import { configTenants } from '../stores/tenants.js';

/**
 * The vector section proxies take instead of their own `vector.mode` and `vector.templates`,
 * so the collections a proxy routes to are the ones this control plane created. Absent when
 * QDRANT_URL is unset: then the control plane creates no collections, and a proxy keeps its own.
 */
function vectorSection(deps: AppDeps): VectorSection | undefined {
  if (!deps.vectors) return undefined;
  return { mode: deps.config.vectorMode, templates: deps.config.collectionTemplates };
}

/**
 * The version and a digest of the bytes. The version alone named two contents once the
 * counter went back (a database restored from a backup, a failover to a lagging standby)
 * and came up to a number again: a proxy that held it was answered 304 for the other content,
 * and a suspension made since never reached it (found by review). The vector section comes
 * from the environment, so a control plane restarted with other templates differs too.
 */
function etagFor(version: number, body: Buffer): string {
  return `"${version}-${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
}

/** True when an If-None-Match header names this ETag (or `*`). */
function matches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim().replace(/^W\//, '');
    return t === etag || t === '*';
  });
}

/** A snapshot as sent: its version, ETag and JSON bytes. */
interface Built {
  version: number;
  etag: string;
  body: Buffer;
}

/** Reads the snapshot in one REPEATABLE READ transaction, so its version and content agree. */
async function buildSnapshot(deps: AppDeps, vector: VectorSection | undefined): Promise<Built> {
  const client = await deps.pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const version = await currentConfigVersion(client);
    const plans = await allPlans(client);
    const tenants = await configTenants(client);
    const pricing = (await priceVersionAt(client))?.prices ?? {};
    await client.query('COMMIT');
    const snapshot: ConfigSnapshot = { version, plans, tenants, pricing, ...(vector ? { vector } : {}) };
    const body = Buffer.from(JSON.stringify(snapshot));
    return { version, etag: etagFor(version, body), body };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

export function registerConfigRoutes(app: FastifyInstance, deps: AppDeps): void {
  // Every change is announced to every proxy at once, and each then asks for the snapshot.
  // Built for each of them, a 10,000-tenant snapshot (~2 MB) took 1.5 s to reach the last of
  // 10 proxies and 3.2 s of 30, and held admin calls meanwhile. A version's content never
  // changes (the version is bumped with every change a proxy sees), so it is built once,
  // by whichever request comes first, and its bytes go to every proxy that asks for it. Only
  // the version read now is served: a cached one above it means the counter went back, and
  // served, it stayed until the counter passed it again.
  let cached: Built | undefined;
  let building: Promise<Built> | undefined;
  const snapshotOf = async (version: number, vector: VectorSection | undefined): Promise<Built> => {
    for (;;) {
      if (cached?.version === version) return cached;
      if (!building) {
        // Cached before `building` is cleared, so no waiter finds neither. Builds run one at
        // a time, so the last to end read the newest data.
        // What it reads is as good as what was asked for, should the version have moved since.
        building = buildSnapshot(deps, vector)
          .then((built) => (cached = built))
          .finally(() => (building = undefined));
        return await building;
      }
      // Another request is building: its snapshot is this version's, unless the version
      // moved while it read, and then this request builds the next.
      await building.catch(() => undefined);
      if (cached && cached.version > version) return cached;
    }
  };

  app.get(
    '/v1/config',
    {
      config: {
        auth: 'proxy',
        summary: 'Config snapshot for proxies (ETag, 304)',
        success: { 200: 'The snapshot', 304: 'Unchanged since the If-None-Match ETag' },
      },
    },
    async (request, reply) => {
      // A price version that came into force by the clock bumps the version here at the latest.
      const inForce = await priceVersionAt(deps.pool);
      const bumped = await syncPricingVersion(deps.pool, inForce?.id ?? null);
      if (bumped !== undefined) await deps.publisher.publish(bumped);

      const vector = vectorSection(deps);
      const current = await currentConfigVersion(deps.pool);
      // Built once per version (above): a proxy polling an unchanged config costs a lookup.
      const snapshot = await snapshotOf(current, vector);
      if (matches(request.headers['if-none-match'], snapshot.etag))
        return reply.code(304).header('etag', snapshot.etag).send();
      return reply
        .header('etag', snapshot.etag)
        .header('cache-control', 'no-cache')
        .header('content-type', 'application/json; charset=utf-8')
        .send(snapshot.body);
    },
  );
}
