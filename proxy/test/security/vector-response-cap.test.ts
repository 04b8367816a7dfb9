/**
 * A tenant that fills its collection and then asks for all of it, vectors included: the
 * route reads each Qdrant answer whole (to rename collections and strip tenant_id), so
 * without a cap one scroll could take the proxy's memory and every tenant's requests with
 * it. Over `vector.max_response_bytes` the answer is abandoned and the client gets a 502 in
 * Qdrant's error shape saying what to ask for instead; the proxy keeps serving.
 */
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refusedPaths } from '../helpers/config-problems.js';
import { startFakeQdrant, type FakeQdrant } from '../../../test/fakes/qdrant/fake-qdrant.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';

/** Room for a few dozen points of three dimensions, not for four hundred. */
const CAP = 8 * 1024;

let qdrant: FakeQdrant;
let h: Harness;
let client: QdrantClient;

beforeAll(async () => {
  qdrant = await startFakeQdrant({ apiKey: 'cap-qdrant-key' });
  h = await startHarness({
    config: (base) => ({
      ...base,
      vector: {
        url: qdrant.url,
        api_key: 'cap-qdrant-key',
        mode: 'partition',
        max_response_bytes: CAP,
        templates: [{ name: 'documents', size: 3, distance: 'Cosine' }],
      },
    }),
  });
  // The SDK warns about an API key over plain http; this is loopback in a test.
  const quiet = console.warn;
  console.warn = () => {};
  client = new QdrantClient({
    url: h.proxy.url,
    prefix: '/qdrant',
    apiKey: KEYS.pro,
    checkCompatibility: false,
  });
  console.warn = quiet;
  await client.createCollection('documents', { vectors: { size: 3, distance: 'Cosine' } });
  const points = Array.from({ length: 400 }, (_, i) => ({
    id: i + 1,
    vector: [1, i / 400, 0.5],
    payload: { doc: `chunk ${i}` },
  }));
  await client.upsert('documents', { wait: true, points });
});
afterAll(async () => {
  await h.close();
  await qdrant.close();
});

describe('vector.max_response_bytes', () => {
  it('refuses an answer over the cap with a 502 in Qdrant shape, and still serves a smaller one', async () => {
    const error = await client
      .scroll('documents', { limit: 400, with_vector: true, with_payload: true })
      .then(
        () => undefined,
        (e: unknown) => e as { status?: number; data?: { status?: { error?: string } } },
      );
    expect(error?.status).toBe(502);
    expect(error?.data?.status?.error).toContain('max_response_bytes');

    const page = await client.scroll('documents', { limit: 5, with_vector: false, with_payload: true });
    expect(page.points).toHaveLength(5);
  });

  it.each([
    ['zero', 0],
    ['over a gibibyte', 1024 * 1024 * 1024 + 1],
    ['a string', '1000'],
    ['fractional', 10.5],
  ])('refuses a cap that is %s, naming its path', async (_name, value) => {
    expect(
      await refusedPaths({ vector: { url: 'http://127.0.0.1:6333', max_response_bytes: value } }),
    ).toContain('vector.max_response_bytes');
  });
});
