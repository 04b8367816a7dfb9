/**
 * The Qdrant VectorStore in both isolation modes, against the Qdrant under test (a real one
 * with QDRANT_URL, else the in-repo fake): onboarding is idempotent, tenants see only their own
 * collections and counts, and erasure removes everything of one tenant and nothing of another.
 */
import { randomBytes } from 'node:crypto';
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQdrantVectorStore, UnknownCollectionError, TENANT_FIELD } from '../../src/stores/qdrant.js';
import type { CollectionTemplate, VectorStore } from '../../src/stores/vector-store.js';
import { qdrantUnderTest, type QdrantTarget } from './qdrant-target.js';

let target: QdrantTarget;
let client: QdrantClient;
const run = randomBytes(3).toString('hex');
const templates: CollectionTemplate[] = [
  { name: `docs${run}`, size: 4, distance: 'Cosine' },
  { name: `faq${run}`, size: 2, distance: 'Dot' },
];
const [DOCS, FAQ] = templates.map((t) => t.name) as [string, string];

beforeAll(async () => {
  target = await qdrantUnderTest();
  client = new QdrantClient({ url: target.url, apiKey: target.apiKey, checkCompatibility: false });
});

afterAll(async () => {
  const { collections } = await client.getCollections();
  for (const { name } of collections) if (name.includes(run)) await client.deleteCollection(name);
  await target.close();
});

function vector(size: number, i: number): number[] {
  return Array.from({ length: size }, (_, k) => (k === i % size ? 1 : 0.1));
}

describe.each(['collection', 'partition'] as const)('the Qdrant vector store in %s mode', (mode) => {
  let store: VectorStore;
  const a = `a-${run}-${mode[0]}`;
  const b = `b-${run}-${mode[0]}`;

  /** Writes points for a tenant the way its app would (through the proxy) in this mode. */
  async function seed(tenant: string, name: string, ids: number[]): Promise<void> {
    const [collection] = (await store.listCollections(tenant)).filter((c) => c.name === name);
    const size = templates.find((t) => t.name === name)!.size;
    await client.upsert(collection!.physical, {
      wait: true,
      points: ids.map((id) => ({
        id,
        vector: vector(size, id),
        payload: mode === 'partition' ? { [TENANT_FIELD]: tenant, n: id } : { n: id },
      })),
    });
  }

  beforeAll(() => {
    store = createQdrantVectorStore({ url: target.url, apiKey: target.apiKey, mode, templates });
  });

  it('onboards a tenant with every template, and doing it twice changes nothing', async () => {
    const first = await store.createTenantCollections(a);
    const second = await store.createTenantCollections(a);
    expect(second).toEqual(first);
    expect(first.map((c) => c.name)).toEqual([DOCS, FAQ]);
    const expected = mode === 'collection' ? `tenant_${a}_${DOCS}` : `lanekeeper_${DOCS}`;
    expect(first[0]!.physical).toBe(expected);
    await store.createTenantCollections(b);
  });

  it('creates the shared tenant index in partition mode (and no per-tenant collections)', async () => {
    const names = (await client.getCollections()).collections
      .map((c) => c.name)
      .filter((n) => n.includes(run));
    if (mode === 'partition') {
      const info = await client.getCollection(`lanekeeper_${DOCS}`);
      expect(info.payload_schema[TENANT_FIELD]).toMatchObject({
        data_type: 'keyword',
        params: { is_tenant: true },
      });
      expect(names.filter((n) => n.startsWith('tenant_') && n.includes(`-${run}-p_`))).toEqual([]);
    } else {
      expect(names).toEqual(expect.arrayContaining([`tenant_${a}_${DOCS}`, `tenant_${b}_${FAQ}`]));
    }
  });

  it("lists only the tenant's own collections with its own point counts", async () => {
    await seed(a, DOCS, [1, 2, 3]);
    await seed(b, DOCS, [10, 11]);
    const listA = await store.listCollections(a);
    const listB = await store.listCollections(b);
    expect(listA.map((c) => [c.name, c.points])).toEqual([
      [DOCS, 3],
      [FAQ, 0],
    ]);
    expect(listB.map((c) => [c.name, c.points])).toEqual([
      [DOCS, 2],
      [FAQ, 0],
    ]);
  });

  it('refuses a collection that is not a template', async () => {
    await expect(store.createCollection(a, 'secrets')).rejects.toBeInstanceOf(UnknownCollectionError);
  });

  it("deletes one of a tenant's collections without touching the other tenant", async () => {
    await seed(a, FAQ, [5]);
    await seed(b, FAQ, [6, 7]);
    expect(await store.deleteCollection(a, FAQ)).toBe(true);
    const countA = (await store.listCollections(a)).find((c) => c.name === FAQ)?.points ?? 0;
    expect(countA).toBe(0);
    expect((await store.listCollections(b)).find((c) => c.name === FAQ)?.points).toBe(2);
    await store.createCollection(a, FAQ);
  });

  it('erases everything of one tenant and nothing of another, and erasing again is a no-op', async () => {
    const report = await store.eraseTenant(a);
    expect(report.pointsDeleted).toBe(3);
    if (mode === 'collection') {
      expect(report.collectionsDeleted.sort()).toEqual([`tenant_${a}_${DOCS}`, `tenant_${a}_${FAQ}`].sort());
    } else {
      expect(report.collectionsDeleted).toEqual([]);
    }
    expect((await store.listCollections(a)).reduce((s, c) => s + (c.points ?? 0), 0)).toBe(0);
    expect((await store.listCollections(b)).map((c) => [c.name, c.points])).toEqual([
      [DOCS, 2],
      [FAQ, 2],
    ]);
    expect(await store.eraseTenant(a)).toEqual({ collectionsDeleted: [], pointsDeleted: 0 });
  });

  it('reports itself healthy while Qdrant answers', async () => {
    expect(await store.healthy()).toBe(true);
  });
});

describe('the Qdrant vector store when Qdrant is unreachable', () => {
  it('reports itself unhealthy', async () => {
    const store = createQdrantVectorStore({
      url: 'http://127.0.0.1:1',
      mode: 'collection',
      templates,
      timeoutMs: 2000,
    });
    expect(await store.healthy()).toBe(false);
  });
});

describe('tenants whose ids share a prefix', () => {
  it('erasing one leaves the collections and points of the other untouched', async () => {
    const store = createQdrantVectorStore({
      url: target.url,
      apiKey: target.apiKey,
      mode: 'collection',
      templates,
    });
    const short = `p${run}`;
    const long = `p${run}-q`;
    await store.createTenantCollections(short);
    const [docsOfLong] = await store.createTenantCollections(long);
    await client.upsert(docsOfLong!.physical, { wait: true, points: [{ id: 1, vector: vector(4, 1) }] });
    const report = await store.eraseTenant(short);
    expect(report.collectionsDeleted.sort()).toEqual(
      [`tenant_${short}_${DOCS}`, `tenant_${short}_${FAQ}`].sort(),
    );
    expect((await store.listCollections(long)).map((c) => [c.name, c.points])).toEqual([
      [DOCS, 1],
      [FAQ, 0],
    ]);
    await store.eraseTenant(long);
  });
});
