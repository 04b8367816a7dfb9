/**
 * One handler per allowed Qdrant operation: each checks the body against its field allowlist,
 * rewrites it for the tenant (physical collection name; in partition mode the tenant filter,
 * the tenant payload, ids turned into id+tenant filters) and sends it to Qdrant. A handler
 * returns Qdrant's reply (mapped back by the route) or a result it built itself.
 */
import type { VectorOperation, VectorOperationName } from './vector-operations.js';
import { forbidden, VectorRefusal } from './vector-refusal.js';
import {
  asObject,
  assertOnlyFields,
  idsFilter,
  scopeFilter,
  scopeQuery,
  scopeSelector,
  tenantCondition,
  TENANT_FIELD,
  type QueryScope,
} from './tenant-scope.js';
import type { UpstreamReply, VectorUpstream } from './vector-upstream.js';

type Obj = Record<string, unknown>;

/** Everything a handler needs about the request and the deployment. */
export interface HandlerContext {
  tenant: string;
  partition: boolean;
  op: VectorOperation;
  body: Obj;
  query: URLSearchParams;
  upstream: VectorUpstream;
  /** Logical template name -> physical collection; refuses anything else. */
  physical(logical: unknown): string;
  /** The template of a logical name. */
  template(logical: string): { size: number; distance: string };
  /** Every logical name this deployment offers. */
  logicalNames(): string[];
}

/** A reply from Qdrant, or a result the handler composed (sent in Qdrant's ok envelope). */
export type HandlerOutcome = { reply: UpstreamReply } | { result: unknown };

/** Qdrant answered with an error: pass its answer on (names mapped back) instead of continuing. */
export class UpstreamAnswer extends Error {
  constructor(readonly reply: UpstreamReply) {
    super(`Qdrant answered ${reply.status}`);
  }
}

const NO_QUERY = new URLSearchParams();

async function send(ctx: HandlerContext, method: string, suffix: string, body?: unknown, query = ctx.query) {
  const path = `/collections/${ctx.physical(ctx.op.collection)}${suffix}`;
  return ctx.upstream.request(method, path, query, body);
}

/** Sends and returns the `result` of a successful answer; an error answer is thrown as UpstreamAnswer. */
async function result<T>(ctx: HandlerContext, method: string, suffix: string, body?: unknown): Promise<T> {
  const reply = await send(ctx, method, suffix, body, NO_QUERY);
  if (reply.status >= 400 || !reply.json) throw new UpstreamAnswer(reply);
  return (reply.json as { result: T }).result;
}

const countOf = (ctx: HandlerContext, filter: Obj) =>
  result<{ count: number }>(ctx, 'POST', '/points/count', { filter, exact: true }).then((r) => r.count);

function queryScope(ctx: HandlerContext): QueryScope {
  return { tenant: ctx.tenant, partition: ctx.partition, physicalName: (name) => ctx.physical(name) };
}

function pointIds(ctx: HandlerContext): unknown[] {
  const { points, batch } = ctx.body;
  if (Array.isArray(points)) return points.map((p) => asObject(p, 'point').id);
  if (batch) return (asObject(batch, 'batch').ids as unknown[]) ?? [];
  return [];
}

/**
 * Partition mode shares one id space: before writing, make sure no id is another tenant's
 * point, so an upsert can never overwrite it. (A concurrent write of the same new id by two
 * tenants between this check and the write is the remaining race; see docs/vector-isolation.md.)
 */
async function assertIdsFree(ctx: HandlerContext, ids: unknown[]): Promise<void> {
  if (ids.length === 0) return;
  const foreign = await countOf(ctx, { must: [{ has_id: ids }], must_not: [tenantCondition(ctx.tenant)] });
  if (foreign > 0) {
    throw forbidden(
      'some point ids are already used in the shared collection by someone else: use fresh ids (UUIDs)',
    );
  }
}

/** All ids must be this tenant's existing points (Qdrant answers 404 for a missing point too). */
async function assertIdsOwned(ctx: HandlerContext, ids: unknown[]): Promise<void> {
  const unique = new Set(ids.map((id) => JSON.stringify(id)));
  if ((await countOf(ctx, idsFilter(ids, ctx.tenant))) !== unique.size) {
    throw new VectorRefusal(
      404,
      'PROXY_ERR_VECTOR_NOT_FOUND',
      'Not found: No point with some of the given ids found',
    );
  }
}

