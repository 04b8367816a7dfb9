/**
 * Erasure of a tenant's vectors while a proxy still serves it. Qdrant has no tombstone: a
 * proxy that has not yet applied the config without the tenant (or a request it admitted
 * before) still writes there. Before, the vector step ran at once after `begin`, before the
 * propagation window, and nothing swept Qdrant again: a write in that window outlived the
 * erasure and its second sweep, and a tenant created later under the same id read it.
 *
 * The proxy side is the real vector route with the tenant still in its config, as a proxy
 * that has not reloaded yet; Qdrant is the in-repo fake.
 */
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metrics } from '../../proxy/src/metrics.js';
import { createVectorRoute, type VectorRoute } from '../../proxy/src/vector/vector-route.js';
import { call } from '../../control-plane/test/helpers/http.js';
import { startSeeded, stopSeeded, type Seeded } from '../../control-plane/test/helpers/seeded.js';
import { until } from '../../proxy/test/helpers/waiting.js';
import { startFakeQdrant, type FakeQdrant } from '../fakes/qdrant/fake-qdrant.js';

const templates = [{ name: 'documents', size: 4, distance: 'Cosine' as const }];
const PROPAGATION_MS = 1_000;
const RESWEEP_MS = 1_500;

describe.each(['partition', 'collection'] as const)('erasing a tenant with vectors, in %s mode', (mode) => {
  let fake: FakeQdrant;
  let qdrant: QdrantClient;
  let s: Seeded;
  let route: VectorRoute;
  const tenants = ['window', 'late', 'reborn'].map((name) => `${name}-${mode}`);

  const admin = (method: string, path: string, body?: unknown) =>
    call(s.cp.url, method, path, { token: s.t.adminToken, body });

  /** One call through the route as the tenant, as its app (with the `rag` feature) makes it. */
  const asTenant = (tenant: string, method: string, path: string, body: unknown) =>
    route.handle(
      { id: tenant, features: ['rag'] },
      { method, path, query: 'wait=true', body: Buffer.from(JSON.stringify(body)), maxJsonDepth: 64 },
    );

  /**
   * Upserts one point as the tenant, through the route; answers its status. In collection
   * mode it first makes sure of its collection, as apps do (Qdrant's quickstart).
   */
  async function write(tenant: string, id: number): Promise<number> {
    if (mode === 'collection')
      await asTenant(tenant, 'PUT', '/collections/documents', { vectors: { size: 4, distance: 'Cosine' } });
    const res = await asTenant(tenant, 'PUT', '/collections/documents/points', {
      points: [{ id, vector: [1, 0, 0, id], payload: { n: id } }],
    });
    return res.status;
  }

  /** The tenant's points left in Qdrant, in whichever layout this mode uses. */
  async function pointsOf(tenant: string): Promise<number> {
    if (mode === 'collection') {
      const name = `tenant_${tenant}_documents`;
      return (await qdrant.collectionExists(name)).exists ? (await qdrant.count(name)).count : 0;
    }
    const filter = { must: [{ key: 'tenant_id', match: { value: tenant } }] };
    return (await qdrant.count('lanekeeper_documents', { filter, exact: true })).count;
  }

  beforeAll(async () => {
    fake = await startFakeQdrant();
    qdrant = new QdrantClient({ url: fake.url, checkCompatibility: false });
    s = await startSeeded({
      extra: {
        QDRANT_URL: fake.url,
        LANEKEEPER_VECTOR_MODE: mode,
        LANEKEEPER_COLLECTION_TEMPLATES: JSON.stringify(templates),
        LANEKEEPER_ERASURE_PROPAGATION_MS: String(PROPAGATION_MS),
        LANEKEEPER_ERASURE_RESWEEP_MS: String(RESWEEP_MS),
        LANEKEEPER_LEDGER_ENABLED: 'false',
      },
      tenants,
    });
    route = createVectorRoute({
      config: { url: fake.url, mode, path_prefix: '/qdrant', max_response_bytes: 1 << 20, templates },
      metrics: new Metrics(100),
      logger: { warn: () => undefined, info: () => undefined },
    });
  });
  afterAll(async () => {
    await route?.close();
    await stopSeeded(s ?? {});
    await fake?.close();
  });

  it('takes a write made in the propagation window with the rest', async () => {
    const [tenant] = tenants as [string];
    expect(await write(tenant, 1)).toBe(200);
    const erasing = admin('DELETE', `/v1/tenants/${tenant}`);
    // Once `begin` is done, the proxies are told; one that has not reloaded still writes.
    await until(
      'the erasure begun',
      async () => {
        const { rows } = await s.t.pool.query(`SELECT steps_done FROM erasure_jobs WHERE tenant_id = $1`, [
          tenant,
        ]);
        return rows[0]?.steps_done.includes('begin') ? true : undefined;
      },
      6_000,
      20,
    );
    expect(await write(tenant, 2)).toBe(200);
    const erased = await erasing;
    expect(erased.status).toBe(200);
    expect(erased.body.vector.pointsDeleted).toBe(2);
    expect(await pointsOf(tenant)).toBe(0);
  });

  it('sweeps Qdrant again: a write that lands after the erasure goes with the second sweep', async () => {
    const tenant = tenants[1]!;
    expect((await admin('DELETE', `/v1/tenants/${tenant}`)).status).toBe(200);
    // A request the proxy admitted before it reloaded, ending after the first sweep.
    expect(await write(tenant, 3)).toBe(200);
    expect(await pointsOf(tenant)).toBe(1);
    const resweep = await until(
      'the second sweep recorded',
      async () => {
        const { rows } = await s.t.pool.query(
          `SELECT after FROM audit_log WHERE action = 'tenant.erase.resweep' AND resource = $1`,
          [`tenants/${tenant}`],
        );
        return rows[0]?.after;
      },
      6_000,
      20,
    );
    expect(resweep.scope).toBe('erased');
    expect(resweep.vector.pointsDeleted).toBe(1);
    expect(await pointsOf(tenant)).toBe(0);
  });

  it('gives a tenant created again under an erased id empty collections', async () => {
    const tenant = tenants[2]!;
    expect((await admin('DELETE', `/v1/tenants/${tenant}`)).status).toBe(200);
    expect(await write(tenant, 4)).toBe(200);
    // Created again before the second sweep runs: that sweep then leaves the id's data alone.
    expect((await admin('POST', '/v1/tenants', { id: tenant, plan: 'free' })).status).toBe(201);
    expect(await pointsOf(tenant)).toBe(0);
    expect(await write(tenant, 5)).toBe(200);
    const scroll = await asTenant(tenant, 'POST', '/collections/documents/points/scroll', {
      with_payload: true,
    });
    const seen = JSON.parse(scroll.body.toString()) as { result: { points: { id: number }[] } };
    expect(seen.result.points.map((p) => p.id)).toEqual([5]);
  });
});
