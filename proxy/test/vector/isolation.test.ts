/**
 * Adversarial isolation of the tenant-scoped Qdrant route, in both modes, against the in-repo
 * fake Qdrant. Tenant A stores points whose payloads carry a secret marker; tenant B then tries
 * every route we know of to read or change them: logical and physical names, encoded and
 * traversal paths, filters naming tenant_id, should / must_not / min_should tricks, A's ids
 * through retrieve / delete / payload / vector updates, scroll offsets, batch and grouped
 * queries, aliases, snapshots, cluster and shard calls. The measure is the count of A's points
 * B saw (the marker in any response) or changed (A's points read straight from Qdrant before
 * and after): it must be zero. The legitimate paths must still work.
 */
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeQdrant, type FakeQdrant } from '../../../test/fakes/qdrant/fake-qdrant.js';
import { Metrics } from '../../src/metrics.js';
import { createVectorRoute, type VectorRoute, type VectorTenant } from '../../src/vector/vector-route.js';

const API_KEY = 'qdrant-test-key';
const A: VectorTenant = { id: 'a', features: ['rag'] };
const B: VectorTenant = { id: 'b', features: ['rag'] };
const UUID_A = '11111111-2222-4333-8444-555555555555';
const A_IDS = [1, 2, 3, UUID_A];
const B_IDS = [101, 102];
const silent = { warn: () => {}, info: () => {} };

let fake: FakeQdrant;
let direct: QdrantClient;

beforeAll(async () => {
  fake = await startFakeQdrant({ apiKey: API_KEY });
  direct = new QdrantClient({ url: fake.url, apiKey: API_KEY, checkCompatibility: false });
});
afterAll(() => fake.close());

/** How many of A's points a response reveals: A's ids anywhere, or a count above B's own. */
function aPointsIn(json: unknown): number {
  let found = 0;
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if ('id' in o && A_IDS.includes(o.id as never)) found += 1;
    if (typeof o.count === 'number') found += Math.max(0, o.count - B_IDS.length);
    Object.values(o).forEach(walk);
  };
  walk((json as { result?: unknown } | undefined)?.result);
  return found;
}

type Call = [label: string, method: string, path: string, body?: unknown, status?: number];

