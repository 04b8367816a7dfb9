/**
 * Who a request is, as an attacker would probe it: credentials that look like another kind
 * of credential, and a control plane (compromised, or impersonated) whose snapshot tries to
 * reach past the plans, tenants and pricing it owns. Real proxy on loopback, raw HTTP.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeQdrant, type FakeQdrant } from '../../../test/fakes/qdrant/fake-qdrant.js';
import { sha256Hex } from '../../src/identity/credentials.js';
import { chatCompletion } from '../helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';

const reply = {
  kind: 'json' as const,
  body: chatCompletion('small-model', 'ok', { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }),
};

async function chat(h: Harness, headers: Record<string, string>) {
  const res = await request(`${h.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
  });
  return {
    status: res.statusCode,
    body: (await res.body.json()) as { error?: { code: string; message: string } },
  };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('a credential shaped like a JWT', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  // A public key whose private half nobody holds: every JWT in these tests is refused.
  const jwt = {
    public_key:
      '{"kty":"EC","crv":"P-256","x":"2L3vUCTPm5EByfnOs5ifVv7_kghiV5BeWnzscgiDmmY","y":"TtDmEJ9yu9FHNAR8qWtlf8uQEB0ED2ZQ4gSUtk0edVk"}',
  };

  it('in x-api-key is refused as an invalid key, not skipped for a weaker source', async () => {
    h = await startHarness({
      reply,
      config: (base) => ({
        ...base,
        identity: { sources: ['api_key', 'jwt', 'header'], trust_unauthenticated: true, jwt },
      }),
    });
    const before = h.upstream.received.length;
    for (const name of ['x-api-key', 'api-key', 'x-goog-api-key']) {
      const r = await chat(h, { [name]: 'aaaa.bbbb.cccc', 'x-tenant-id': 'globex' });
      expect(r.status).toBe(401);
      expect(r.body.error?.code).toBe('invalid_api_key');
    }
    expect(h.upstream.received.length).toBe(before);
  });

  it('in x-api-key alone is called invalid, not missing', async () => {
    h = await startHarness({
      reply,
      config: (base) => ({ ...base, identity: { sources: ['api_key', 'jwt'], jwt } }),
    });
    const r = await chat(h, { 'x-api-key': 'aaaa.bbbb.cccc' });
    expect(r.status).toBe(401);
    expect(r.body.error?.code).toBe('invalid_api_key');
  });

  it('as a bearer is verified before any source listed after api_key can name a tenant', async () => {
    h = await startHarness({
      reply,
      config: (base) => ({
        ...base,
        identity: { sources: ['api_key', 'header', 'jwt'], trust_unauthenticated: true, jwt },
      }),
    });
    const before = h.upstream.received.length;
    const r = await chat(h, { authorization: 'Bearer aaaa.bbbb.cccc', 'x-tenant-id': 'globex' });
    expect(r.status).toBe(401);
    expect(r.body.error?.code).toBe('invalid_token');
    expect(h.upstream.received.length).toBe(before);
  });

  it('still admits a real API key and, in the bearer, leaves a JWT to the jwt source', async () => {
    h = await startHarness({
      reply,
      config: (base) => ({ ...base, identity: { sources: ['api_key', 'jwt'], jwt } }),
    });
    expect((await chat(h, { 'x-api-key': KEYS.pro })).status).toBe(200);
    const r = await chat(h, { authorization: 'Bearer aaaa.bbbb.cccc' });
    expect(r.status).toBe(401);
    expect(r.body.error?.code).toBe('invalid_token');
  });
});

describe('a control-plane snapshot with a vector section', () => {
  let qdrant: FakeQdrant;
  let elsewhere: Server;
  let controlPlane: Server;
  let h: Harness;
  let dir: string;
  const reachedElsewhere: IncomingHttpHeaders[] = [];
  const QDRANT_KEY = 'the-operators-qdrant-key';

  beforeAll(async () => {
    qdrant = await startFakeQdrant({ apiKey: QDRANT_KEY });
    elsewhere = createServer((req, res) => {
      reachedElsewhere.push(req.headers);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ result: { collections: [] }, status: 'ok', time: 0 }));
    });
    const elsewhereUrl = await listen(elsewhere);
    const templates = [{ name: 'documents', size: 3, distance: 'Cosine' }];
    controlPlane = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          version: 1,
          plans: { pro: { models: { default: 'small-model' }, features: ['rag'] } },
          tenants: [{ id: 'globex', plan: 'pro', api_key_sha256: [sha256Hex(KEYS.pro)] }],
          pricing: {},
          // The control plane owns mode and templates; Qdrant's address and key are the file's.
          vector: { mode: 'collection', templates, url: elsewhereUrl },
        }),
      );
    });
    const controlPlaneUrl = await listen(controlPlane);
    dir = await mkdtemp(join(tmpdir(), 'lk-identity-audit-'));
    h = await startHarness({
      reply,
      config: (base) => ({
        ...base,
        control_plane: {
          url: controlPlaneUrl,
          token: 'proxy-token',
          snapshot_path: join(dir, 'snapshot.json'),
        },
        vector: { url: qdrant.url, api_key: QDRANT_KEY, mode: 'collection', templates },
      }),
    });
  });
  afterAll(async () => {
    await h.close();
    await qdrant.close();
    await new Promise((r) => elsewhere.close(r));
    await new Promise((r) => controlPlane.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it("never sends vector calls, or the operator's Qdrant key, to an address the snapshot names", async () => {
    const res = await request(`${h.proxy.url}/qdrant/collections`, {
      headers: { authorization: `Bearer ${KEYS.pro}` },
    });
    expect(res.statusCode).toBe(200);
    await res.body.text();
    expect(reachedElsewhere).toEqual([]);
    expect(qdrant.requests.at(-1)?.headers['api-key']).toBe(QDRANT_KEY);
  });
});
