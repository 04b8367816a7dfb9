/**
 * The Qdrant contract: what Lanekeeper relies on from Qdrant's REST API, asserted through the
 * official client (@qdrant/js-client-rest) and raw HTTP. It runs against a real Qdrant when
 * QDRANT_URL is set and against the in-repo fake otherwise, with the same code, so a passing
 * run against a real server is the evidence that the fake tells the truth.
 *
 *   docker run -d --name lk-qdrant -p 6333:6333 qdrant/qdrant:v1.19.0
 *   QDRANT_URL=http://127.0.0.1:6333 npx vitest run control-plane/test/qdrant/contract.test.ts
 */
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qdrantUnderTest, uniquePrefix, type QdrantTarget } from './qdrant-target.js';

let target: QdrantTarget;
let client: QdrantClient;
const prefix = uniquePrefix('contract');
const cos = `${prefix}cos`;
const dot = `${prefix}dot`;
const euclid = `${prefix}euclid`;
const UUID_A = '5c56c793-69f3-4fbf-87e6-c4bf54c28c26';
const UUID_B = 'f0e1d2c3-b4a5-4968-8776-655443322110';

/** Qdrant's response envelope, loosely typed for assertions. */
interface Envelope {
  result: unknown;
  status: string | { error: string };
  time: number;
}

