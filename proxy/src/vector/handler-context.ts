/**
 * What the Qdrant route's operation handlers share: the per-request context, sending to the
 * tenant's physical collection, and the partition-mode safeguards for a shared id space
 * (ids must be free before an upsert, owned before a vector update), tenant tagging of
 * payloads, and the tenant's view of a shared collection's info.
 */
import type { VectorOperation } from './vector-operations.js';
import { forbidden, VectorRefusal } from './vector-refusal.js';
import {
  asObject,
  idsFilter,
  scopeFilter,
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
}

/** A reply from Qdrant, or a result the handler composed (sent in Qdrant's ok envelope). */
export type HandlerOutcome = { reply: UpstreamReply } | { result: unknown };

/** Qdrant answered with an error: pass its answer on (names mapped back) instead of continuing. */
export class UpstreamAnswer extends Error {
  constructor(readonly reply: UpstreamReply) {
    super(`Qdrant answered ${reply.status}`);
  }
}

// Internal look-ups carry none of the client's query parameters.
const NO_QUERY = new URLSearchParams();

/** Sends to the tenant's physical collection (`suffix` follows `/collections/{physical}`). */
export async function send(
  ctx: HandlerContext,
  method: string,
  suffix: string,
  body?: unknown,
  query = ctx.query,
) {
  const path = `/collections/${ctx.physical(ctx.op.collection)}${suffix}`;
  return ctx.upstream.request(method, path, query, body);
}

/** Sends and returns the `result` of a successful answer; an error answer is thrown as UpstreamAnswer. */
export async function result<T>(
  ctx: HandlerContext,
  method: string,
  suffix: string,
  body?: unknown,
): Promise<T> {
  const reply = await send(ctx, method, suffix, body, NO_QUERY);
  if (reply.status >= 400 || !reply.json) throw new UpstreamAnswer(reply);
  return (reply.json as { result: T }).result;
}

/** Exact count of points matching a filter in the operation's collection. */
export const countOf = (ctx: HandlerContext, filter: Obj) =>
  result<{ count: number }>(ctx, 'POST', '/points/count', { filter, exact: true }).then((r) => r.count);

/** The scope a universal query is confined to. */
export function queryScope(ctx: HandlerContext): QueryScope & { pointIds: unknown[] } {
  return {
    tenant: ctx.tenant,
    partition: ctx.partition,
    physicalName: (name) => ctx.physical(name),
    pointIds: [],
  };
}

/** The ids an upsert or vector update writes (list or batch form). */
export function pointIds(ctx: HandlerContext): unknown[] {
  const { points, batch } = ctx.body;
  if (Array.isArray(points)) return points.map((p) => asObject(p, 'point').id);
  if (batch) return (asObject(batch, 'batch').ids as unknown[]) ?? [];
  return [];
}

/**
 * Partition mode shares one id space: refuse an upsert naming another tenant's point, with a
 * message the app can act on. (The write itself also carries a tenant `update_filter`, so a
 * point created by someone else between this check and the write is left alone.)
 */
export async function assertIdsFree(ctx: HandlerContext, ids: unknown[]): Promise<void> {
  if (ids.length === 0) return;
  const foreign = await countOf(ctx, { must: [{ has_id: ids }], must_not: [tenantCondition(ctx.tenant)] });
  if (foreign > 0) {
    throw forbidden(
      'some point ids are already used in the shared collection by someone else: use fresh ids (UUIDs)',
    );
  }
}

/** All ids must be this tenant's existing points (Qdrant answers 404 for a missing point too). */
export async function assertIdsOwned(ctx: HandlerContext, ids: unknown[]): Promise<void> {
  const unique = new Set(ids.map((id) => JSON.stringify(id)));
  if ((await countOf(ctx, idsFilter(ids, ctx.tenant))) !== unique.size) {
    throw new VectorRefusal(
      404,
      'PROXY_ERR_VECTOR_NOT_FOUND',
      'Not found: No point with some of the given ids found',
    );
  }
}

/** The upsert body with `tenant_id` set on every point's payload (partition mode). */
export function tagPayloads(ctx: HandlerContext): Obj {
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
export async function partitionCollectionInfo(ctx: HandlerContext): Promise<HandlerOutcome> {
  const reply = await send(ctx, 'GET', '');
  if (reply.status >= 400 || !reply.json) return { reply };
  const info = { ...((reply.json as { result: Obj }).result ?? {}) };
  info.points_count = await countOf(ctx, scopeFilter(undefined, ctx.tenant));
  // The shared collection's own: its pending writes and warnings follow other tenants'
  // activity. (segments_count and status are required by Qdrant's clients, and coarse.)
  delete info.indexed_vectors_count;
  delete info.update_queue;
  delete info.warnings;
  const schema = { ...asObject(info.payload_schema, 'payload_schema') };
  delete schema[TENANT_FIELD];
  for (const [field, entry] of Object.entries(schema)) {
    const { points: _aggregate, ...rest } = asObject(entry, 'schema entry');
    schema[field] = rest;
  }
  info.payload_schema = schema;
  return { result: info };
}
