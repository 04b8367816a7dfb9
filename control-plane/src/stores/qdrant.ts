/**
 * The VectorStore over Qdrant's REST API (@qdrant/js-client-rest), in one of two isolation modes:
 *
 * - `collection`: each tenant gets its own physical collection per template, named
 *   `tenant_{id}_{name}`. Tenant ids are `[a-z0-9][a-z0-9-]*` (never "_"), so the first "_"
 *   after `tenant_` ends the id: the mapping is reversible and two (tenant, name) pairs can
 *   never meet on one physical name, even with "-" in ids or "_" in template names.
 * - `partition`: one shared collection per template, `lanekeeper_{name}`, with a `tenant_id`
 *   keyword payload index created `is_tenant: true`; a tenant's data is the points whose
 *   `tenant_id` is its id, so listing counts by filter and erasure deletes by filter.
 *
 * Erasure sweeps both layouts whatever the mode, and the collections behind `lanekeeper_*`
 * aliases. Every operation is idempotent: creating what exists and deleting what is gone both
 * succeed, so erasure can simply be run again after a failure halfway.
 */
import { QdrantClient } from '@qdrant/js-client-rest';
import { createOutageLog, type OutageLog, type OutageLogger } from '@lanekeeper/contract';
import { BadRequestError, ControlPlaneConfigError, NotFoundError, UpstreamStoreError } from '../errors.js';
import type {
  CollectionTemplate,
  TenantCollection,
  VectorErasureReport,
  VectorStore,
} from './vector-store.js';

/** The payload field that carries the tenant in partition mode. */
export const TENANT_FIELD = 'tenant_id';
/** Prefix of per-tenant collections (collection mode). */
export const TENANT_COLLECTION_PREFIX = 'tenant_';
/** Prefix of shared collections (partition mode). */
export const SHARED_COLLECTION_PREFIX = 'lanekeeper_';
/** Used when LANEKEEPER_COLLECTION_TEMPLATES is unset: 1536 is the size of common embedding models. */
export const DEFAULT_COLLECTION_TEMPLATES: readonly CollectionTemplate[] = Object.freeze([
  Object.freeze({ name: 'documents', size: 1536, distance: 'Cosine' as const }),
]);

// Same rule as the proxy's TENANT_ID_PATTERN; repeated so the control plane does not import proxy code.
const TENANT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const TEMPLATE_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const DISTANCES = ['Cosine', 'Euclid', 'Dot', 'Manhattan'] as const;

/** LANEKEEPER_COLLECTION_TEMPLATES is unusable; one problem per bad entry or field. */
export class CollectionTemplatesError extends ControlPlaneConfigError {
  constructor(problems: string[]) {
    super(problems.map((message) => ({ variable: 'LANEKEEPER_COLLECTION_TEMPLATES', message })));
  }
}

/** 404: a collection name that is not one of the configured templates. */
export class UnknownCollectionError extends NotFoundError {
  constructor(
    readonly collection: string,
    templates: readonly CollectionTemplate[],
  ) {
    super(
      `unknown collection "${collection}"; the templates are: ${templates.map((t) => t.name).join(', ')}`,
    );
  }
}

/** 400: a tenant id that cannot name a collection (routes validate ids before this). */
export class InvalidTenantIdError extends BadRequestError {
  constructor(tenant: string) {
    super(
      `tenant id "${tenant}" must be 1-63 characters of a-z, 0-9 and "-", starting with a letter or digit`,
    );
  }
}

/** 502: Qdrant failed or answered something unexpected; the operation is safe to retry. */
export class VectorStoreUnavailableError extends UpstreamStoreError {
  constructor(operation: string, cause: unknown) {
    super(`Qdrant ${operation} failed: ${describe(cause)}`);
    this.cause = cause;
  }
}

function describe(error: unknown): string {
  const e = error as { status?: number; data?: { status?: { error?: string } }; message?: string };
  const detail = e?.data?.status?.error ?? e?.message ?? String(error);
  return e?.status ? `${e.status} ${detail}` : detail;
}

function statusOf(error: unknown): number | undefined {
  return (error as { status?: number } | undefined)?.status;
}

