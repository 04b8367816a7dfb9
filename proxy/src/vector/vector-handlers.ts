/**
 * One handler per allowed Qdrant operation: each checks the body against its field allowlist,
 * rewrites it for the tenant (physical collection name; in partition mode the tenant filter,
 * the tenant payload, ids turned into id+tenant filters) and sends it to Qdrant. A handler
 * returns Qdrant's reply (mapped back by the route) or a result it built itself.
 */
import {
  assertIdsFree,
  assertIdsOwned,
  partitionCollectionInfo,
  pointIds,
  queryScope,
  result,
  send,
  tagPayloads,
  type HandlerContext,
  type HandlerOutcome,
} from './handler-context.js';
import type { VectorOperationName } from './vector-operations.js';
import { badRequest, forbidden, VectorRefusal } from './vector-refusal.js';
import {
  asObject,
  assertOnlyFields,
  idsFilter,
  scopeFilter,
  scopeQuery,
  scopeSelector,
  TENANT_FIELD,
} from './tenant-scope.js';

export { UpstreamAnswer, type HandlerContext, type HandlerOutcome } from './handler-context.js';

type Handler = (ctx: HandlerContext) => Promise<HandlerOutcome>;
const only = (ctx: HandlerContext, fields: string[]) => assertOnlyFields(ctx.body, fields, ctx.op.name);
const SELECTOR = ['points', 'filter'];

