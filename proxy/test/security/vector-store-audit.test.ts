/**
 * Audit of the tenant-scoped Qdrant route in partition mode, through the real proxy on
 * loopback against the in-repo fake Qdrant. Two tenants share `lanekeeper_documents`:
 * globex (the attacker) and hooli (the victim). Each case is a body the route accepted
 * before it was fixed, and the measure is what Qdrant ends up holding (read directly, not
 * through the route) or what the proxy sent it:
 *
 * - an upsert carrying both `points` and `batch`: Qdrant applies `batch` and ignores
 *   `points`, but the route only tagged and checked `points`;
 * - an overwrite_payload with `key` (or `key: null`): Qdrant ignores `key` on overwrite and
 *   replaces the whole payload, but the route only put tenant_id back when `key` was absent;
 * - a relevance_feedback query naming another tenant's point ids: Qdrant resolves them to
 *   stored vectors regardless of the filter, but the route did not check their ownership.
 *
 * A point stored without tenant_id belongs to nobody: no tenant can read, delete or reuse
 * its id, and it survives its tenant's deletion of the collection.
 */
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeQdrant, type FakeQdrant } from '../../../test/fakes/qdrant/fake-qdrant.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';

const QDRANT_KEY = 'audit-qdrant-key';
const SHARED = 'lanekeeper_documents';

let qdrant: FakeQdrant;
let direct: QdrantClient;
let h: Harness;

beforeAll(async () => {
  qdrant = await startFakeQdrant({ apiKey: QDRANT_KEY });
  direct = new QdrantClient({ url: qdrant.url, apiKey: QDRANT_KEY, checkCompatibility: false });
  h = await startHarness({
    config: (base) => ({
      ...base,
      vector: {
        url: qdrant.url,
        api_key: QDRANT_KEY,
        mode: 'partition',
        templates: [{ name: 'documents', size: 3, distance: 'Cosine' }],
      },
    }),
  });
  expect(
    (await call(KEYS.pro, 'PUT', '/collections/documents', { vectors: { size: 3, distance: 'Cosine' } }))
      .status,
  ).toBe(200);
  const victim = await call(KEYS.pro2, 'PUT', '/collections/documents/points', {
    points: [{ id: 7, vector: [1, 0, 0], payload: { doc: 'hooli secret' } }],
  });
  expect(victim.status).toBe(200);
});
afterAll(async () => {
  await h.close();
  await qdrant.close();
});

/** A call through the proxy with a tenant's key, as the Qdrant SDK sends it. */
async function call(key: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${h.proxy.url}/qdrant${path}?wait=true`, {
    method,
    headers: { 'api-key': key, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // Qdrant envelopes are arbitrary JSON; the assertions pick the fields they need.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

/** Every point of the shared collection as Qdrant holds it, tenant_id included. */
async function stored() {
  const { points } = await direct.scroll(SHARED, { limit: 1000, with_payload: true });
  return points.map((p) => ({ id: p.id, payload: p.payload }));
}

const untagged = async () => (await stored()).filter((p) => !(p.payload && 'tenant_id' in p.payload));

describe('the Qdrant route in partition mode, against a hostile tenant', () => {
  beforeEach(async () => {
    // Each case starts from globex's own point 1 and hooli's point 7, both tagged.
    await direct.delete(SHARED, { wait: true, filter: { must_not: [{ has_id: [7] }] } });
    const own = await call(KEYS.pro, 'PUT', '/collections/documents/points', {
      points: [{ id: 1, vector: [0, 1, 0], payload: { doc: 'globex' } }],
    });
    expect(own.status).toBe(200);
    expect(await untagged()).toEqual([]);
  });

  it('refuses an upsert that carries both points and batch, which Qdrant would apply untagged', async () => {
    const res = await call(KEYS.pro, 'PUT', '/collections/documents/points', {
      points: [],
      batch: {
        ids: [1, 900],
        vectors: [
          [1, 0, 0],
          [0, 0, 1],
        ],
        payloads: [{ doc: 'x' }, { doc: 'y' }],
      },
    });
    expect(await untagged()).toEqual([]);
    expect((await stored()).map((p) => p.id).sort()).toEqual([1, 7]);
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ status: { error: expect.stringContaining('batch') }, result: null });
  });

  it.each([
    ['a key', { key: 'meta' }, 400],
    ['a null key', { key: null }, 200],
  ])(
    'keeps tenant_id on an overwrite_payload with %s, which Qdrant ignores',
    async (_label, extra, status) => {
      const res = await call(KEYS.pro, 'PUT', '/collections/documents/points/payload', {
        payload: { doc: 'rewritten' },
        points: [1],
        ...extra,
      });
      expect(await untagged()).toEqual([]);
      expect(res.status).toBe(status);
      if (status === 400)
        expect(res.json).toMatchObject({ status: { error: expect.stringContaining('set_payload') } });
      // The point is still globex's: it sees it and its delete_collection removes it.
      const mine = await call(KEYS.pro, 'POST', '/collections/documents/points', { ids: [1] });
      expect(mine.json.result).toHaveLength(1);
      expect((await call(KEYS.pro, 'DELETE', '/collections/documents')).status).toBe(200);
      expect((await stored()).map((p) => p.id)).toEqual([7]);
    },
  );

  it('checks the point ids of a relevance_feedback query, which Qdrant resolves whoever owns them', async () => {
    const queriesBefore = qdrant.requests.filter((r) => r.path.endsWith('/points/query')).length;
    const res = await call(KEYS.pro, 'POST', '/collections/documents/points/query', {
      query: {
        relevance_feedback: {
          target: [1, 0, 0],
          feedback: [
            { example: 1, score: 1 },
            { example: 7, score: 1 },
          ],
        },
      },
      with_payload: true,
    });
    // Refused before Qdrant was asked to resolve hooli's point 7.
    expect(qdrant.requests.filter((r) => r.path.endsWith('/points/query')).length).toBe(queriesBefore);
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({ status: { error: expect.stringContaining('Not found') }, result: null });
  });

  it('still checks the target of a relevance_feedback query and lets a tenant use its own ids', async () => {
    const foreignTarget = await call(KEYS.pro, 'POST', '/collections/documents/points/query', {
      query: { relevance_feedback: { target: 7, feedback: [] } },
    });
    expect(foreignTarget.status).toBe(404);
    const sent = qdrant.requests.length;
    await call(KEYS.pro, 'POST', '/collections/documents/points/query', {
      query: { relevance_feedback: { target: 1, feedback: [{ example: 1, score: 0.5 }] } },
    });
    // Own ids pass the ownership check and reach Qdrant (the fake does not score this query).
    expect(qdrant.requests.slice(sent).some((r) => r.path.endsWith('/points/query'))).toBe(true);
  });
});
