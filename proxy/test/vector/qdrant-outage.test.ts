/**
 * Qdrant out of reach, as the operator reads the proxy's log: one outage (a warning, then a
 * line when it answers again), never a warning with a stack per tenant call.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeQdrant, type FakeQdrant } from '../../../test/fakes/qdrant/fake-qdrant.js';
import { Metrics } from '../../src/metrics.js';
import { createVectorRoute, type VectorTenant } from '../../src/vector/vector-route.js';

const TENANT: VectorTenant = { id: 'a', features: ['rag'] };

let fake: FakeQdrant;
/** In front of the fake Qdrant: drops every connection while `down`. */
let gate: Server;
let down = false;

beforeAll(async () => {
  fake = await startFakeQdrant({});
  const target = new URL(fake.url);
  gate = createServer((req, res) => {
    if (down) return req.socket.destroy();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const answer = await fetch(`${target.origin}${req.url}`, {
        method: req.method,
        headers: { 'content-type': 'application/json' },
        body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
      });
      res
        .writeHead(answer.status, { 'content-type': 'application/json' })
        .end(Buffer.from(await answer.arrayBuffer()));
    });
  });
  await new Promise<void>((r) => gate.listen(0, '127.0.0.1', r));
});
afterAll(async () => {
  await new Promise((r) => gate.close(r));
  await fake.close();
});

describe('Qdrant out of reach', () => {
  it('is one outage in the log, with no stack, and ends when Qdrant answers', async () => {
    const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
    const route = createVectorRoute({
      config: {
        url: `http://127.0.0.1:${(gate.address() as AddressInfo).port}`,
        mode: 'collection',
        path_prefix: '/qdrant',
        max_response_bytes: 1 << 20,
        templates: [{ name: 'documents', size: 4, distance: 'Cosine' }],
      },
      metrics: new Metrics(10),
      logger: {
        warn: (fields, msg) => void lines.push({ level: 'warn', msg, fields }),
        info: (fields, msg) => void lines.push({ level: 'info', msg, fields }),
      },
    });
    const create = () =>
      route.handle(TENANT, {
        method: 'PUT',
        path: '/collections/documents',
        query: '',
        headers: {},
        body: Buffer.from(JSON.stringify({ vectors: { size: 4, distance: 'Cosine' } })),
        maxJsonDepth: 64,
      });
    try {
      down = true;
      for (let i = 0; i < 5; i++) expect((await create()).status).toBe(502);
      expect(lines).toEqual([
        {
          level: 'warn',
          msg: 'qdrant unavailable',
          fields: expect.objectContaining({ dependency: 'qdrant' }),
        },
      ]);
      down = false;
      expect((await create()).status).toBe(200);
      expect(lines.map((l) => l.msg)).toEqual(['qdrant unavailable', 'qdrant available again']);
      expect(lines[1]!.fields).toMatchObject({ failures: 5 });
      expect(JSON.stringify(lines)).not.toContain('    at ');
    } finally {
      await route.close();
    }
  });
});
