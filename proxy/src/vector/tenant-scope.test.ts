import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkClientBody,
  pointIdsInQuery,
  scopeFilter,
  scopeQuery,
  scopeSelector,
  stripTenantField,
} from './tenant-scope.js';
import { VectorRefusal } from './vector-refusal.js';

const T = { key: 'tenant_id', match: { value: 'b' } };
const scope = (partition: boolean) => ({
  tenant: 'b',
  partition,
  physicalName: (name: unknown) => {
    if (name !== 'documents') throw new VectorRefusal(403, 'PROXY_ERR_VECTOR_UNKNOWN_COLLECTION', 'unknown');
    return 'tenant_b_documents';
  },
});

describe('scopeFilter', () => {
  it('adds the tenant clause when the client sent no filter', () => {
    expect(scopeFilter(undefined, 'b')).toEqual({ must: [T] });
  });

  it('keeps the whole client filter as one nested clause beside the tenant clause', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom('must', 'should', 'must_not', 'min_should'), fc.jsonValue()),
        (filter) => {
          const scoped = scopeFilter(filter, 'b');
          expect(scoped).toEqual({ must: [T, filter] });
        },
      ),
    );
  });

  it('refuses a filter that is not an object', () => {
    expect(() => scopeFilter([T], 'b')).toThrow(VectorRefusal);
  });
});

describe('scopeSelector', () => {
  it.each([
    [{ points: [1, 'u'] }, { filter: { must: [T, { has_id: [1, 'u'] }] } }],
    [{ filter: { should: [{ has_id: [1] }] } }, { filter: { must: [T, { should: [{ has_id: [1] }] }] } }],
    [
      { points: [1], filter: { must_not: [] }, keys: ['x'] },
      { keys: ['x'], filter: { must: [T, { has_id: [1] }, { must_not: [] }] } },
    ],
  ])('confines %j to the tenant', (body, expected) => {
    expect(scopeSelector(body, 'b')).toEqual(expected);
  });

  it('refuses a selector with neither ids nor filter', () => {
    expect(() => scopeSelector({ payload: {} }, 'b')).toThrow(VectorRefusal);
  });
});

describe('checkClientBody, on integers JSON.parse rounds', () => {
  const big = JSON.parse('9007199254740993') as number;
  it.each([
    ['an upserted id', { points: [{ id: big, vector: [1] }] }],
    ['a batch id', { batch: { ids: [1, big], vectors: [[1], [2]] } }],
    ['a selected id', { points: [big] }],
    ['a has_id', { filter: { must: [{ has_id: [big] }] } }],
    ['a query by id', { query: { recommend: { positive: [big] } } }],
    ['a scroll offset', { offset: big }],
    ['an integer match', { filter: { must: [{ key: 'n', match: { any: [big] } }] } }],
  ])('refuses %s past 2^53 - 1', (_label, body) => {
    expect(() => checkClientBody(body)).toThrow(/above 2\^53 - 1/);
  });

  it.each([
    ['a payload value', { points: [{ id: 1, vector: [1], payload: { hash: big } }] }],
    ['a range bound, a double in Qdrant too', { filter: { must: [{ key: 't', range: { gte: big } }] } }],
    ['the largest exact id', { points: [Number.MAX_SAFE_INTEGER] }],
  ])('lets %s through', (_label, body) => {
    expect(() => checkClientBody(body)).not.toThrow();
  });
});

describe('checkClientBody', () => {
  it.each([
    ['a filter key', { filter: { must: [{ key: 'tenant_id', match: { value: 'a' } }] } }],
    ['a quoted key', { filter: { must: [{ key: '"tenant_id"', match: { value: 'a' } }] } }],
    ['an array key', { filter: { must: [{ key: 'tenant_id[]', match: { value: 'a' } }] } }],
    ['a nested path', { filter: { must: [{ key: 'tenant_id.x', match: { value: 'a' } }] } }],
    ['is_empty', { filter: { must: [{ is_empty: { key: 'tenant_id' } }] } }],
    [
      'deep in should',
      { filter: { should: [{ must_not: [{ should: [{ key: 'tenant_id', match: { any: ['a'] } }] }] }] } },
    ],
    ['a payload', { payload: { tenant_id: 'a' } }],
    ['a point payload', { points: [{ id: 1, vector: [1], payload: { tenant_id: 'a' } }] }],
    ['batch payloads', { batch: { ids: [1], vectors: [[1]], payloads: [{}, { tenant_id: 'a' }] } }],
    ['delete_payload keys', { keys: ['x', 'tenant_id'] }],
    ['a set_payload key', { key: 'tenant_id', payload: { x: 1 } }],
    ['order_by string', { order_by: 'tenant_id' }],
    ['order_by object', { order_by: { key: 'tenant_id' } }],
    ['group_by', { group_by: 'tenant_id' }],
    ['a facet key', { key: 'tenant_id' }],
    [
      'a prefetch filter',
      { prefetch: [{ filter: { must: [{ key: 'tenant_id', match: { value: 'a' } }] } }] },
    ],
  ])('refuses tenant_id in %s', (_label, body) => {
    expect(() => checkClientBody(body)).toThrow(/reserved by Lanekeeper/);
  });

  it.each([
    [
      'payload data that mentions it',
      { payload: { text: 'tenant_id', nested: { tenant_id: 'kept as data' } } },
    ],
    ['a with_payload selection', { with_payload: ['tenant_id'] }],
    [
      'other keys',
      {
        filter: {
          must: [
            { key: 'tenant', match: { value: 'a' } },
            { key: 'my_tenant_id', match: { value: 1 } },
          ],
        },
      },
    ],
  ])('allows %s', (_label, body) => {
    expect(() => checkClientBody(body)).not.toThrow();
  });
});

