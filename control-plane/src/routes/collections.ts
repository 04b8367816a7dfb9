/**
 * A tenant's vector collections: GET/POST /v1/tenants/{id}/collections and
 * GET/POST/DELETE /v1/tenants/{id}/collections/{name}. Names are logical (the template
 * names); the VectorStore maps them to physical Qdrant collections in either isolation mode,
 * and the responses show both so an operator can find the data in Qdrant. Admin auth is
 * applied by the app to every route marked `auth: 'admin'`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { NotFoundError } from '../errors.js';
import { actorOf } from '../http/auth.js';
import { tenantId } from '../http/schemas.js';
import type { TenantCollection, VectorStore } from '../stores/vector-store.js';
import { admin } from '../http/openapi.js';

/** One audit record of a collection change. */
export interface CollectionAuditEntry {
  actor: string;
  action: 'collection.create' | 'collection.delete';
  resource: string;
  before?: unknown;
  after?: unknown;
}

/** What the collection routes need from the app. */
export interface CollectionRouteDeps {
  vectorStore: VectorStore;
  tenantExists(id: string): Promise<boolean>;
  /** Records a change in the audit log; called after the change succeeded. */
  audit?(entry: CollectionAuditEntry): Promise<void>;
}

const collectionName = {
  type: 'string',
  maxLength: 63,
  pattern: '^[a-z0-9][a-z0-9_-]{0,62}$',
  description: 'a template name from LANEKEEPER_COLLECTION_TEMPLATES, e.g. "documents"',
};
const tenantOnly = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: tenantId },
};
const tenantAndName = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name'],
  properties: { id: tenantId, name: collectionName },
};
const createBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: collectionName },
};

type WithTenant = FastifyRequest<{ Params: { id: string; name?: string } }>;

/** Registers the collection routes on the app. */
export function registerCollectionRoutes(app: FastifyInstance, deps: CollectionRouteDeps): void {
  const { vectorStore } = deps;

  async function requireTenant(id: string): Promise<void> {
    if (!(await deps.tenantExists(id))) throw new NotFoundError(`tenant "${id}" does not exist`);
  }

  async function find(id: string, name: string): Promise<TenantCollection | undefined> {
    return (await vectorStore.listCollections(id)).find((c) => c.name === name);
  }

  async function create(request: WithTenant, name: string): Promise<TenantCollection> {
    const { id } = request.params;
    await requireTenant(id);
    const before = await find(id, name);
    const created = await vectorStore.createCollection(id, name);
    if (!before) {
      await deps.audit?.({
        actor: actorOf(request),
        action: 'collection.create',
        resource: `tenants/${id}/collections/${name}`,
        after: { ...created, mode: vectorStore.mode },
      });
    }
    return created;
  }

  app.get<{ Params: { id: string } }>(
    '/v1/tenants/:id/collections',
    { schema: { params: tenantOnly }, config: admin("List a tenant's vector collections") },
    async (request) => {
      await requireTenant(request.params.id);
      return { mode: vectorStore.mode, items: await vectorStore.listCollections(request.params.id) };
    },
  );

  app.post<{ Params: { id: string }; Body: { name: string } }>(
    '/v1/tenants/:id/collections',
    {
      schema: { params: tenantOnly, body: createBody },
      config: admin('Create a collection from its template', { 201: 'The collection' }),
    },
    async (request, reply) => reply.code(201).send(await create(request, request.body.name)),
  );

  app.post<{ Params: { id: string; name: string } }>(
    '/v1/tenants/:id/collections/:name',
    {
      schema: { params: tenantAndName },
      config: admin('Create a collection from its template (idempotent)', { 201: 'The collection' }),
    },
    async (request, reply) => reply.code(201).send(await create(request, request.params.name)),
  );

  app.get<{ Params: { id: string; name: string } }>(
    '/v1/tenants/:id/collections/:name',
    { schema: { params: tenantAndName }, config: admin('Read one collection') },
    async (request) => {
      const { id, name } = request.params;
      await requireTenant(id);
      const found = await find(id, name);
      if (!found) throw new NotFoundError(`tenant "${id}" has no collection "${name}"`);
      return found;
    },
  );

  app.delete<{ Params: { id: string; name: string } }>(
    '/v1/tenants/:id/collections/:name',
    {
      schema: { params: tenantAndName },
      config: admin("Delete a collection (partition mode: the tenant's points in it)"),
    },
    async (request) => {
      const { id, name } = request.params;
      await requireTenant(id);
      const before = await find(id, name);
      const deleted = before !== undefined && (await vectorStore.deleteCollection(id, name));
      if (!deleted) throw new NotFoundError(`tenant "${id}" has no collection "${name}"`);
      await deps.audit?.({
        actor: actorOf(request),
        action: 'collection.delete',
        resource: `tenants/${id}/collections/${name}`,
        before,
      });
      return { name, deleted: true };
    },
  );
}
