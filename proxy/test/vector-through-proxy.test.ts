/**
 * The tenant-scoped Qdrant route inside the real proxy: an app uses the official Qdrant SDK
 * with the proxy as its URL and its tenant key as API key; identity, the `rag` feature and
 * request limits apply, and one tenant never sees another's points.
 */
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeQdrant, type FakeQdrant } from '../../test/fakes/qdrant/fake-qdrant.js';
import { KEYS, startHarness, type Harness } from './helpers/harness.js';

let qdrant: FakeQdrant;
let h: Harness;
const sdk = (key: string) =>
  new QdrantClient({ url: h.proxy.url, prefix: '/qdrant', apiKey: key, checkCompatibility: false });

beforeAll(async () => {
  qdrant = await startFakeQdrant({ apiKey: 'real-qdrant-key' });
  h = await startHarness({
    config: (base) => ({
      ...base,
      // Below the default of 64, to show the route takes the proxy's own setting.
      max_json_depth: 16,
      vector: {
        url: qdrant.url,
        api_key: 'real-qdrant-key',
        mode: 'collection',
        templates: [{ name: 'documents', size: 3, distance: 'Cosine' }],
      },
    }),
  });
  // The SDK warns about an API key over plain http; this is loopback in a test.
  const quiet = console.warn;
  console.warn = () => {};
  sdk(KEYS.pro);
  console.warn = quiet;
});
afterAll(async () => {
  await h.close();
  await qdrant.close();
});

async function statusOf(promise: Promise<unknown>): Promise<number | undefined> {
  try {
    await promise;
    return 200;
  } catch (error) {
    return (error as { status?: number }).status;
  }
}

describe('the Qdrant route through the proxy', () => {
  it('lets each tenant create, fill and query its own collection, and never see the other one', async () => {
    const globex = sdk(KEYS.pro);
    const hooli = sdk(KEYS.pro2);
    for (const client of [globex, hooli]) {
      expect(await client.createCollection('documents', { vectors: { size: 3, distance: 'Cosine' } })).toBe(
        true,
      );
    }
    await globex.upsert('documents', {
      wait: true,
      points: [{ id: 1, vector: [1, 0, 0], payload: { doc: 'globex secret' } }],
    });
    await hooli.upsert('documents', {
      wait: true,
      points: [{ id: 2, vector: [1, 0, 0], payload: { doc: 'hooli notes' } }],
    });

    const mine = await globex.query('documents', { query: [1, 0, 0], limit: 10, with_payload: true });
    expect(mine.points.map((p) => p.payload)).toEqual([{ doc: 'globex secret' }]);
    const theirs = await hooli.query('documents', { query: [1, 0, 0], limit: 10, with_payload: true });
    expect(theirs.points.map((p) => p.payload)).toEqual([{ doc: 'hooli notes' }]);
    expect((await hooli.retrieve('documents', { ids: [1] })).length).toBe(0);
    expect(await statusOf(hooli.getCollection('tenant_globex_documents'))).toBe(403);
    expect((await hooli.getCollections()).collections).toEqual([{ name: 'documents' }]);
  });

  it('refuses tenants whose plan lacks rag, and unknown keys, before Qdrant is called', async () => {
    const before = qdrant.requests.length;
    expect(await statusOf(sdk(KEYS.free).getCollections())).toBe(403);
    expect(await statusOf(sdk('lk_wrong').getCollections())).toBe(401);
    expect(qdrant.requests.length).toBe(before);
    const raw = await fetch(`${h.proxy.url}/qdrant/collections`, { headers: { 'api-key': 'lk_wrong' } });
    expect(raw.status).toBe(401);
    expect(await raw.json()).toMatchObject({
      status: { error: expect.stringContaining('API key') },
      result: null,
    });
  });

  // The AI routes scan a body's nesting before JSON.parse (parse-request); this path does not
  // go through them, and parsed 1 MiB of `[[[[…` (seconds of event loop at 10 MiB), then
  // walked what parsed recursively (a 502 for a 3,000-level filter).
  it('refuses a body nested past max_json_depth with 400, before parsing it or calling Qdrant', async () => {
    const before = qdrant.requests.length;
    const send = (body: string) =>
      fetch(`${h.proxy.url}/qdrant/collections/documents/points/scroll`, {
        method: 'POST',
        headers: { 'api-key': KEYS.pro, 'content-type': 'application/json' },
        body,
      });
    for (const body of ['['.repeat(1024 * 1024), `{"filter":${'{"must":['.repeat(8)}{}${']}'.repeat(8)}}`]) {
      const res = await send(body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { status: { error: string } }).status.error).toContain(
        'nested more than 16 levels deep',
      );
    }
    expect(qdrant.requests.length).toBe(before);
  });
});