describe('pointIdsInQuery', () => {
  const U = '11111111-2222-4333-8444-555555555555';
  it.each([
    [[0.1, 0.2], []],
    [[[0.1], [0.2]], []],
    [{ indices: [1], values: [0.5] }, []],
    [{ nearest: [0.1, 0.2] }, []],
    [{ fusion: 'rrf' }, []],
    [{ recommend: { positive: [[0.1, 0.2]], negative: [] } }, []],
    [undefined, []],
    [7, [7]],
    [U, [U]],
    [{ nearest: 7 }, [7]],
    [{ recommend: { positive: [[0.1], 3] } }, [3]],
    [{ recommend: { negative: [U], positive: 5 } }, [5, U]],
    [{ discover: { target: 1, context: [] } }, [1]],
    [{ discover: { target: [0.1], context: [{ positive: 2, negative: [0.3] }] } }, [2]],
    [{ context: { positive: [0.1], negative: 4 } }, [4]],
    [
      {
        relevance_feedback: {
          target: 6,
          feedback: [
            { example: [0.1], score: 1 },
            { example: U, score: 0 },
          ],
        },
      },
      [6, U],
    ],
    [{ relevance_feedback: { target: [0.1], feedback: [] } }, []],
  ])('of %j is %j', (query, expected) => {
    expect(pointIdsInQuery(query)).toEqual(expected);
  });
});

describe('pointIdsInQuery, on a query naming more than one kind', () => {
  // Qdrant runs the first kind that parses and ignores the other keys, so reading only the
  // first kind present let ids through behind a kind Qdrant would skip.
  it.each([
    { nearest: null, recommend: { positive: [101] } },
    { nearest: {}, recommend: { positive: [101] } },
    { recommend: null, discover: { target: 101, context: [] } },
    { discover: null, context: [{ positive: 101, negative: 102 }] },
    { nearest: null, relevance_feedback: { target: 101, feedback: [] } },
    { nearest: [0.1, 0.2], fusion: 'rrf' },
  ])('refuses %j', (query) => {
    expect(() => pointIdsInQuery(query)).toThrow(/a query is one of .*; this one names \w+ and \w+/);
  });

  it('reads own keys only: a query from JSON with a "__proto__" key names no kind through it', () => {
    const query = JSON.parse('{"__proto__": {"recommend": {"positive": [101]}}, "nearest": 7}');
    expect(pointIdsInQuery(query)).toEqual([7]);
  });
});

describe('scopeQuery', () => {
  it('scopes the filter of the query and of every nested prefetch in partition mode', () => {
    const body = {
      query: { fusion: 'rrf' },
      prefetch: [
        { query: [0.1], filter: { should: [{ has_id: [1] }] }, prefetch: { query: [0.2] } },
        { query: [0.3], limit: 5 },
      ],
    };
    expect(scopeQuery(body, scope(true))).toEqual({
      query: { fusion: 'rrf' },
      filter: { must: [T] },
      prefetch: [
        {
          query: [0.1],
          filter: { must: [T, { should: [{ has_id: [1] }] }] },
          prefetch: { query: [0.2], filter: { must: [T] } },
        },
        { query: [0.3], limit: 5, filter: { must: [T] } },
      ],
    });
  });

  it('collects point-id inputs in partition mode, also inside prefetches, for an ownership check', () => {
    const collecting = { ...scope(true), pointIds: [] as unknown[] };
    scopeQuery(
      { query: 1, prefetch: [{ query: { nearest: 2 } }, { query: { recommend: { positive: [3] } } }] },
      collecting,
    );
    expect(collecting.pointIds).toEqual([1, 2, 3]);
    expect(() => scopeQuery({ query: 1 }, scope(true))).toThrow(/point id/);
  });

  it('refuses lookup_from in partition mode', () => {
    expect(() => scopeQuery({ query: [1], lookup_from: { collection: 'documents' } }, scope(true))).toThrow(
      /lookup_from/,
    );
  });

  it('maps lookup_from to the tenant collection in collection mode and refuses other names', () => {
    expect(
      scopeQuery({ query: 1, lookup_from: { collection: 'documents', vector: 'v' } }, scope(false)),
    ).toEqual({
      query: 1,
      lookup_from: { collection: 'tenant_b_documents', vector: 'v' },
    });
    expect(() =>
      scopeQuery({ query: 1, lookup_from: { collection: 'tenant_a_documents' } }, scope(false)),
    ).toThrow(VectorRefusal);
  });

  it('refuses fields it has not reviewed', () => {
    expect(() => scopeQuery({ query: [1], shard_key: 'a' }, scope(false))).toThrow(/shard_key/);
  });
});

describe('stripTenantField', () => {
  it('removes tenant_id from the payload of every returned point, wherever it sits', () => {
    const result = {
      points: [{ id: 1, payload: { tenant_id: 'b', x: 1 } }],
      groups: [{ id: 'g', hits: [{ id: 2, score: 1, payload: { tenant_id: 'b' } }] }],
      batch: [[{ id: 3, payload: { tenant_id: 'b', y: 2 } }]],
    };
    stripTenantField(result);
    expect(result).toEqual({
      points: [{ id: 1, payload: { x: 1 } }],
      groups: [{ id: 'g', hits: [{ id: 2, score: 1, payload: {} }] }],
      batch: [[{ id: 3, payload: { y: 2 } }]],
    });
  });
});
