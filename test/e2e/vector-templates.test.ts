/**
 * One source of truth for collection templates: a proxy in control-plane mode routes to
 * exactly the collections the control plane creates (its LANEKEEPER_COLLECTION_TEMPLATES and
 * LANEKEEPER_VECTOR_MODE), whatever its own file says; a standalone proxy keeps its own
 * `vector.templates`. Before, a partition-mode proxy that was not told listed only
 * `documents` while the control plane had created `documents` and `images`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxy, type RunningProxy } from '../../proxy/src/main.js';
import { startControlPlane } from '../../control-plane/src/main.js';
import { call } from '../../control-plane/test/helpers/http.js';
import { createTestEnv, REDIS_URL, type TestEnv } from '../../control-plane/test/helpers/test-env.js';
import { startFakeQdrant, type FakeQdrant } from '../fakes/qdrant/fake-qdrant.js';

const TEMPLATES = [
  { name: 'documents', size: 4, distance: 'Cosine' },
  { name: 'images', size: 8, distance: 'Dot' },
];

let t: TestEnv;
let qdrant: FakeQdrant;
let cp: { url: string; close(): Promise<void> };
let dir: string;
const proxies: RunningProxy[] = [];

beforeAll(async () => {
  qdrant = await startFakeQdrant();
  t = await createTestEnv({
    extra: {
      LANEKEEPER_LEDGER_ENABLED: 'false',
      QDRANT_URL: qdrant.url,
      LANEKEEPER_VECTOR_MODE: 'partition',
      LANEKEEPER_COLLECTION_TEMPLATES: JSON.stringify(TEMPLATES),
    },
  });
  cp = await startControlPlane(t.env);
  dir = await mkdtemp(join(tmpdir(), 'lk-vector-templates-'));
  await call(cp.url, 'POST', '/v1/plans', {
    token: t.adminToken,
    body: { id: 'p', models: { default: 'm' } },
  });
});

afterAll(async () => {
  for (const proxy of proxies) await proxy.close(100);
  await cp?.close();
  await t?.dispose();
  await qdrant?.close();
  await rm(dir, { recursive: true, force: true });
});

function fileConfig(extra: Record<string, unknown>) {
  return {
    listen: '127.0.0.1:0',
    admin_listen: '127.0.0.1:0',
    upstream: { url: 'http://127.0.0.1:1' },
    store: { redis: REDIS_URL, key_prefix: t.prefix },
    log: { level: 'silent' },
    // The file's own templates and mode, which the control plane's must override.
    vector: {
      url: qdrant.url,
      mode: 'collection',
      templates: [{ name: 'documents', size: 1536, distance: 'Cosine' }],
    },
    ...extra,
  };
}

describe('collection templates', () => {
  it('come from the control plane in control-plane mode', async () => {
    const proxy = await startProxy({
      config: fileConfig({
        control_plane: { url: cp.url, token: t.proxyToken, snapshot_path: join(dir, 'snapshot.json') },
      }),
      logger: pino({ level: 'silent' }),
    });
    proxies.push(proxy);
    expect(proxy.config().vector?.templates).toEqual(TEMPLATES);
    expect(proxy.config().vector?.mode).toBe('partition');
    // The proxy's own vector settings that the control plane does not own stay the file's.
    expect(proxy.config().vector?.url).toBe(qdrant.url);
  });

  it('are served in the snapshot with an ETag that changes with them', async () => {
    const res = await call(cp.url, 'GET', '/v1/config', { token: t.proxyToken });
    const body = res.body as { version: number; vector: unknown };
    expect(body.vector).toEqual({ mode: 'partition', templates: TEMPLATES });
    expect(res.headers.etag).toMatch(new RegExp(`^"${body.version}-[0-9a-f]{16}"$`));
  });

  it("stay the proxy's own without a control plane", async () => {
    const proxy = await startProxy({
      config: fileConfig({ plans: { p: { models: { default: 'm' } } } }),
      logger: pino({ level: 'silent' }),
    });
    proxies.push(proxy);
    expect(proxy.config().vector?.templates).toEqual([{ name: 'documents', size: 1536, distance: 'Cosine' }]);
    expect(proxy.config().vector?.mode).toBe('collection');
  });
});