/**
 * Parses LANEKEEPER_COLLECTION_TEMPLATES (a JSON array of {name, size, distance}); unset or blank
 * gives the default. Throws CollectionTemplatesError listing every problem.
 */
export function parseCollectionTemplates(json: string | undefined): CollectionTemplate[] {
  if (json === undefined || json.trim() === '') return DEFAULT_COLLECTION_TEMPLATES.map((t) => ({ ...t }));
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new CollectionTemplatesError([`not valid JSON: ${(error as Error).message}`]);
  }
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new CollectionTemplatesError(['expected a non-empty JSON array of {"name","size","distance"}']);
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  raw.forEach((entry: unknown, i) => {
    const at = `[${i}]`;
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) {
      problems.push(`${at}: expected an object {"name","size","distance"}`);
      return;
    }
    const t = entry as Record<string, unknown>;
    for (const key of Object.keys(t)) {
      if (!['name', 'size', 'distance'].includes(key)) problems.push(`${at}.${key}: unknown field`);
    }
    if (typeof t.name !== 'string' || !TEMPLATE_NAME.test(t.name)) {
      problems.push(
        `${at}.name: expected 1-63 characters of a-z, 0-9, "_" and "-", starting with a letter or digit`,
      );
    } else if (t.name.startsWith(TENANT_COLLECTION_PREFIX) || t.name.startsWith(SHARED_COLLECTION_PREFIX)) {
      problems.push(
        `${at}.name: must not start with "${TENANT_COLLECTION_PREFIX}" or "${SHARED_COLLECTION_PREFIX}" (reserved for physical names)`,
      );
    } else if (seen.has(t.name)) {
      problems.push(`${at}.name: duplicate template "${t.name}"`);
    } else {
      seen.add(t.name);
    }
    if (typeof t.size !== 'number' || !Number.isInteger(t.size) || t.size < 1 || t.size > 65536) {
      problems.push(`${at}.size: expected an integer from 1 to 65536 (the vector dimension)`);
    }
    if (!DISTANCES.includes(t.distance as never)) {
      problems.push(`${at}.distance: expected one of ${DISTANCES.join(', ')}`);
    }
  });
  if (problems.length > 0) throw new CollectionTemplatesError(problems);
  return (raw as CollectionTemplate[]).map(({ name, size, distance }) => ({ name, size, distance }));
}

/** The physical Qdrant collection holding a tenant's logical collection. */
export function physicalCollectionName(mode: VectorStore['mode'], tenant: string, name: string): string {
  if (!TENANT_ID.test(tenant)) throw new InvalidTenantIdError(tenant);
  return mode === 'collection'
    ? `${TENANT_COLLECTION_PREFIX}${tenant}_${name}`
    : `${SHARED_COLLECTION_PREFIX}${name}`;
}

/** Reverses a collection-mode physical name into {tenant, name}; undefined for anything else. */
export function parseTenantCollectionName(physical: string): { tenant: string; name: string } | undefined {
  if (!physical.startsWith(TENANT_COLLECTION_PREFIX)) return undefined;
  const rest = physical.slice(TENANT_COLLECTION_PREFIX.length);
  const cut = rest.indexOf('_');
  if (cut <= 0) return undefined;
  const tenant = rest.slice(0, cut);
  const name = rest.slice(cut + 1);
  return TENANT_ID.test(tenant) && TEMPLATE_NAME.test(name) ? { tenant, name } : undefined;
}

/** Options of createQdrantVectorStore. */
export interface QdrantVectorStoreOptions {
  url: string;
  apiKey?: string;
  mode: VectorStore['mode'];
  templates: readonly CollectionTemplate[];
  /** Per-request timeout; 30 s by default. */
  timeoutMs?: number;
  /** Told when Qdrant stops answering and when it is back (issue 18's outage lines). */
  logger?: OutageLogger;
}

/**
 * The client, each call of which tells the outage log whether Qdrant was reached. An answer
 * with a status under 500 (a 404 for a collection that is gone, say) is Qdrant working.
 */
