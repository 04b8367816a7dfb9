import { describe, expect, it } from 'vitest';
import { classifyOperation } from './vector-operations.js';
import { VectorRefusal } from './vector-refusal.js';

describe('classifyOperation', () => {
  it.each([
    ['GET', '/', 'root', undefined],
    ['GET', '/healthz', 'health', undefined],
    ['GET', '/collections', 'list_collections', undefined],
    ['GET', '/collections/documents', 'get_collection', 'documents'],
    ['GET', '/collections/documents/exists', 'collection_exists', 'documents'],
    ['PUT', '/collections/documents', 'create_collection', 'documents'],
    ['DELETE', '/collections/documents', 'delete_collection', 'documents'],
    ['PUT', '/collections/documents/points', 'upsert', 'documents'],
    ['POST', '/collections/documents/points', 'retrieve', 'documents'],
    ['GET', '/collections/documents/points/42', 'get_point', 'documents'],
    ['POST', '/collections/documents/points/delete', 'delete_points', 'documents'],
    ['POST', '/collections/documents/points/payload', 'set_payload', 'documents'],
    ['PUT', '/collections/documents/points/payload', 'overwrite_payload', 'documents'],
    ['POST', '/collections/documents/points/payload/clear', 'clear_payload', 'documents'],
    ['POST', '/collections/documents/points/scroll', 'scroll', 'documents'],
    ['POST', '/collections/documents/points/count', 'count', 'documents'],
    ['POST', '/collections/documents/points/query', 'query', 'documents'],
    ['POST', '/collections/documents/points/query/batch', 'query_batch', 'documents'],
    ['POST', '/collections/documents/points/query/groups', 'query_groups', 'documents'],
    ['POST', '/collections/documents/points/search', 'search', 'documents'],
    ['post', '/collections/documents/points/search/batch', 'search_batch', 'documents'],
  ])('classifies %s %s as %s', (method, path, name, collection) => {
    const op = classifyOperation(method, path);
    expect(op.name).toBe(name);
    expect(op.collection).toBe(collection);
  });

  it('keeps the raw id of a point read', () => {
    expect(
      classifyOperation('GET', '/collections/d/points/11111111-2222-4333-8444-555555555555').pointId,
    ).toBe('11111111-2222-4333-8444-555555555555');
  });

  it.each([
    ['GET', '/aliases'],
    ['POST', '/collections/aliases'],
    ['GET', '/collections/documents/aliases'],
    ['POST', '/collections/documents/snapshots'],
    ['GET', '/snapshots'],
    ['GET', '/cluster'],
    ['GET', '/collections/documents/cluster'],
    ['PUT', '/collections/documents/shards'],
    ['POST', '/collections/documents/shards/delete'],
    ['PATCH', '/collections/documents'],
    ['POST', '/collections/documents/points/batch'],
    ['POST', '/collections/documents/points/recommend'],
    ['POST', '/collections/documents/points/discover/batch'],
    ['POST', '/collections/documents/points/search/matrix/pairs'],
    ['GET', '/telemetry'],
    ['GET', '/metrics'],
    ['POST', '/collections'],
    ['GET', '/collections/%64ocuments'],
    ['GET', '/collections/documents%2F..%2Fx'],
    ['GET', '/collections/../x'],
    ['GET', '/collections/./documents'],
    ['GET', '/collections//documents'],
    ['GET', '/collections/documents/'],
    ['GET', '/collections/docu ments'],
    ['GET', 'collections/documents'],
    ['GET', '/collections/documents\\..\\x'],
  ])('refuses %s %s with 403', (method, path) => {
    expect(() => classifyOperation(method, path)).toThrow(VectorRefusal);
    try {
      classifyOperation(method, path);
    } catch (error) {
      expect((error as VectorRefusal).status).toBe(403);
    }
  });
});