/** The handlers of every operation except root, health and list_collections (the route's own). */
export const HANDLERS: Partial<Record<VectorOperationName, Handler>> = {
  get_collection: async (ctx) =>
    ctx.partition ? partitionCollectionInfo(ctx) : { reply: await send(ctx, 'GET', '') },
  collection_exists: async (ctx) => ({ reply: await send(ctx, 'GET', '/exists') }),

  async create_collection(ctx) {
    only(ctx, ['vectors']);
    const t = ctx.template(ctx.op.collection!);
    const v = asObject(ctx.body.vectors, 'vectors');
    if (
      v.size !== t.size ||
      v.distance !== t.distance ||
      Object.keys(v).some((k) => k !== 'size' && k !== 'distance')
    ) {
      throw forbidden(
        `collection "${ctx.op.collection}" can only be created as its template: {"vectors":{"size":${t.size},"distance":"${t.distance}"}}`,
      );
    }
    if (!ctx.partition)
      return { reply: await send(ctx, 'PUT', '', { vectors: { size: t.size, distance: t.distance } }) };
    const exists = await result<{ exists: boolean }>(ctx, 'GET', '/exists');
    if (exists.exists) {
      throw new VectorRefusal(
        409,
        'PROXY_ERR_VECTOR_FORBIDDEN',
        `Wrong input: Collection \`${ctx.op.collection}\` already exists!`,
      );
    }
    await send(ctx, 'PUT', '', { vectors: { size: t.size, distance: t.distance } });
    await result(ctx, 'PUT', '/index?wait=true', {
      field_name: TENANT_FIELD,
      field_schema: { type: 'keyword', is_tenant: true },
    });
    return { result: true };
  },

  async delete_collection(ctx) {
    if (!ctx.partition) return { reply: await send(ctx, 'DELETE', '') };
    await result(ctx, 'POST', '/points/delete?wait=true', { filter: scopeFilter(undefined, ctx.tenant) });
    return { result: true };
  },

  async create_index(ctx) {
    if (ctx.partition) throw forbidden('payload indexes of the shared collection are managed by Lanekeeper');
    only(ctx, ['field_name', 'field_schema']);
    return { reply: await send(ctx, 'PUT', '/index', ctx.body) };
  },
  async delete_index(ctx) {
    if (ctx.partition) throw forbidden('payload indexes of the shared collection are managed by Lanekeeper');
    if (ctx.op.suffix.split('/')[2] === TENANT_FIELD)
      throw forbidden(`"${TENANT_FIELD}" is reserved by Lanekeeper`);
    return { reply: await send(ctx, 'DELETE', ctx.op.suffix) };
  },

  async upsert(ctx) {
    only(ctx, ['points', 'batch', 'update_filter', 'update_mode']);
    // Qdrant applies `batch` and silently drops `points` when both are sent: the ids checked
    // and the payloads tagged must be the ones Qdrant writes.
    if (ctx.body.points !== undefined && ctx.body.batch !== undefined) {
      throw badRequest('Format error in JSON body: send either `points` or `batch`, not both');
    }
    if (!ctx.partition) return { reply: await send(ctx, 'PUT', '/points', ctx.body) };
    // The check gives a clear refusal; update_filter makes Qdrant itself skip any existing
    // point that is not the tenant's, so a concurrent writer of the same id cannot be overwritten.
    await assertIdsFree(ctx, pointIds(ctx));
    const body = { ...tagPayloads(ctx), update_filter: scopeFilter(ctx.body.update_filter, ctx.tenant) };
    return { reply: await send(ctx, 'PUT', '/points', body) };
  },

  async retrieve(ctx) {
    only(ctx, ['ids', 'with_payload', 'with_vector']);
    if (!ctx.partition) return { reply: await send(ctx, 'POST', '/points', ctx.body) };
    const ids = Array.isArray(ctx.body.ids) ? ctx.body.ids : [];
    if (ids.length === 0) return { result: [] };
    const page = await result<{ points: unknown[] }>(ctx, 'POST', '/points/scroll', {
      filter: idsFilter(ids, ctx.tenant),
      limit: ids.length,
      with_payload: ctx.body.with_payload ?? true,
      with_vector: ctx.body.with_vector ?? false,
    });
    return { result: page.points };
  },

  async get_point(ctx) {
    if (!ctx.partition) return { reply: await send(ctx, 'GET', ctx.op.suffix) };
    const raw = ctx.op.pointId!;
    const id = /^\d+$/.test(raw) ? Number(raw) : raw;
    if (typeof id === 'number' && !Number.isSafeInteger(id))
      throw badRequest('Format error in path: an id above 2^53 - 1 cannot be carried exactly');
    const page = await result<{ points: unknown[] }>(ctx, 'POST', '/points/scroll', {
      filter: idsFilter([id], ctx.tenant),
      limit: 1,
      with_payload: true,
      with_vector: true,
    });
    if (page.points.length === 0) {
      throw new VectorRefusal(404, 'PROXY_ERR_VECTOR_NOT_FOUND', `Not found: No point with id ${raw} found`);
    }
    return { result: page.points[0] };
  },

  async update_vectors(ctx) {
    only(ctx, ['points', 'update_filter']);
    if (!ctx.partition) return { reply: await send(ctx, 'PUT', '/points/vectors', ctx.body) };
    await assertIdsOwned(ctx, pointIds(ctx));
    const body = { ...ctx.body, update_filter: scopeFilter(ctx.body.update_filter, ctx.tenant) };
    return { reply: await send(ctx, 'PUT', '/points/vectors', body) };
  },

  delete_points: (ctx) => selectorWrite(ctx, SELECTOR, 'POST', '/points/delete'),
  delete_vectors: (ctx) => selectorWrite(ctx, [...SELECTOR, 'vector'], 'POST', '/points/vectors/delete'),
  set_payload: (ctx) => selectorWrite(ctx, [...SELECTOR, 'payload', 'key'], 'POST', '/points/payload'),
  delete_payload: (ctx) => selectorWrite(ctx, [...SELECTOR, 'keys'], 'POST', '/points/payload/delete'),

  async overwrite_payload(ctx) {
    only(ctx, [...SELECTOR, 'payload', 'key']);
    if (!ctx.partition) return { reply: await send(ctx, 'PUT', '/points/payload', ctx.body) };
    const { key, ...rest } = ctx.body;
    // Qdrant ignores `key` on an overwrite and replaces the whole payload, so a key would
    // only hide that tenant_id is dropped.
    if (key !== undefined && key !== null) {
      throw badRequest(
        'overwrite_payload replaces the whole payload and takes no `key`: use set_payload with `key` to change a nested value',
      );
    }
    const body = scopeSelector(rest, ctx.tenant);
    // Replacing the whole payload would drop tenant_id: put it back.
    body.payload = { ...asObject(body.payload, 'payload'), [TENANT_FIELD]: ctx.tenant };
    return { reply: await send(ctx, 'PUT', '/points/payload', body) };
  },

  async clear_payload(ctx) {
    only(ctx, SELECTOR);
    if (!ctx.partition) return { reply: await send(ctx, 'POST', '/points/payload/clear', ctx.body) };
    // Clearing would drop tenant_id too: overwrite with just the tenant instead.
    const body = { ...scopeSelector(ctx.body, ctx.tenant), payload: { [TENANT_FIELD]: ctx.tenant } };
    return { reply: await send(ctx, 'PUT', '/points/payload', body) };
  },

  scroll: (ctx) =>
    filtered(ctx, ['offset', 'limit', 'filter', 'with_payload', 'with_vector', 'order_by'], '/points/scroll'),
  count: (ctx) => filtered(ctx, ['filter', 'exact'], '/points/count'),
  facet: (ctx) => filtered(ctx, ['key', 'limit', 'filter', 'exact'], '/facet'),
  search: (ctx) =>
    filtered(
      ctx,
      ['vector', 'filter', 'params', 'limit', 'offset', 'with_payload', 'with_vector', 'score_threshold'],
      '/points/search',
    ),

  async search_batch(ctx) {
    only(ctx, ['searches']);
    const searches = Array.isArray(ctx.body.searches) ? ctx.body.searches : [];
    const scoped = searches.map((s) => {
      const search = asObject(s, 'search');
      assertOnlyFields(
        search,
        ['vector', 'filter', 'params', 'limit', 'offset', 'with_payload', 'with_vector', 'score_threshold'],
        'search',
      );
      return ctx.partition ? { ...search, filter: scopeFilter(search.filter, ctx.tenant) } : search;
    });
    return { reply: await send(ctx, 'POST', '/points/search/batch', { searches: scoped }) };
  },

  async query(ctx) {
    const scope = queryScope(ctx);
    const body = scopeQuery(ctx.body, scope);
    if (scope.pointIds.length > 0) await assertIdsOwned(ctx, scope.pointIds);
    return { reply: await send(ctx, 'POST', '/points/query', body) };
  },

  async query_batch(ctx) {
    only(ctx, ['searches']);
    const scope = queryScope(ctx);
    const searches = Array.isArray(ctx.body.searches) ? ctx.body.searches : [];
    const scoped = searches.map((s) => scopeQuery(s, scope));
    if (scope.pointIds.length > 0) await assertIdsOwned(ctx, scope.pointIds);
    return { reply: await send(ctx, 'POST', '/points/query/batch', { searches: scoped }) };
  },

  async query_groups(ctx) {
    if (ctx.body.with_lookup !== undefined) {
      throw forbidden('with_lookup is not available through the tenant route');
    }
    const scope = queryScope(ctx);
    const body = scopeQuery(ctx.body, scope, ['group_by', 'group_size']);
    if (scope.pointIds.length > 0) await assertIdsOwned(ctx, scope.pointIds);
    return { reply: await send(ctx, 'POST', '/points/query/groups', body) };
  },
};

async function selectorWrite(
  ctx: HandlerContext,
  fields: string[],
  method: string,
  suffix: string,
): Promise<HandlerOutcome> {
  only(ctx, fields);
  const body = ctx.partition ? scopeSelector(ctx.body, ctx.tenant) : ctx.body;
  return { reply: await send(ctx, method, suffix, body) };
}

async function filtered(ctx: HandlerContext, fields: string[], suffix: string): Promise<HandlerOutcome> {
  only(ctx, fields);
  const body = ctx.partition ? { ...ctx.body, filter: scopeFilter(ctx.body.filter, ctx.tenant) } : ctx.body;
  // An estimate (`exact: false`) is drawn from the statistics of the whole shared collection,
  // every tenant's points included: how it moves with a `has_id` of ids not the tenant's own
  // tells whether they exist. Counted exactly, only the tenant's points are seen.
  if (ctx.partition && fields.includes('exact')) body.exact = true;
  return { reply: await send(ctx, 'POST', suffix, body) };
}
