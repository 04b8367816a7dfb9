/**
 * How a request body is confined to one tenant. In partition mode every filter becomes
 * `{must: [{key:"tenant_id", match:{value:<tenant>}}, <client filter>]}`: the client's filter
 * is kept whole as one nested clause, so none of its should / must_not / min_should can
 * loosen the tenant clause. Payload writes get `tenant_id` set by us, and anything in a body
 * that names `tenant_id` (a filter key, a payload key, an order_by, a group_by...) is refused
 * in both modes, so neither mode lets a tenant forge or probe the field. Bodies are checked
 * against a per-operation allowlist of fields, so a Qdrant feature we have not reviewed (a
 * new filter-bearing field, `shard_key`, `update_filter`...) is refused, not passed through.
 */
import { badRequest, forbidden, VectorRefusal } from './vector-refusal.js';

/** The payload field that carries the tenant in partition mode. */
export const TENANT_FIELD = 'tenant_id';

type Obj = Record<string, unknown>;

/** A JSON object body, or a 400 like Qdrant's. */
export function asObject(value: unknown, what: string): Obj {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest(`Format error in JSON body: ${what} must be a JSON object`);
  }
  return value as Obj;
}

/** Refuses fields outside the operation's allowlist. */
export function assertOnlyFields(body: Obj, allowed: readonly string[], operation: string): void {
  const extra = Object.keys(body).filter((k) => !allowed.includes(k));
  if (extra.length > 0) {
    throw forbidden(
      `${operation}: field(s) ${extra.join(', ')} are not available through the tenant route (allowed: ${allowed.join(', ')})`,
    );
  }
}