/** Raw HTTP against the target, for the envelope and status details the client hides. */
async function raw(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Envelope }> {
  const res = await fetch(`${target.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(target.apiKey ? { 'api-key': target.apiKey } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : undefined) as Envelope };
}

async function statusOf(promise: Promise<unknown>): Promise<number | undefined> {
  try {
    await promise;
    return 200;
  } catch (error) {
    return (error as { status?: number }).status;
  }
}

beforeAll(async () => {
  target = await qdrantUnderTest();
  client = new QdrantClient({ url: target.url, apiKey: target.apiKey, checkCompatibility: false });
  await client.createCollection(cos, { vectors: { size: 4, distance: 'Cosine' } });
  await client.createCollection(dot, { vectors: { size: 2, distance: 'Dot' } });
  await client.createCollection(euclid, { vectors: { size: 2, distance: 'Euclid' } });
  await client.upsert(cos, {
    wait: true,
    points: [
      { id: 1, vector: [1, 0, 0, 0], payload: { tenant_id: 'a', color: 'red', n: 1, tags: ['x', 'y'] } },
      { id: 2, vector: [0.9, 0.1, 0, 0], payload: { tenant_id: 'a', color: 'blue', n: 2 } },
      { id: 3, vector: [0, 1, 0, 0], payload: { tenant_id: 'b', color: 'red', n: 3, tags: ['z'] } },
      { id: UUID_A, vector: [0, 0, 1, 0], payload: { tenant_id: 'b', color: 'green', n: 4 } },
      { id: UUID_B, vector: [0, 0, 0, 2], payload: { tenant_id: 'a', n: 5 } },
    ],
  });
});

afterAll(async () => {
  for (const name of [cos, dot, euclid, `${prefix}tmp`]) await client?.deleteCollection(name).catch(() => {});
  await target?.close();
});

describe('collections', () => {
  it('lists, reports existence and describes a created collection', async () => {
    const { collections } = await client.getCollections();
    expect(collections.map((c) => c.name)).toEqual(expect.arrayContaining([cos, dot, euclid]));
    expect((await client.collectionExists(cos)).exists).toBe(true);
    expect((await client.collectionExists(`${prefix}missing`)).exists).toBe(false);
    const info = await client.getCollection(cos);
    expect(info.points_count).toBe(5);
    expect(info.config.params.vectors).toMatchObject({ size: 4, distance: 'Cosine' });
  });

  it('refuses to create a collection twice with 409 in the error envelope', async () => {
    const res = await raw('PUT', `/collections/${cos}`, { vectors: { size: 4, distance: 'Cosine' } });
    expect(res.status).toBe(409);
    expect(res.json.result).toBeNull();
    expect(res.json.status).toEqual({ error: expect.any(String) });
  });

  it('answers 404 in the error envelope for a missing collection', async () => {
    const res = await raw('GET', `/collections/${prefix}missing`);
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({ result: null, status: { error: expect.any(String) } });
    expect(
      await statusOf(
        client.upsert(`${prefix}missing`, { wait: true, points: [{ id: 1, vector: [1, 0, 0, 0] }] }),
      ),
    ).toBe(404);
  });

  it('deletes a collection, and deleting it again does not fail', async () => {
    const tmp = `${prefix}tmp`;
    expect(await client.createCollection(tmp, { vectors: { size: 2, distance: 'Cosine' } })).toBe(true);
    expect(await client.deleteCollection(tmp)).toBe(true);
    expect((await client.collectionExists(tmp)).exists).toBe(false);
    const again = await raw('DELETE', `/collections/${tmp}`);
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ status: 'ok', result: false });
  });

  it('creates a keyword payload index flagged is_tenant and shows it in the schema', async () => {
    const res = await client.createPayloadIndex(cos, {
      wait: true,
      field_name: 'tenant_id',
      field_schema: { type: 'keyword', is_tenant: true },
    });
    expect(res.status).toBe('completed');
    const info = await client.getCollection(cos);
    expect(info.payload_schema.tenant_id).toMatchObject({
      data_type: 'keyword',
      params: { is_tenant: true },
    });
  });

  it('lists aliases, including one created for a collection', async () => {
    const alias = `${prefix}alias`;
    await client.updateCollectionAliases({
      actions: [{ create_alias: { collection_name: dot, alias_name: alias } }],
    });
    expect((await client.getAliases()).aliases).toContainEqual({ alias_name: alias, collection_name: dot });
    expect((await client.getCollectionAliases(dot)).aliases).toEqual([
      { alias_name: alias, collection_name: dot },
    ]);
    await client.updateCollectionAliases({ actions: [{ delete_alias: { alias_name: alias } }] });
    expect((await client.getAliases()).aliases.map((a) => a.alias_name)).not.toContain(alias);
  });
});

describe('points', () => {
  it('refuses point ids that are neither unsigned integers nor UUIDs with 400', async () => {
    for (const id of ['not-a-uuid', -1, 1.5]) {
      const res = await raw('PUT', `/collections/${cos}/points?wait=true`, {
        points: [{ id, vector: [1, 0, 0, 0] }],
      });
      expect(res.status).toBe(400);
      expect(res.json.result).toBeNull();
    }
  });

  it('refuses a vector of the wrong dimension with 400', async () => {
    expect(await statusOf(client.upsert(cos, { wait: true, points: [{ id: 9, vector: [1, 0] }] }))).toBe(400);
  });

  it('retrieves points by id, skipping missing ones, with cosine vectors normalised', async () => {
    const points = await client.retrieve(cos, { ids: [UUID_B, 1, 999], with_vector: true });
    expect(points.map((p) => p.id).sort()).toEqual([1, UUID_B].sort());
    const b = points.find((p) => p.id === UUID_B)!;
    expect(b.payload).toEqual({ tenant_id: 'a', n: 5 });
    expect(b.vector).toEqual([0, 0, 0, 1]);
    expect(await statusOf(client.api().getPoint({ collection_name: cos, id: 999 }))).toBe(404);
  });

  it('scrolls every point exactly once in id order, integers before UUIDs', async () => {
    const seen: (string | number)[] = [];
    let offset: string | number | null | undefined = undefined;
    for (let page = 0; page < 10; page++) {
      const res: Awaited<ReturnType<typeof client.scroll>> = await client.scroll(cos, { limit: 2, offset });
      seen.push(...res.points.map((p) => p.id));
      offset = res.next_page_offset as string | number | null;
      if (offset === null || offset === undefined) break;
    }
    expect(seen).toEqual([1, 2, 3, UUID_A, UUID_B]);
  });

  it('scrolls from an offset that does not match the filter, returning only matching points after it', async () => {
    const filter = { must: [{ key: 'tenant_id', match: { value: 'b' } }] };
    const fromOther = await client.scroll(cos, { filter, offset: 1, limit: 10 });
    expect(fromOther.points.map((p) => p.id)).toEqual([3, UUID_A]);
    const paged = await client.scroll(cos, { filter, limit: 1 });
    expect(paged.points.map((p) => p.id)).toEqual([3]);
    expect(paged.next_page_offset).toBe(UUID_A);
  });

  it('counts with filters combining must, should, must_not, match any, has_id and nested bool', async () => {
    const cases: [unknown, number][] = [
      [{ must: [{ key: 'tenant_id', match: { value: 'a' } }] }, 3],
      [
        {
          must: [{ key: 'tenant_id', match: { value: 'a' } }],
          must_not: [{ key: 'color', match: { value: 'blue' } }],
        },
        2,
      ],
      [
        {
          should: [
            { key: 'color', match: { value: 'green' } },
            { key: 'n', range: { gte: 5 } },
          ],
        },
        2,
      ],
      [{ must: [{ key: 'color', match: { any: ['red', 'green'] } }] }, 3],
      [{ must: [{ key: 'tags', match: { value: 'y' } }] }, 1],
      [{ must: [{ has_id: [1, 3, UUID_A] }, { key: 'tenant_id', match: { value: 'b' } }] }, 2],
      [
        {
          must: [
            { key: 'tenant_id', match: { value: 'a' } },
            { should: [{ key: 'tenant_id', match: { value: 'b' } }] },
          ],
        },
        0,
      ],
      [{ must: [{ key: 'tenant_id', match: { value: 'b' } }, { must_not: [{ has_id: [3] }] }] }, 1],
      [{ must_not: [{ key: 'color', match: { value: 'red' } }] }, 3],
    ];
    for (const [filter, expected] of cases) {
      expect(
        (await client.count(cos, { filter: filter as never, exact: true })).count,
        JSON.stringify(filter),
      ).toBe(expected);
    }
  });

  it('queries by exact cosine similarity, honouring filter, limit and payload selection', async () => {
    const res = await client.query(cos, { query: [1, 0, 0, 0], limit: 3, with_payload: true });
    expect(res.points.map((p) => p.id)).toEqual([1, 2, 3]);
    expect(res.points[0]!.score).toBeCloseTo(1, 5);
    expect(res.points[1]!.score).toBeCloseTo(0.9 / Math.sqrt(0.82), 5);
    expect(res.points[0]!.payload).toMatchObject({ color: 'red' });
    const filtered = await client.query(cos, {
      query: [1, 0, 0, 0],
      filter: { must: [{ key: 'tenant_id', match: { value: 'b' } }] },
      limit: 10,
    });
    expect(filtered.points.map((p) => p.id)).toEqual([3, UUID_A]);
  });

  it('answers a batch of queries in order', async () => {
    const res = await client.queryBatch(cos, {
      searches: [
        { query: [0, 1, 0, 0], limit: 1 },
        { query: [0, 0, 1, 0], limit: 1, filter: { must: [{ has_id: [UUID_A] }] } },
      ],
    });
    expect(res.map((r) => r.points.map((p) => p.id))).toEqual([[3], [UUID_A]]);
  });

  it('ranks by dot product and by euclidean distance', async () => {
    await client.upsert(dot, {
      wait: true,
      points: [
        { id: 1, vector: [1, 1] },
        { id: 2, vector: [3, 0] },
      ],
    });
    const byDot = await client.query(dot, { query: [1, 0], limit: 2 });
    expect(byDot.points.map((p) => [p.id, p.score])).toEqual([
      [2, 3],
      [1, 1],
    ]);
    await client.upsert(euclid, {
      wait: true,
      points: [
        { id: 1, vector: [1, 1] },
        { id: 2, vector: [3, 0] },
      ],
    });
    const byDistance = await client.query(euclid, { query: [3, 1], limit: 2 });
    expect(byDistance.points.map((p) => p.id)).toEqual([2, 1]);
    expect(byDistance.points[0]!.score).toBeCloseTo(1, 5);
    expect(byDistance.points[1]!.score).toBeCloseTo(2, 5);
  });

  it('sets, overwrites and deletes payload keys by id and by filter', async () => {
    await client.setPayload(cos, { wait: true, points: [1], payload: { extra: true } });
    expect((await client.retrieve(cos, { ids: [1] }))[0]!.payload).toMatchObject({
      color: 'red',
      extra: true,
    });
    await client.deletePayload(cos, { wait: true, keys: ['extra'], filter: { must: [{ has_id: [1] }] } });
    expect((await client.retrieve(cos, { ids: [1] }))[0]!.payload).not.toHaveProperty('extra');
    await client.overwritePayload(cos, { wait: true, points: [2], payload: { tenant_id: 'a', only: 1 } });
    expect((await client.retrieve(cos, { ids: [2] }))[0]!.payload).toEqual({ tenant_id: 'a', only: 1 });
  });

  it('upserts with update_filter: existing points outside it are kept, new points are inserted', async () => {
    await client.upsert(dot, { wait: true, points: [{ id: 20, vector: [1, 0], payload: { owner: 'x' } }] });
    await client.upsert(dot, {
      wait: true,
      update_filter: { must: [{ key: 'owner', match: { value: 'y' } }] },
      points: [
        { id: 20, vector: [0, 1], payload: { owner: 'y' } },
        { id: 21, vector: [0, 1], payload: { owner: 'y' } },
      ],
    });
    const points = await client.retrieve(dot, { ids: [20, 21], with_vector: true });
    const byId = Object.fromEntries(points.map((p) => [String(p.id), p]));
    expect(byId['20']).toMatchObject({ payload: { owner: 'x' }, vector: [1, 0] });
    expect(byId['21']).toMatchObject({ payload: { owner: 'y' } });
    await client.delete(dot, { wait: true, points: [20, 21] });
  });

  it('deletes points by id and by filter, leaving the rest', async () => {
    await client.upsert(dot, {
      wait: true,
      points: [
        { id: 10, vector: [1, 0], payload: { t: 'x' } },
        { id: 11, vector: [1, 0], payload: { t: 'x' } },
        { id: 12, vector: [1, 0], payload: { t: 'y' } },
      ],
    });
    expect((await client.delete(dot, { wait: true, points: [10] })).status).toBe('completed');
    await client.delete(dot, { wait: true, filter: { must: [{ key: 't', match: { value: 'x' } }] } });
    const left = await client.scroll(dot, { limit: 100 });
    expect(left.points.map((p) => p.id)).toEqual([1, 2, 12]);
  });
});
