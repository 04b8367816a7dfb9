/**
 * An unmodified app using the official Qdrant SDK (@qdrant/js-client-rest) through the tenant
 * route: it only points the SDK at the proxy with `prefix: '/qdrant'` (the JS SDK ignores a
 * path in `url`) and uses its tenant key as API key, and everything it does stays inside its
 * tenant. A small node:http server stands
 * in for the proxy's server here (identifying the tenant by the `api-key` header the SDK
 * sends); the route itself is the product code under test.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeQdrant, type FakeQdrant } from '../../../test/fakes/qdrant/fake-qdrant.js';
import { Metrics } from '../../src/metrics.js';
import { createVectorRoute, type VectorRoute, type VectorTenant } from '../../src/vector/vector-route.js';

const TENANTS: Record<string, VectorTenant> = {
  lk_key_of_a: { id: 'acme', features: ['rag'] },
  lk_key_of_b: { id: 'globex', features: ['rag'] },
};

let fake: FakeQdrant;

beforeAll(async () => {
  fake = await startFakeQdrant({ apiKey: 'real-qdrant-key' });
});
afterAll(() => fake.close());

/** Serves the route on port 0 the way the proxy server would, tenants identified by api-key. */
async function serve(route: VectorRoute): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://proxy');
      const tenant = TENANTS[String(req.headers['api-key'])];
      if (!route.matches(url.pathname) || !tenant) {
        res.writeHead(401).end();
        return;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const answer = await route.handle(tenant, {
        method: req.method ?? 'GET',
        path: route.stripPrefix(url.pathname),
        query: url.search,
        headers: req.headers,
        body: Buffer.concat(chunks),
        maxJsonDepth: 64,
      });
      res.writeHead(answer.status, answer.headers).end(answer.body);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function statusOf(promise: Promise<unknown>): Promise<number | undefined> {
  try {
    await promise;
    return 200;
  } catch (error) {
    return (error as { status?: number }).status;
  }
}

describe.each(['collection', 'partition'] as const)(
  'the official Qdrant SDK through the route in %s mode',
  (mode) => {
    let route: VectorRoute;
    let server: Server;
    let a: QdrantClient;
    let b: QdrantClient;
    const name = `documents`;

    beforeAll(async () => {
      route = createVectorRoute({
        config: {
          url: fake.url,
          api_key: 'real-qdrant-key',
          mode,
          path_prefix: '/qdrant',
          max_response_bytes: 32 * 1024 * 1024,
          templates: [{ name, size: 3, distance: 'Cosine' }],
        },
        metrics: new Metrics(10),
        logger: { warn: () => {}, info: () => {} },
      });
      const served = await serve(route);
      server = served.server;
      // The SDK warns about an api key over plain http; this is loopback in a test.
      const quiet = console.warn;
      console.warn = () => {};
      a = new QdrantClient({
        url: served.url,
        prefix: '/qdrant',
        apiKey: 'lk_key_of_a',
        checkCompatibility: false,
      });
      b = new QdrantClient({
        url: served.url,
        prefix: '/qdrant',
        apiKey: 'lk_key_of_b',
        checkCompatibility: false,
      });
      console.warn = quiet;
    });

    afterAll(async () => {
      await new Promise((resolve) => server.close(resolve));
      await route.close();
    });

    it('creates, fills and queries its collection with ordinary SDK calls', async () => {
      if (!(await a.collectionExists(name)).exists) {
        expect(await a.createCollection(name, { vectors: { size: 3, distance: 'Cosine' } })).toBe(true);
      }
      if (!(await b.collectionExists(name)).exists)
        await b.createCollection(name, { vectors: { size: 3, distance: 'Cosine' } });
      await a.upsert(name, {
        wait: true,
        points: [
          { id: 1, vector: [1, 0, 0], payload: { doc: 'acme handbook' } },
          { id: 2, vector: [0, 1, 0], payload: { doc: 'acme pricing' } },
        ],
      });
      await b.upsert(name, {
        wait: true,
        points: [{ id: 7, vector: [1, 0, 0], payload: { doc: 'globex plan' } }],
      });
      const hits = await a.query(name, { query: [1, 0.1, 0], limit: 5, with_payload: true });
      expect(hits.points.map((p) => p.payload)).toEqual([{ doc: 'acme handbook' }, { doc: 'acme pricing' }]);
      expect((await a.count(name, { exact: true })).count).toBe(2);
      expect((await a.scroll(name, { limit: 10 })).points.map((p) => p.id)).toEqual([1, 2]);
      expect((await a.getCollections()).collections).toEqual([{ name }]);
    });

    it("keeps the other tenant's points out of every SDK call", async () => {
      expect((await b.retrieve(name, { ids: [1, 2] })).length).toBe(0);
      expect(
        (await b.query(name, { query: [1, 0, 0], limit: 10, with_payload: true })).points.map(
          (p) => p.payload,
        ),
      ).toEqual([{ doc: 'globex plan' }]);
      await b.delete(name, { wait: true, points: [1, 2] });
      expect((await a.count(name, { exact: true })).count).toBe(2);
    });

    it('surfaces refusals as ordinary Qdrant errors with status 403', async () => {
      expect(await statusOf(b.getCollection('tenant_acme_documents'))).toBe(403);
      expect(
        await statusOf(
          b.scroll(name, { filter: { must: [{ key: 'tenant_id', match: { value: 'acme' } }] } }),
        ),
      ).toBe(403);
      expect(await statusOf(b.getAliases())).toBe(403);
      expect(await statusOf(b.createSnapshot(name))).toBe(403);
    });
  },
);