/** True when a Qdrant key path (e.g. `tenant_id`, `"tenant_id"`, `tenant_id[]`, `tenant_id.x`) starts at tenant_id. */
function isTenantKey(key: unknown): boolean {
  if (typeof key !== 'string') return false;
  const first =
    key
      .replace(/^\$\.?/, '')
      .replace(/"/g, '')
      .split(/[.[]/)[0] ?? '';
  return first.trim() === TENANT_FIELD;
}

const tenantFieldRefusal = () =>
  new VectorRefusal(
    403,
    'PROXY_ERR_VECTOR_TENANT_FIELD',
    `"${TENANT_FIELD}" is reserved by Lanekeeper: filters, payloads, keys and orderings may not name it`,
  );

/** Fields whose value is payload data (checked only at its top level) or vectors (not checked). */
const DATA_FIELDS = new Set(['payload', 'payloads', 'vector', 'vectors']);
/** Fields whose string value is a payload key. */
const KEY_FIELDS = new Set(['key', 'order_by', 'group_by', 'field_name', 'datetime_key']);

/**
 * Fields whose integers Qdrant reads exactly: point ids (and the query inputs that name
 * them) and integer matches. JSON.parse rounds an integer past 2^53 - 1, so point id
 * 9007199254740993 was written, looked up and deleted as ...992, another point. (Range
 * bounds are doubles in Qdrant too, and are left alone.)
 */
const EXACT_FIELDS = new Set([
  'id',
  'ids',
  'points',
  'has_id',
  'offset',
  'nearest',
  'positive',
  'negative',
  'target',
  'example',
  'value',
  'any',
  'except',
]);

/**
 * Checks a client's body before anything reads it: refuses one that names tenant_id anywhere
 * a key can appear, or sets it in a payload (403), and an integer past 2^53 - 1 in an
 * EXACT_FIELDS field (400). Payload values themselves are user data and are not inspected
 * below their top level. The body's nesting was bounded before it was parsed (vector-route.ts).
 */
export function checkClientBody(value: unknown, exact = false): void {
  if (typeof value === 'number') {
    if (exact && Number.isInteger(value) && !Number.isSafeInteger(value))
      throw badRequest('Format error in JSON body: an id above 2^53 - 1 cannot be carried exactly');
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) checkClientBody(item, exact);
    return;
  }
  if (!value || typeof value !== 'object') return;
  for (const [field, inner] of Object.entries(value as Obj)) {
    if (DATA_FIELDS.has(field)) {
      const payloads = field === 'payloads' && Array.isArray(inner) ? inner : [inner];
      if (
        (field === 'payload' || field === 'payloads') &&
        payloads.some((p) => p && typeof p === 'object' && TENANT_FIELD in p)
      ) {
        throw tenantFieldRefusal();
      }
      continue;
    }
    if (KEY_FIELDS.has(field) && isTenantKey(inner)) throw tenantFieldRefusal();
    if (field === 'keys' && Array.isArray(inner) && inner.some(isTenantKey)) throw tenantFieldRefusal();
    if (field === TENANT_FIELD) throw tenantFieldRefusal();
    checkClientBody(inner, EXACT_FIELDS.has(field));
  }
}

/** The condition every partition-mode read and write carries. */
export function tenantCondition(tenant: string): Obj {
  return { key: TENANT_FIELD, match: { value: tenant } };
}

/** The client's filter confined to the tenant: `{must: [tenant, clientFilter]}`. */
export function scopeFilter(filter: unknown, tenant: string): Obj {
  if (filter === undefined || filter === null) return { must: [tenantCondition(tenant)] };
  return { must: [tenantCondition(tenant), asObject(filter, 'filter')] };
}

/** A filter selecting the given ids of this tenant only. */
export function idsFilter(ids: unknown, tenant: string): Obj {
  if (!Array.isArray(ids))
    throw badRequest('Format error in JSON body: `points` must be a list of point ids');
  return { must: [tenantCondition(tenant), { has_id: ids }] };
}

/** Replaces `points: [ids]` by an id+tenant filter, or scopes `filter` (partition mode). */
export function scopeSelector(body: Obj, tenant: string): Obj {
  const { points, filter, ...rest } = body;
  if (points !== undefined && filter !== undefined) {
    return {
      ...rest,
      filter: { must: [tenantCondition(tenant), { has_id: points }, asObject(filter, 'filter')] },
    };
  }
  if (points !== undefined) return { ...rest, filter: idsFilter(points, tenant) };
  if (filter !== undefined) return { ...rest, filter: scopeFilter(filter, tenant) };
  throw badRequest('Format error in JSON body: expected `points` or `filter`');
}

const isId = (v: unknown) => typeof v === 'number' || typeof v === 'string';
const asList = (v: unknown): unknown[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);
const pairIds = (pairs: unknown) =>
  asList(pairs).flatMap((p) =>
    p && typeof p === 'object' ? [(p as Obj).positive, (p as Obj).negative].filter(isId) : [],
  );

/**
 * Qdrant's query kinds. Its `Query` is an untagged enum whose variants ignore unknown keys:
 * it takes the first kind whose own field parses, so `{"nearest": null, "recommend": …}` runs
 * as a recommend query. Reading only the first kind present let such a query name another
 * tenant's points unchecked; one kind per query object is all Qdrant documents.
 */
const QUERY_KINDS = [
  'nearest',
  'recommend',
  'discover',
  'context',
  'order_by',
  'fusion',
  'rrf',
  'formula',
  'sample',
  'relevance_feedback',
] as const;

/**
 * The point ids a universal-query input names (`query: 7`, `nearest`, `recommend`, `discover`,
 * `context`, `relevance_feedback`). Qdrant resolves them to stored vectors without looking at
 * our filter, so in partition mode they must be checked to be the tenant's own before the
 * query is sent. A query object naming more than one kind is refused (400); the ids of every
 * kind present are read all the same, whichever one Qdrant would end up running.
 */
export function pointIdsInQuery(query: unknown): unknown[] {
  if (isId(query)) return [query];
  if (!query || typeof query !== 'object' || Array.isArray(query)) return [];
  const q = query as Obj;
  const kinds = QUERY_KINDS.filter((kind) => Object.hasOwn(q, kind));
  if (kinds.length > 1) {
    throw badRequest(
      `Format error in JSON body: a query is one of ${QUERY_KINDS.join(', ')}; this one names ${kinds.join(' and ')}`,
    );
  }
  const ids: unknown[] = [];
  if (Object.hasOwn(q, 'nearest') && isId(q.nearest)) ids.push(q.nearest);
  if (Object.hasOwn(q, 'recommend')) {
    const r = asObject(q.recommend, 'recommend');
    ids.push(...[...asList(r.positive), ...asList(r.negative)].filter(isId));
  }
  if (Object.hasOwn(q, 'discover')) {
    const d = asObject(q.discover, 'discover');
    ids.push(...(isId(d.target) ? [d.target] : []), ...pairIds(d.context));
  }
  if (Object.hasOwn(q, 'context')) ids.push(...pairIds(q.context));
  if (Object.hasOwn(q, 'relevance_feedback')) {
    const r = asObject(q.relevance_feedback, 'relevance_feedback');
    const examples = asList(r.feedback).map((f) => (f && typeof f === 'object' ? (f as Obj).example : f));
    ids.push(...[r.target, ...examples].filter(isId));
  }
  return ids;
}

/** Fields a universal query (and each of its prefetches) may carry. */
export const QUERY_FIELDS = [
  'prefetch',
  'query',
  'using',
  'filter',
  'params',
  'score_threshold',
  'limit',
  'offset',
  'with_vector',
  'with_payload',
  'lookup_from',
] as const;

/** Options of scopeQuery: the mode, and how a logical collection name becomes physical. */
export interface QueryScope {
  tenant: string;
  partition: boolean;
  physicalName(logical: unknown): string;
  /** Partition mode: point ids used as query inputs are collected here, for an ownership check. */
  pointIds?: unknown[];
}

/**
 * Confines a universal query: the filter of the query and of every prefetch (recursively) gets
 * the tenant clause in partition mode; `lookup_from` is mapped to the tenant's own collection
 * (collection mode) or refused (partition mode, where it would resolve other tenants' ids), and
 * point-id query inputs are collected in partition mode (for the caller to check ownership).
 */
export function scopeQuery(raw: unknown, scope: QueryScope, extraFields: readonly string[] = []): Obj {
  const body = asObject(raw, 'query');
  assertOnlyFields(body, [...QUERY_FIELDS, ...extraFields], 'query');
  const out: Obj = { ...body };
  if (scope.partition) {
    out.filter = scopeFilter(body.filter, scope.tenant);
    const ids = pointIdsInQuery(body.query);
    if (ids.length > 0) {
      if (!scope.pointIds)
        throw forbidden('queries by point id are not available here: send the vector itself');
      scope.pointIds.push(...ids);
    }
  }
  if (body.lookup_from !== undefined) {
    if (scope.partition) throw forbidden('lookup_from is not available in partition mode');
    const lookup = asObject(body.lookup_from, 'lookup_from');
    out.lookup_from = { ...lookup, collection: scope.physicalName(lookup.collection) };
  }
  if (body.prefetch !== undefined) {
    out.prefetch = Array.isArray(body.prefetch)
      ? body.prefetch.map((p) => scopeQuery(p, scope))
      : scopeQuery(body.prefetch, scope);
  }
  return out;
}

/** Removes tenant_id from every returned point's payload (partition mode): the tenant never set it. */
export function stripTenantField(value: unknown): void {
  if (Array.isArray(value)) {
    value.forEach(stripTenantField);
    return;
  }
  if (!value || typeof value !== 'object') return;
  const o = value as Obj;
  if ('id' in o && o.payload && typeof o.payload === 'object') delete (o.payload as Obj)[TENANT_FIELD];
  // Not into payloads and vectors: user data, as deep as a tenant made it (the stack is not).
  for (const [field, inner] of Object.entries(o))
    if (!DATA_FIELDS.has(field) && inner && typeof inner === 'object') stripTenantField(inner);
}
