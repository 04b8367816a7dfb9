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

describe('erasure, whatever layout holds the tenant', () => {
  let stores: VectorStore[];
  beforeAll(() => {
    stores = (['collection', 'partition'] as const).map((mode) =>
      createQdrantVectorStore({ url: target.url, apiKey: target.apiKey, mode, templates }),
    );
  });

  /** One point of the tenant in the DOCS collection of each layout; ids from `base`. */
  async function seedBoth(tenant: string, base: number): Promise<void> {
    for (const store of stores) {
      const [docs] = await store.createTenantCollections(tenant);
      const tag = store.mode === 'partition' ? { [TENANT_FIELD]: tenant } : {};
      await client.upsert(docs!.physical, {
        wait: true,
        points: [{ id: base, vector: vector(4, base), payload: tag }],
      });
    }
  }

  const left = async (tenant: string) => ({
    own: (await client.getCollections()).collections.filter((c) => c.name.startsWith(`tenant_${tenant}_`))
      .length,
    tagged: (
      await client.count(`lanekeeper_${DOCS}`, {
        filter: { must: [{ key: TENANT_FIELD, match: { value: tenant } }] },
        exact: true,
      })
    ).count,
  });

  // A deployment that moved from one mode to the other still holds its tenants' data in the
  // first layout: erasure in the new mode reported nothing deleted and left it.
  it.each([0, 1])(
    'removes both layouts in either mode, and nothing of another tenant (store %i)',
    async (i) => {
      const tenant = `s${run}-${i}`;
      const other = `s${run}-${i}-other`;
      await seedBoth(tenant, 700 + 10 * i);
      await seedBoth(other, 701 + 10 * i);
      const report = await stores[i]!.eraseTenant(tenant);
      expect(report.collectionsDeleted.sort()).toEqual(
        [`tenant_${tenant}_${DOCS}`, `tenant_${tenant}_${FAQ}`].sort(),
      );
      expect(report.pointsDeleted).toBe(2);
      expect(await left(tenant)).toEqual({ own: 0, tagged: 0 });
      expect(await left(other)).toEqual({ own: 2, tagged: 1 });
      await stores[i]!.eraseTenant(other);
    },
  );

  // A reindex behind an alias: the proxies reach the new collection through the shared name,
  // which erasure did not list among the collections.
  it("removes the tenant's points in a collection behind a lanekeeper_ alias", async () => {
    const behind = `reindexed${run}`;
    const alias = `lanekeeper_aliased${run}`;
    await client.createCollection(behind, { vectors: { size: 4, distance: 'Cosine' } });
    await client.updateCollectionAliases({
      actions: [{ create_alias: { collection_name: behind, alias_name: alias } }],
    });
    const tenant = `al${run}`;
    await client.upsert(alias, {
      wait: true,
      points: [
        { id: 1, vector: vector(4, 1), payload: { [TENANT_FIELD]: tenant } },
        { id: 2, vector: vector(4, 2), payload: { [TENANT_FIELD]: `${tenant}-other` } },
      ],
    });
    const report = await stores[1]!.eraseTenant(tenant);
    expect(report.pointsDeleted).toBe(1);
    const { points } = await client.scroll(behind, { with_payload: true });
    expect(points.map((p) => p.payload?.[TENANT_FIELD])).toEqual([`${tenant}-other`]);
  });
});