function tagPayloads(ctx: HandlerContext): Obj {
  const body = { ...ctx.body };
  if (Array.isArray(body.points)) {
    body.points = body.points.map((p) => {
      const point = asObject(p, 'point');
      return { ...point, payload: { ...asObject(point.payload, 'payload'), [TENANT_FIELD]: ctx.tenant } };
    });
  } else if (body.batch) {
    const batch = asObject(body.batch, 'batch');
    const ids = Array.isArray(batch.ids) ? batch.ids : [];
    const payloads = Array.isArray(batch.payloads) ? batch.payloads : [];
    body.batch = {
      ...batch,
      payloads: ids.map((_, i) => ({ ...asObject(payloads[i], 'payload'), [TENANT_FIELD]: ctx.tenant })),
    };
  }
  return body;
}

/** Collection info of the shared collection, reduced to what is the tenant's. */
async function partitionCollectionInfo(ctx: HandlerContext): Promise<HandlerOutcome> {
  const reply = await send(ctx, 'GET', '');
  if (reply.status >= 400 || !reply.json) return { reply };
  const info = { ...((reply.json as { result: Obj }).result ?? {}) };
  info.points_count = await countOf(ctx, scopeFilter(undefined, ctx.tenant));
  delete info.indexed_vectors_count;
  const schema = { ...asObject(info.payload_schema, 'payload_schema') };
  delete schema[TENANT_FIELD];
  for (const [field, entry] of Object.entries(schema)) {
    const { points: _aggregate, ...rest } = asObject(entry, 'schema entry');
    schema[field] = rest;
  }
  info.payload_schema = schema;
  return { result: info };
}

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
    only(ctx, ['points', 'batch']);
    if (!ctx.partition) return { reply: await send(ctx, 'PUT', '/points', ctx.body) };
    await assertIdsFree(ctx, pointIds(ctx));
    return { reply: await send(ctx, 'PUT', '/points', tagPayloads(ctx)) };
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
    only(ctx, ['points']);
    if (ctx.partition) await assertIdsOwned(ctx, pointIds(ctx));
    return { reply: await send(ctx, 'PUT', '/points/vectors', ctx.body) };
  },

  delete_points: (ctx) => selectorWrite(ctx, SELECTOR, 'POST', '/points/delete'),
  delete_vectors: (ctx) => selectorWrite(ctx, [...SELECTOR, 'vector'], 'POST', '/points/vectors/delete'),
  set_payload: (ctx) => selectorWrite(ctx, [...SELECTOR, 'payload', 'key'], 'POST', '/points/payload'),
  delete_payload: (ctx) => selectorWrite(ctx, [...SELECTOR, 'keys'], 'POST', '/points/payload/delete'),

  async overwrite_payload(ctx) {
    only(ctx, [...SELECTOR, 'payload', 'key']);
    if (!ctx.partition) return { reply: await send(ctx, 'PUT', '/points/payload', ctx.body) };
    const body = scopeSelector(ctx.body, ctx.tenant);
    // Replacing the whole payload would drop tenant_id: put it back.
    if (body.key === undefined)
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

  query: async (ctx) => ({
    reply: await send(ctx, 'POST', '/points/query', scopeQuery(ctx.body, queryScope(ctx))),
  }),

  async query_batch(ctx) {
    only(ctx, ['searches']);
    const searches = Array.isArray(ctx.body.searches) ? ctx.body.searches : [];
    const scoped = searches.map((s) => scopeQuery(s, queryScope(ctx)));
    return { reply: await send(ctx, 'POST', '/points/query/batch', { searches: scoped }) };
  },

  async query_groups(ctx) {
    if (ctx.body.with_lookup !== undefined)
      throw forbidden('with_lookup is not available through the tenant route');
    const body = scopeQuery(ctx.body, queryScope(ctx), ['group_by', 'group_size']);
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
  return { reply: await send(ctx, 'POST', suffix, body) };
}