function reporting(client: QdrantClient, outage: OutageLog): QdrantClient {
  return new Proxy(client, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = value.apply(target, args);
        if (result instanceof Promise) {
          result.then(
            () => outage.succeeded(),
            (error: unknown) => {
              const status = statusOf(error);
              if (status === undefined || status >= 500) outage.failed(error);
              else outage.succeeded();
            },
          );
        }
        return result;
      };
    },
  });
}

function tenantFilter(tenant: string) {
  return { must: [{ key: TENANT_FIELD, match: { value: tenant } }] };
}

/** Creates the Qdrant-backed VectorStore for one isolation mode. */
export function createQdrantVectorStore(options: QdrantVectorStoreOptions): VectorStore {
  const { mode, templates, logger } = options;
  const plain = new QdrantClient({
    url: options.url,
    // As a header rather than `apiKey`: the client then warns on the console, outside the
    // services' JSON log lines, about a key over http; we say it once below, as JSON.
    headers: options.apiKey === undefined ? undefined : { 'api-key': options.apiKey },
    checkCompatibility: false,
    timeout: options.timeoutMs ?? 30_000,
  });
  if (options.apiKey !== undefined && new URL(options.url).protocol === 'http:')
    logger?.warn({ url: options.url }, 'the Qdrant API key is sent over plain http');
  const client = logger ? reporting(plain, createOutageLog(logger, 'qdrant')) : plain;

  async function call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw new VectorStoreUnavailableError(operation, error);
    }
  }

  function template(name: string): CollectionTemplate {
    const found = templates.find((t) => t.name === name);
    if (!found) throw new UnknownCollectionError(name, templates);
    return found;
  }

  /** Creates a collection unless it exists (409 from a concurrent creator counts as success). */
  async function ensureCollection(physical: string, t: CollectionTemplate): Promise<void> {
    const { exists } = await call('exists', () => client.collectionExists(physical));
    if (exists) return;
    try {
      await client.createCollection(physical, { vectors: { size: t.size, distance: t.distance } });
    } catch (error) {
      if (statusOf(error) !== 409) throw new VectorStoreUnavailableError(`create ${physical}`, error);
    }
  }

  async function countTenant(physical: string, tenant: string): Promise<number> {
    const { count } = await call(`count ${physical}`, () =>
      client.count(physical, { filter: tenantFilter(tenant), exact: true }),
    );
    return count;
  }

  async function pointsIn(physical: string): Promise<number | undefined> {
    try {
      return (await client.getCollection(physical)).points_count ?? undefined;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw new VectorStoreUnavailableError(`get ${physical}`, error);
    }
  }

  async function allCollectionNames(): Promise<string[]> {
    const { collections } = await call('list collections', () => client.getCollections());
    return collections.map((c) => c.name);
  }

  async function createCollection(tenant: string, name: string): Promise<TenantCollection> {
    const t = template(name);
    const physical = physicalCollectionName(mode, tenant, name);
    await ensureCollection(physical, t);
    if (mode === 'collection') return { name, physical, points: (await pointsIn(physical)) ?? 0 };
    // Re-creating an identical index is accepted by Qdrant, so this is idempotent too.
    await call(`index ${physical}`, () =>
      client.createPayloadIndex(physical, {
        wait: true,
        field_name: TENANT_FIELD,
        field_schema: { type: 'keyword', is_tenant: true },
      }),
    );
    return { name, physical, points: await countTenant(physical, tenant) };
  }

  /** The tenant's own collections, as collection mode names them, whatever the mode now. */
  async function eraseCollections(tenant: string): Promise<VectorErasureReport> {
    // Ids never contain "_", so this prefix is the tenant's alone ("tenant_a_" is not a prefix
    // of "tenant_a-b_..."). Everything under it goes, not just current templates: a template
    // removed from the config may still hold the tenant's data.
    const prefix = physicalCollectionName('collection', tenant, '');
    const mine = async () => (await allCollectionNames()).filter((n) => n.startsWith(prefix));
    const report: VectorErasureReport = { collectionsDeleted: [], pointsDeleted: 0 };
    for (const physical of await mine()) {
      const points = (await pointsIn(physical)) ?? 0;
      if (await deletePhysical(physical)) {
        report.collectionsDeleted.push(physical);
        report.pointsDeleted += points;
      }
    }
    const left = await mine();
    if (left.length > 0)
      throw new VectorStoreUnavailableError('erase', `collections still present: ${left.join(', ')}`);
    return report;
  }

  /**
   * Collections that may hold tenants' points side by side: the shared ones, and the
   * collections behind aliases named as shared ones (a reindex behind an alias is Qdrant's
   * way to swap a collection without downtime, and the proxies reach it through the alias).
   */
  async function sharedCollections(): Promise<string[]> {
    const names = (await allCollectionNames()).filter((n) => n.startsWith(SHARED_COLLECTION_PREFIX));
    const { aliases } = await call('list aliases', () => client.getAliases());
    for (const { alias_name, collection_name } of aliases)
      if (alias_name.startsWith(SHARED_COLLECTION_PREFIX)) names.push(collection_name);
    return [...new Set(names)];
  }

  /** The tenant's points in the shared collections, as partition mode tags them, whatever the mode now. */
  async function erasePoints(tenant: string): Promise<VectorErasureReport> {
    physicalCollectionName('partition', tenant, ''); // validates the id before a filter is built from it
    const shared = await sharedCollections();
    const report: VectorErasureReport = { collectionsDeleted: [], pointsDeleted: 0 };
    for (const physical of shared) {
      const before = await countTenant(physical, tenant);
      if (before === 0) continue;
      await call(`delete points in ${physical}`, () =>
        client.delete(physical, { wait: true, filter: tenantFilter(tenant) }),
      );
      const after = await countTenant(physical, tenant);
      if (after !== 0) throw new VectorStoreUnavailableError('erase', `${after} points left in ${physical}`);
      report.pointsDeleted += before;
    }
    return report;
  }

  async function deletePhysical(physical: string): Promise<boolean> {
    try {
      return await client.deleteCollection(physical);
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw new VectorStoreUnavailableError(`delete ${physical}`, error);
    }
  }

  return {
    mode,
    async createTenantCollections(tenant) {
      const created: TenantCollection[] = [];
      for (const t of templates) created.push(await createCollection(tenant, t.name));
      return created;
    },
    async listCollections(tenant) {
      physicalCollectionName(mode, tenant, ''); // validates the id
      if (mode === 'collection') {
        const out: TenantCollection[] = [];
        for (const physical of await allCollectionNames()) {
          const parsed = parseTenantCollectionName(physical);
          if (parsed?.tenant !== tenant) continue;
          out.push({ name: parsed.name, physical, points: (await pointsIn(physical)) ?? 0 });
        }
        return out.sort((a, b) => a.name.localeCompare(b.name));
      }
      const existing = new Set(await allCollectionNames());
      const out: TenantCollection[] = [];
      for (const t of templates) {
        const physical = physicalCollectionName(mode, tenant, t.name);
        if (existing.has(physical))
          out.push({ name: t.name, physical, points: await countTenant(physical, tenant) });
      }
      return out;
    },
    createCollection,
    async deleteCollection(tenant, name) {
      if (mode === 'collection') {
        if (!TEMPLATE_NAME.test(name)) throw new UnknownCollectionError(name, templates);
        return deletePhysical(physicalCollectionName(mode, tenant, name));
      }
      const physical = physicalCollectionName(mode, tenant, template(name).name);
      const before = await countTenant(physical, tenant).catch((error: VectorStoreUnavailableError) => {
        if (statusOf(error.cause) === 404) return -1;
        throw error;
      });
      if (before < 0) return false;
      if (before > 0) {
        await call(`delete points in ${physical}`, () =>
          client.delete(physical, { wait: true, filter: tenantFilter(tenant) }),
        );
      }
      return true;
    },
    async eraseTenant(tenant) {
      // Both layouts, whichever mode is on: a deployment that moved from one mode to the
      // other (collections for tens of tenants, partitions past hundreds) still holds the
      // tenant's data in the first, and reported it erased while it stayed.
      const own = await eraseCollections(tenant);
      const tagged = await erasePoints(tenant);
      return {
        collectionsDeleted: own.collectionsDeleted,
        pointsDeleted: own.pointsDeleted + tagged.pointsDeleted,
      };
    },
    async healthy() {
      try {
        await client.getCollections();
        return true;
      } catch {
        return false;
      }
    },
  };
}