describe.each(['collection', 'partition'] as const)('the Qdrant route in %s mode', (mode) => {
  let route: VectorRoute;
  let metrics: Metrics;
  const physicalA = mode === 'collection' ? 'tenant_a_documents' : 'lanekeeper_documents';
  let leaked = 0;
  /** Requests the fake received before this mode's tests (one fake serves both modes). */
  let firstRequest = 0;

  async function call(tenant: VectorTenant, method: string, path: string, body?: unknown) {
    const res = await route.handle(tenant, {
      method,
      path,
      query: 'wait=true',
      headers: { authorization: 'Bearer lk_tenant_key_must_not_reach_qdrant' },
      body: Buffer.from(body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body)),
      // The proxy's max_json_depth by default.
      maxJsonDepth: 64,
    });
    const text = res.body.toString('utf8');
    // Assertions walk arbitrary Qdrant JSON; typing every response shape would add nothing.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    return { status: res.status, text, json: text ? (JSON.parse(text) as Record<string, any>) : undefined };
  }

  /** A's points as stored in Qdrant, read directly (not through the route). */
  async function pointsOfA() {
    const filter = mode === 'partition' ? { must: [{ key: 'tenant_id', match: { value: 'a' } }] } : undefined;
    const { points } = await direct.scroll(physicalA, {
      filter,
      limit: 100,
      with_payload: true,
      with_vector: true,
    });
    return points;
  }

  beforeAll(async () => {
    firstRequest = fake.requests.length;
    metrics = new Metrics(100);
    route = createVectorRoute({
      config: {
        url: fake.url,
        api_key: API_KEY,
        mode,
        path_prefix: '/qdrant',
        max_response_bytes: 32 * 1024 * 1024,
        templates: [{ name: 'documents', size: 4, distance: 'Cosine' }],
      },
      metrics,
      logger: silent,
    });
    expect(
      (await call(A, 'PUT', '/collections/documents', { vectors: { size: 4, distance: 'Cosine' } })).status,
    ).toBe(200);
    const second = await call(B, 'PUT', '/collections/documents', {
      vectors: { size: 4, distance: 'Cosine' },
    });
    expect(second.status).toBe(mode === 'collection' ? 200 : 409);
    const upsertA = await call(A, 'PUT', '/collections/documents/points', {
      points: A_IDS.map((id, i) => ({
        id,
        vector: [1, i * 0.1, 0, 0],
        payload: { owner: 'A', secret: `a-secret-${i}` },
      })),
    });
    expect(upsertA.status).toBe(200);
    const upsertB = await call(B, 'PUT', '/collections/documents/points', {
      points: B_IDS.map((id, i) => ({ id, vector: [0, 0, 1, i * 0.1], payload: { owner: 'B', n: i } })),
    });
    expect(upsertB.status).toBe(200);
  });

  afterAll(() => route.close());

  it("lets B work with its own points, and never shows it Lanekeeper's tenant_id", async () => {
    const query = await call(B, 'POST', '/collections/documents/points/query', {
      query: [0, 0, 1, 0],
      limit: 10,
      with_payload: true,
    });
    expect(query.status).toBe(200);
    expect(query.json!.result.points.map((p: { id: number }) => p.id).sort()).toEqual(B_IDS);
    expect(query.json!.result.points[0].payload).toEqual({ owner: 'B', n: 0 });
    expect((await call(B, 'POST', '/collections/documents/points/count', {})).json!.result.count).toBe(2);
    const retrieved = await call(B, 'POST', '/collections/documents/points', { ids: [101] });
    expect(retrieved.json!.result).toMatchObject([{ id: 101, payload: { owner: 'B', n: 0 } }]);
    const one = await call(B, 'GET', '/collections/documents/points/102');
    expect(one.json!.result).toMatchObject({ id: 102, payload: { owner: 'B', n: 1 } });
    const list = await call(B, 'GET', '/collections');
    expect(list.json!.result).toEqual({ collections: [{ name: 'documents' }] });
    const info = await call(B, 'GET', '/collections/documents');
    expect(info.json!.result.points_count).toBe(2);
    expect(info.text).not.toContain('tenant_id');
    // The shared collection's pending writes and warnings follow other tenants' activity.
    for (const shared of ['update_queue', 'warnings', 'indexed_vectors_count'])
      expect(Object.hasOwn(info.json!.result, shared), shared).toBe(mode === 'collection');
  });

  it('lets B query by the id of its own point', async () => {
    const res = await call(B, 'POST', '/collections/documents/points/query', {
      query: 101,
      with_payload: true,
    });
    expect(res.status).toBe(200);
    expect(res.json!.result.points.map((p: { id: number }) => p.id)).toEqual([102]);
  });

  it('guards every upsert it sends: tenant update_filter in partition mode, own collection in collection mode', () => {
    const upserts = fake.requests
      .slice(firstRequest)
      .filter((r) => r.method === 'PUT' && /^\/collections\/[^/]+\/points$/.test(r.path));
    expect(upserts.length).toBeGreaterThan(0);
    for (const r of upserts) {
      const body = r.body as {
        points: { payload?: { tenant_id?: string } }[];
        update_filter?: { must: unknown[] };
      };
      const tenant = body.points[0]?.payload?.tenant_id;
      if (mode === 'partition') {
        // Qdrant then skips any existing point of another tenant: no check-then-write race.
        expect(r.path).toBe('/collections/lanekeeper_documents/points');
        expect(body.update_filter?.must[0]).toEqual({ key: 'tenant_id', match: { value: tenant } });
      } else {
        expect([
          '/collections/tenant_a_documents/points',
          '/collections/tenant_b_documents/points',
        ]).toContain(r.path);
        expect(tenant).toBeUndefined();
      }
    }
  });

  // Partition mode only: a collection of the tenant's own holds no other tenant's ids.
  if (mode === 'partition')
    it('refuses a query naming two kinds before Qdrant sees it, which would run the one naming A', async () => {
      const from = fake.requests.length;
      for (const body of [
        { query: { nearest: null, recommend: { positive: [1, UUID_A] } } },
        {
          prefetch: { query: { recommend: null, discover: { target: 2, context: [] } } },
          query: { fusion: 'rrf' },
        },
      ]) {
        const res = await call(B, 'POST', '/collections/documents/points/query', body);
        expect(res.status, res.text).toBe(400);
        expect(res.json?.status?.error).toMatch(/this one names \w+ and \w+/);
      }
      expect(fake.requests.slice(from)).toEqual([]);
    });

  // Bounded before the body is parsed, as max_json_depth bounds every body the proxy takes,
  // counted as that scan counts: the body's own object is the first level.
  it('reads a filter nested to max_json_depth, and refuses one level deeper with 400 before Qdrant', async () => {
    const nested = (levels: number) => {
      let filter: Record<string, unknown> = { key: 'owner', match: { value: 'b' } };
      for (let i = 0; i < levels; i++) filter = { must: [filter] };
      return { filter };
    };
    // {filter: F}: one level, two for each {must: [...]}, two for the condition: 63, then 65.
    expect((await call(B, 'POST', '/collections/documents/points/count', nested(30))).status).toBe(200);
    const from = fake.requests.length;
    const deeper = await call(B, 'POST', '/collections/documents/points/count', nested(31));
    expect(deeper.status).toBe(400);
    expect(deeper.json?.status?.error).toMatch(/nested more than 64 levels deep/);
    expect(fake.requests.slice(from)).toEqual([]);
  });

  it('counts exactly in partition mode, where an estimate reads the whole shared collection', async () => {
    const from = fake.requests.length;
    const count = await call(B, 'POST', '/collections/documents/points/count', {
      filter: { must: [{ has_id: [101, 1, 2] }] },
      exact: false,
    });
    expect(count.status).toBe(200);
    const facet = await call(B, 'POST', '/collections/documents/facet', { key: 'owner', exact: false });
    expect(facet.status, facet.text).toBe(200);
    const sent = fake.requests.slice(from).filter((r) => /\/(points\/count|facet)$/.test(r.path));
    expect(sent.map((r) => (r.body as { exact?: boolean }).exact)).toEqual(
      mode === 'partition' ? [true, true] : [false, false],
    );
  });

  it('sends the deployment api-key to Qdrant and never the tenant credential', () => {
    expect(fake.requests.length).toBeGreaterThan(0);
    for (const r of fake.requests) {
      expect(r.headers['api-key']).toBe(API_KEY);
      expect(r.headers.authorization).toBeUndefined();
    }
  });

  const tenantFilter = { must: [{ key: 'tenant_id', match: { value: 'a' } }] };
  const shouldTrick = { should: [{ key: 'owner', match: { value: 'A' } }, { has_id: A_IDS }] };
  const mustNotTrick = { must_not: [{ key: 'owner', match: { value: 'B' } }] };
  const minShould = { min_should: { conditions: [{ has_id: A_IDS }], min_count: 1 } };
  // Deep enough to overflow the stack of a recursive check (a 502 once), as raw JSON:
  // JSON.stringify itself overflows on it.
  const deepFilter = `{"filter":${'{"must":['.repeat(3_000)}{}${']}'.repeat(3_000)}}`;
  const attacks: Call[] = [
    ['physical name', 'POST', `/collections/${physicalA}/points/scroll`, {}, 403],
    ["the other tenant's physical name", 'GET', '/collections/tenant_a_documents', undefined, 403],
    ['the shared physical name', 'POST', '/collections/lanekeeper_documents/points/count', {}, 403],
    ['percent-encoded physical name', 'POST', '/collections/tenant%5Fa%5Fdocuments/points/scroll', {}, 403],
    ['percent-encoded letter', 'GET', '/collections/%64ocuments', undefined, 403],
    [
      'encoded slash traversal',
      'POST',
      '/collections/documents%2F..%2Ftenant_a_documents/points/scroll',
      {},
      403,
    ],
    ['dot-dot traversal', 'POST', '/collections/../collections/tenant_a_documents/points/scroll', {}, 403],
    ['dot segment', 'POST', '/collections/./documents/points/scroll', {}, 403],
    ['empty segment', 'POST', '/collections//documents/points/scroll', {}, 403],
    ['unknown logical name', 'POST', '/collections/secrets/points/scroll', {}, 403],
    [
      'filter setting tenant_id',
      'POST',
      '/collections/documents/points/scroll',
      { filter: tenantFilter },
      403,
    ],
    [
      'quoted tenant_id key',
      'POST',
      '/collections/documents/points/count',
      { filter: { must: [{ key: '"tenant_id"', match: { value: 'a' } }] } },
      403,
    ],
    [
      'nested tenant_id in should',
      'POST',
      '/collections/documents/points/query',
      { query: [1, 0, 0, 0], filter: { should: [tenantFilter] } },
      403,
    ],
    [
      'tenant_id in must_not',
      'POST',
      '/collections/documents/points/count',
      { filter: { must_not: [{ key: 'tenant_id', match: { value: 'b' } }] } },
      403,
    ],
    [
      'should trick on query',
      'POST',
      '/collections/documents/points/query',
      { query: [1, 0, 0, 0], filter: shouldTrick, with_payload: true, limit: 100 },
    ],
    [
      'must_not trick on scroll',
      'POST',
      '/collections/documents/points/scroll',
      { filter: mustNotTrick, with_payload: true, limit: 100 },
    ],
    ['min_should trick on count', 'POST', '/collections/documents/points/count', { filter: minShould }],
    ['a filter nested 3,000 levels deep', 'POST', '/collections/documents/points/count', deepFilter, 400],
    [
      'an upsert with a payload 6,000 levels deep',
      'PUT',
      '/collections/documents/points',
      `{"points":[{"id":160,"vector":[1,0,0,0],"payload":{"x":${'{"a":'.repeat(6_000)}1${'}'.repeat(6_000)}}}]}`,
      400,
    ],
    [
      'scroll from an id of A',
      'POST',
      '/collections/documents/points/scroll',
      { offset: 1, limit: 100, with_payload: true },
    ],
    [
      'scroll from a UUID of A',
      'POST',
      '/collections/documents/points/scroll',
      { offset: UUID_A, limit: 100, with_payload: true },
    ],
    [
      'retrieve ids of A',
      'POST',
      '/collections/documents/points',
      { ids: A_IDS, with_payload: true, with_vector: true },
    ],
    ['get a point of A', 'GET', '/collections/documents/points/1', undefined, 404],
    ['get a UUID point of A', 'GET', `/collections/documents/points/${UUID_A}`, undefined, 404],
    // Rounded by Number(), it would name point 9007199254740992.
    [
      'get a point by an id past 2^53',
      'GET',
      '/collections/documents/points/9007199254740993',
      undefined,
      mode === 'partition' ? 400 : 404,
    ],
    [
      'query by an id of A',
      'POST',
      '/collections/documents/points/query',
      { query: 1, with_payload: true },
      404,
    ],
    [
      'query by ids of A and B',
      'POST',
      '/collections/documents/points/query',
      { query: { recommend: { positive: [101, UUID_A] } } },
      mode === 'partition' ? 404 : undefined,
    ],
    [
      'prefetch by an id of A',
      'POST',
      '/collections/documents/points/query',
      { prefetch: { query: { nearest: 2 } }, query: { fusion: 'rrf' } },
      mode === 'partition' ? 404 : undefined,
    ],
    [
      'recommend from ids of A',
      'POST',
      '/collections/documents/points/query',
      { query: { recommend: { positive: [1, 2] } } },
      mode === 'partition' ? 404 : undefined,
    ],
    // Qdrant's Query is an untagged enum whose variants ignore unknown keys: it runs the first
    // kind that parses, here the recommend by A's ids, not the null nearest.
    [
      'recommend by ids of A behind a null nearest',
      'POST',
      '/collections/documents/points/query',
      { query: { nearest: null, recommend: { positive: [1, UUID_A] } } },
      mode === 'partition' ? 400 : undefined,
    ],
    [
      'discover from an id of A behind a null recommend, in a prefetch',
      'POST',
      '/collections/documents/points/query',
      {
        prefetch: { query: { recommend: null, discover: { target: 2, context: [] } } },
        query: { fusion: 'rrf' },
      },
      mode === 'partition' ? 400 : undefined,
    ],
    [
      'context of A behind an empty nearest',
      'POST',
      '/collections/documents/points/query',
      { query: { nearest: {}, context: [{ positive: 1, negative: 2 }] } },
      mode === 'partition' ? 400 : undefined,
    ],
    [
      'relevance feedback on A behind a null discover, in a batch',
      'POST',
      '/collections/documents/points/query/batch',
      { searches: [{ query: { discover: null, relevance_feedback: { target: 1, feedback: [] } } }] },
      mode === 'partition' ? 400 : undefined,
    ],
    [
      'batch query by an id of A',
      'POST',
      '/collections/documents/points/query/batch',
      { searches: [{ query: [0, 0, 1, 0] }, { query: UUID_A, with_payload: true }] },
      404,
    ],
    [
      'lookup_from physical',
      'POST',
      '/collections/documents/points/query',
      { query: [1, 0, 0, 0], lookup_from: { collection: physicalA } },
      403,
    ],
    [
      'batch query with a should trick',
      'POST',
      '/collections/documents/points/query/batch',
      {
        searches: [
          { query: [1, 0, 0, 0], filter: shouldTrick, with_payload: true },
          { query: [1, 0, 0, 0], with_payload: true, limit: 100 },
        ],
      },
    ],
    [
      'batch query naming tenant_id',
      'POST',
      '/collections/documents/points/query/batch',
      { searches: [{ query: [1, 0, 0, 0], filter: tenantFilter }] },
      403,
    ],
    [
      'grouped query by tenant_id',
      'POST',
      '/collections/documents/points/query/groups',
      { query: [1, 0, 0, 0], group_by: 'tenant_id' },
      403,
    ],
    [
      'grouped query with lookup',
      'POST',
      '/collections/documents/points/query/groups',
      { query: [1, 0, 0, 0], group_by: 'owner', with_lookup: physicalA },
      403,
    ],
    [
      'deprecated search with a should trick',
      'POST',
      '/collections/documents/points/search',
      { vector: [1, 0, 0, 0], filter: shouldTrick, with_payload: true, limit: 100 },
    ],
    [
      'search batch without filter',
      'POST',
      '/collections/documents/points/search/batch',
      { searches: [{ vector: [1, 0, 0, 0], with_payload: true, limit: 100 }] },
    ],
    ['facet on tenant_id', 'POST', '/collections/documents/facet', { key: 'tenant_id' }, 403],
    [
      'order scroll by tenant_id',
      'POST',
      '/collections/documents/points/scroll',
      { order_by: 'tenant_id' },
      403,
    ],
    ['shard_key in a body', 'POST', '/collections/documents/points/scroll', { shard_key: 'a' }, 403],
    ['delete ids of A', 'POST', '/collections/documents/points/delete', { points: A_IDS }],
    ['delete by an id filter', 'POST', '/collections/documents/points/delete', { filter: shouldTrick }],
    [
      'set payload on ids of A',
      'POST',
      '/collections/documents/points/payload',
      { payload: { owner: 'B' }, points: A_IDS },
    ],
    [
      'overwrite payload by filter',
      'PUT',
      '/collections/documents/points/payload',
      { payload: { owner: 'B' }, filter: mustNotTrick },
    ],
    [
      'delete payload of A',
      'POST',
      '/collections/documents/points/payload/delete',
      { keys: ['secret'], points: A_IDS },
    ],
    ['clear payload of A', 'POST', '/collections/documents/points/payload/clear', { points: A_IDS }],
    [
      'update vectors of A',
      'PUT',
      '/collections/documents/points/vectors',
      { points: [{ id: 1, vector: [0, 1, 0, 0] }] },
      404,
    ],
    [
      'delete vectors of A',
      'POST',
      '/collections/documents/points/vectors/delete',
      { points: A_IDS, vector: [''] },
    ],
    [
      'set tenant_id in a payload',
      'POST',
      '/collections/documents/points/payload',
      { payload: { tenant_id: 'a' }, points: B_IDS },
      403,
    ],
    [
      'set a payload key path under tenant_id',
      'POST',
      '/collections/documents/points/payload',
      { payload: { x: 1 }, key: 'tenant_id', points: B_IDS },
      403,
    ],
    [
      'overwrite with tenant_id',
      'PUT',
      '/collections/documents/points/payload',
      { payload: { tenant_id: 'a' }, points: B_IDS },
      403,
    ],
    [
      'delete the tenant_id key',
      'POST',
      '/collections/documents/points/payload/delete',
      { keys: ['tenant_id'], points: B_IDS },
      403,
    ],
    [
      'upsert a point claiming tenant a',
      'PUT',
      '/collections/documents/points',
      { points: [{ id: 150, vector: [1, 0, 0, 0], payload: { tenant_id: 'a' } }] },
      403,
    ],
    [
      'batch upsert claiming tenant a',
      'PUT',
      '/collections/documents/points',
      { batch: { ids: [151], vectors: [[1, 0, 0, 0]], payloads: [{ tenant_id: 'a' }] } },
      403,
    ],
    [
      'conditional upsert with a should trick',
      'PUT',
      '/collections/documents/points',
      { points: [{ id: 152, vector: [1, 0, 0, 0] }], update_filter: shouldTrick },
    ],
    [
      'conditional upsert naming tenant_id',
      'PUT',
      '/collections/documents/points',
      { points: [], update_filter: tenantFilter },
      403,
    ],
    ['batch update endpoint', 'POST', '/collections/documents/points/batch', { operations: [] }, 403],
    ['recommend endpoint', 'POST', '/collections/documents/points/recommend', { positive: [1] }, 403],
    ['discover endpoint', 'POST', '/collections/documents/points/discover', { target: 1 }, 403],
    ['list aliases', 'GET', '/aliases', undefined, 403],
    ['collection aliases', 'GET', '/collections/documents/aliases', undefined, 403],
    [
      'create an alias',
      'POST',
      '/collections/aliases',
      { actions: [{ create_alias: { collection_name: physicalA, alias_name: 'documents' } }] },
      403,
    ],
    ['snapshot a collection', 'POST', '/collections/documents/snapshots', undefined, 403],
    ['list full snapshots', 'GET', '/snapshots', undefined, 403],
    ['cluster status', 'GET', '/cluster', undefined, 403],
    ['collection cluster', 'GET', '/collections/documents/cluster', undefined, 403],
    ['shard keys', 'PUT', '/collections/documents/shards', { shard_key: 'a' }, 403],
    ['telemetry', 'GET', '/telemetry', undefined, 403],
    ['update collection params', 'PATCH', '/collections/documents', { optimizers_config: {} }, 403],
    [
      'create a non-template collection',
      'PUT',
      '/collections/other',
      { vectors: { size: 4, distance: 'Cosine' } },
      403,
    ],
    [
      'create with another shape',
      'PUT',
      '/collections/documents',
      { vectors: { size: 8, distance: 'Dot' } },
      403,
    ],
    ['delete the physical collection of A', 'DELETE', '/collections/tenant_a_documents', undefined, 403],
    [
      'index tenant_id',
      'PUT',
      '/collections/documents/index',
      { field_name: 'tenant_id', field_schema: 'keyword' },
      403,
    ],
    ['drop the tenant_id index', 'DELETE', '/collections/documents/index/tenant_id', undefined, 403],
  ];

  it.each(attacks)('shows or changes none of A through %s', async (_label, method, path, body, status) => {
    const before = await pointsOfA();
    const res = await call(B, method, path, body);
    if (status !== undefined) expect(res.status).toBe(status);
    if (res.status >= 400) expect(res.json?.status?.error, res.text).toEqual(expect.any(String));
    const sawA = aPointsIn(res.json);
    leaked += sawA;
    expect(sawA, res.text).toBe(0);
    expect(res.text).not.toContain('a-secret');
    expect(res.text).not.toContain('tenant_a_');
    expect(await pointsOfA()).toEqual(before);
  });

  it('lets B delete its own collection without touching A, and zero of A leaked overall', async () => {
    const before = await pointsOfA();
    expect((await call(B, 'DELETE', '/collections/documents')).status).toBe(200);
    expect(await pointsOfA()).toEqual(before);
    expect(before).toHaveLength(4);
    expect(before.every((p) => (p.payload as { owner?: string }).owner === 'A')).toBe(true);
    expect(leaked).toBe(0);
  });

  it('refuses a tenant whose plan lacks the rag feature, and counts every call', async () => {
    const res = await call({ id: 'b', features: [] }, 'GET', '/collections');
    expect(res.status).toBe(403);
    expect(res.json!.status.error).toContain('rag');
    const text = await metrics.registry.getSingleMetricAsString('lanekeeper_vector_requests_total');
    expect(text).toContain('tenant="b",operation="query",status="200"');
    expect(text).toContain('tenant="b",operation="refused",status="403"');
  });
});
