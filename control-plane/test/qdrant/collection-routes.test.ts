/**
 * The collection admin routes over the real Qdrant VectorStore (against the Qdrant under
 * test): list, create, read and delete a tenant's collections, audit records for changes, and
 * 404/400 for unknown tenants, unknown templates and ill-formed names. The app's admin auth and
 * error rendering are the control-plane app's job; here a bare Fastify with the app's
 * validation (installValidation) and the same error rendering exercises the routes alone.
 */
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, errorBody } from '../../src/errors.js';
import { fieldProblems, installValidation } from '../../src/http/validation.js';
import { registerCollectionRoutes, type CollectionAuditEntry } from '../../src/routes/collections.js';
import { createQdrantVectorStore } from '../../src/stores/qdrant.js';
import { qdrantUnderTest, type QdrantTarget } from './qdrant-target.js';

let target: QdrantTarget;
const run = randomBytes(3).toString('hex');
const DOCS = `docs${run}`;
const tenants = new Set([`t-${run}`, `u-${run}`]);
const [T, U] = [...tenants] as [string, string];

describe.each(['collection', 'partition'] as const)('collection routes in %s mode', (mode) => {
  let app: FastifyInstance;
  const audit: CollectionAuditEntry[] = [];

  beforeAll(async () => {
    target ??= await qdrantUnderTest();
    const vectorStore = createQdrantVectorStore({
      url: target.url,
      apiKey: target.apiKey,
      mode,
      templates: [{ name: DOCS, size: 4, distance: 'Cosine' }],
    });
    app = Fastify();
    installValidation(app);
    app.setErrorHandler((error: FastifyError, _request, reply) => {
      if (error instanceof ApiError)
        return reply.code(error.status).send(errorBody(error.code, error.message));
      if (error.validation) {
        const problems = fieldProblems(error.validation, error.validationContext ?? 'request');
        const message = problems.map((d) => `${d.field}: ${d.message}`).join('; ');
        return reply.code(400).send(errorBody('CP_ERR_BAD_REQUEST', message));
      }
      return reply.code(error.statusCode ?? 500).send(errorBody('CP_ERR_INTERNAL', error.message));
    });
    registerCollectionRoutes(app, {
      vectorStore,
      tenantExists: async (id) => tenants.has(id),
      audit: async (entry) => {
        audit.push(entry);
      },
    });
    await app.ready();
  });

  afterAll(async () => {
    await app.close();
  });

  it('creates a collection from its template and audits it once', async () => {
    const first = await app.inject({
      method: 'POST',
      url: `/v1/tenants/${T}/collections`,
      payload: { name: DOCS },
    });
    expect(first.statusCode).toBe(201);
    const physical = mode === 'collection' ? `tenant_${T}_${DOCS}` : `lanekeeper_${DOCS}`;
    expect(first.json()).toEqual({ name: DOCS, physical, points: 0 });
    const again = await app.inject({ method: 'POST', url: `/v1/tenants/${T}/collections/${DOCS}` });
    expect(again.statusCode).toBe(201);
    expect(audit.filter((a) => a.action === 'collection.create' && a.resource.includes(T))).toHaveLength(1);
  });

  it('lists and reads the tenant collection', async () => {
    const list = await app.inject({ method: 'GET', url: `/v1/tenants/${T}/collections` });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toMatchObject({ mode, items: [{ name: DOCS, points: 0 }] });
    const one = await app.inject({ method: 'GET', url: `/v1/tenants/${T}/collections/${DOCS}` });
    expect(one.json()).toMatchObject({ name: DOCS });
  });

  it('refuses unknown tenants, unknown templates and ill-formed names', async () => {
    const cases: [string, string, unknown, number][] = [
      ['GET', `/v1/tenants/nobody-${run}/collections`, undefined, 404],
      ['POST', `/v1/tenants/${T}/collections`, { name: 'secrets' }, 404],
      ['POST', `/v1/tenants/${T}/collections`, { name: '../x' }, 400],
      ['POST', `/v1/tenants/${T}/collections`, { name: DOCS, extra: 1 }, 400],
      ['GET', `/v1/tenants/${T}/collections/tenant_${U}_${DOCS}`, undefined, 404],
      ['GET', `/v1/tenants/${T}/collections/..%2F${DOCS}`, undefined, 400],
      ['DELETE', `/v1/tenants/${T}/collections/Docs`, undefined, 400],
      ['GET', `/v1/tenants/Bad_Id/collections`, undefined, 400],
    ];
    for (const [method, url, payload, status] of cases) {
      const res = await app.inject({ method: method as 'GET', url, payload: payload as object });
      expect(res.statusCode, `${method} ${url}`).toBe(status);
      expect(res.json().error.message).toEqual(expect.any(String));
    }
  });

  it("does not show one tenant's collection to another", async () => {
    const res = await app.inject({ method: 'GET', url: `/v1/tenants/${U}/collections` });
    expect(res.json().items).toEqual(
      mode === 'collection' ? [] : [{ name: DOCS, physical: `lanekeeper_${DOCS}`, points: 0 }],
    );
  });

  it('deletes the collection and audits it; in collection mode it is then gone', async () => {
    const res = await app.inject({ method: 'DELETE', url: `/v1/tenants/${T}/collections/${DOCS}` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ name: DOCS, deleted: true });
    expect(
      audit.some(
        (a) => a.action === 'collection.delete' && a.resource === `tenants/${T}/collections/${DOCS}`,
      ),
    ).toBe(true);
    const after = await app.inject({ method: 'DELETE', url: `/v1/tenants/${T}/collections/${DOCS}` });
    expect(after.statusCode).toBe(mode === 'collection' ? 404 : 200);
  });
});

afterAll(async () => {
  if (!target) return;
  const res = await fetch(`${target.url}/collections`, {
    headers: target.apiKey ? { 'api-key': target.apiKey } : {},
  });
  const { result } = (await res.json()) as { result: { collections: { name: string }[] } };
  for (const { name } of result.collections.filter((c) => c.name.includes(run))) {
    await fetch(`${target.url}/collections/${name}`, {
      method: 'DELETE',
      headers: target.apiKey ? { 'api-key': target.apiKey } : {},
    });
  }
  await target.close();
});
