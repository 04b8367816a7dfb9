/**
 * Which Qdrant operation a request through the tenant route is, decided from its method and
 * raw path. The route is an allowlist: only the operations below pass; aliases, snapshots,
 * cluster, shards, collection updates, batch updates, recommend/discover and everything not
 * listed are refused with 403. Paths are checked raw, before any decoding: a name that needs
 * percent-encoding, or a `.`/`..`/empty segment, is refused rather than interpreted, so no
 * decoding or normalisation step between us and Qdrant can turn it into another collection.
 */
import type { VectorRefusal } from './vector-refusal.js';
import { forbidden } from './vector-refusal.js';

/** An operation the route knows how to confine to one tenant. */
export type VectorOperationName =
  | 'root'
  | 'health'
  | 'list_collections'
  | 'get_collection'
  | 'collection_exists'
  | 'create_collection'
  | 'delete_collection'
  | 'create_index'
  | 'delete_index'
  | 'upsert'
  | 'retrieve'
  | 'get_point'
  | 'delete_points'
  | 'update_vectors'
  | 'delete_vectors'
  | 'set_payload'
  | 'overwrite_payload'
  | 'delete_payload'
  | 'clear_payload'
  | 'scroll'
  | 'count'
  | 'facet'
  | 'query'
  | 'query_batch'
  | 'query_groups'
  | 'search'
  | 'search_batch';

/** A classified request: the operation, its logical collection and, for get_point, the raw id. */
export interface VectorOperation {
  name: VectorOperationName;
  collection?: string;
  pointId?: string;
  /** The rest of the path after the collection, e.g. "/points/query". */
  suffix: string;
}

const COLLECTION_OPS: Record<string, VectorOperationName> = {
  'GET ': 'get_collection',
  'PUT ': 'create_collection',
  'DELETE ': 'delete_collection',
  'GET /exists': 'collection_exists',
  'PUT /index': 'create_index',
  'PUT /points': 'upsert',
  'POST /points': 'retrieve',
  'POST /points/delete': 'delete_points',
  'PUT /points/vectors': 'update_vectors',
  'POST /points/vectors/delete': 'delete_vectors',
  'POST /points/payload': 'set_payload',
  'PUT /points/payload': 'overwrite_payload',
  'POST /points/payload/delete': 'delete_payload',
  'POST /points/payload/clear': 'clear_payload',
  'POST /points/scroll': 'scroll',
  'POST /points/count': 'count',
  'POST /facet': 'facet',
  'POST /points/query': 'query',
  'POST /points/query/batch': 'query_batch',
  'POST /points/query/groups': 'query_groups',
  'POST /points/search': 'search',
  'POST /points/search/batch': 'search_batch',
};

/** Segments that are plain names: nothing to decode, nothing to normalise. */
const PLAIN_SEGMENT = /^[A-Za-z0-9_-]+$/;

/** The operation of a request, or a 403 VectorRefusal saying why it is not allowed. */
export function classifyOperation(method: string, rawPath: string): VectorOperation {
  const path = rawPath === '' ? '/' : rawPath;
  if (!path.startsWith('/')) throw forbidden('the path must start with "/"');
  const segments = path.split('/').slice(1);
  if (path !== '/' && segments.some((s) => !PLAIN_SEGMENT.test(s))) {
    throw forbidden(
      'path segments must be plain names (letters, digits, "_" and "-"): encoded, empty, "." and ".." segments are refused',
    );
  }
  const m = method.toUpperCase();
  if (path === '/' && m === 'GET') return { name: 'root', suffix: '' };
  if (m === 'GET' && ['/healthz', '/livez', '/readyz'].includes(path)) return { name: 'health', suffix: '' };
  if (path === '/collections' && m === 'GET') return { name: 'list_collections', suffix: '' };
  if (segments[0] !== 'collections' || segments.length < 2) throw refusedArea(m, path);
  const collection = segments[1]!;
  if (collection === 'aliases') throw forbidden('aliases are not available through the tenant route');
  const suffix = segments.length > 2 ? `/${segments.slice(2).join('/')}` : '';
  if (m === 'GET' && segments[2] === 'points' && segments.length === 4) {
    return { name: 'get_point', collection, pointId: segments[3]!, suffix };
  }
  if (m === 'DELETE' && segments[2] === 'index' && segments.length === 4) {
    return { name: 'delete_index', collection, suffix };
  }
  const name = COLLECTION_OPS[`${m} ${suffix}`];
  if (!name) throw refusedArea(m, path);
  return { name, collection, suffix };
}

function refusedArea(method: string, path: string): VectorRefusal {
  return forbidden(
    `${method} ${path} is not available through the tenant route: aliases, snapshots, cluster, shard, ` +
      'collection-update and batch-update operations are refused because they can reach other tenants',
  );
}
