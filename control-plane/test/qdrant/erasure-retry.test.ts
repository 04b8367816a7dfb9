/**
 * Erasure survives a failure halfway: the fake Qdrant is made to fail one delete in the middle
 * of erasing a tenant, the erasure reports the failure, and running it again finishes the job
 * without touching the other tenant. Fault injection needs the fake, so this file always uses it.
 */
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createQdrantVectorStore,
  TENANT_FIELD,
  VectorStoreUnavailableError,
} from '../../src/stores/qdrant.js';
import type { CollectionTemplate } from '../../src/stores/vector-store.js';
import { startFakeQdrant, type FakeQdrant } from '../../../test/fakes/qdrant/fake-qdrant.js';

let fake: FakeQdrant;
let client: QdrantClient;
const templates: CollectionTemplate[] = [
  { name: 'documents', size: 2, distance: 'Cosine' },
  { name: 'faq', size: 2, distance: 'Cosine' },
  { name: 'notes', size: 2, distance: 'Cosine' },
];

beforeAll(async () => {
  fake = await startFakeQdrant();
  client = new QdrantClient({ url: fake.url, checkCompatibility: false });
});
afterAll(() => fake.close());

async function tenantPoints(mode: 'collection' | 'partition', tenant: string): Promise<number> {
  let total = 0;
  for (const { name } of (await client.getCollections()).collections) {
    if (mode === 'collection' && name.startsWith(`tenant_${tenant}_`))
      total += (await client.count(name)).count;
    if (mode === 'partition' && name.startsWith('lanekeeper_')) {
      total += (
        await client.count(name, { filter: { must: [{ key: TENANT_FIELD, match: { value: tenant } }] } })
      ).count;
    }
  }
  return total;
}

describe.each([
  ['collection', /^\/collections\/tenant_a_faq$/, 'DELETE'],
  ['partition', /^\/collections\/lanekeeper_faq\/points\/delete$/, 'POST'],
] as const)('erasure in %s mode after a failure halfway', (mode, failingPath, method) => {
  it('fails loudly, then a retry removes the rest of tenant A and nothing of tenant B', async () => {
    const store = createQdrantVectorStore({ url: fake.url, mode, templates });
    for (const tenant of ['a', 'b']) {
      const collections = await store.createTenantCollections(tenant);
      for (const [i, c] of collections.entries()) {
        const base = tenant === 'a' ? 100 : 200;
        await client.upsert(c.physical, {
          wait: true,
          points: [0, 1].map((k) => ({
            id: base + i * 10 + k,
            vector: [1, k],
            payload: mode === 'partition' ? { [TENANT_FIELD]: tenant } : {},
          })),
        });
      }
    }
    expect(await tenantPoints(mode, 'a')).toBe(6);

    fake.failNext({ method, path: failingPath });
    await expect(store.eraseTenant('a')).rejects.toBeInstanceOf(VectorStoreUnavailableError);
    const leftAfterFailure = await tenantPoints(mode, 'a');
    expect(leftAfterFailure).toBeGreaterThan(0);
    expect(leftAfterFailure).toBeLessThan(6);

    const retry = await store.eraseTenant('a');
    expect(retry.pointsDeleted).toBe(leftAfterFailure);
    expect(await tenantPoints(mode, 'a')).toBe(0);
    expect(await tenantPoints(mode, 'b')).toBe(6);
    expect(await store.eraseTenant('a')).toEqual({ collectionsDeleted: [], pointsDeleted: 0 });
    if (mode === 'collection') {
      const names = (await client.getCollections()).collections.map((c) => c.name);
      expect(names.filter((n) => n.startsWith('tenant_a_'))).toEqual([]);
    }
  });
});
