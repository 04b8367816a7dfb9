/**
 * Qdrant out of reach under the control plane is an outage of a dependency (issue 18): one
 * warning when calls start failing, not one per call, and one info line when it answers
 * again. Its API key never reaches the console outside the JSON lines, and one that could
 * not go in a header is refused when the configuration is read.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ControlPlaneConfigError } from '../../src/errors.js';
import { createQdrantVectorStore, VectorStoreUnavailableError } from '../../src/stores/qdrant.js';
import { startFakeQdrant, type FakeQdrant } from '../../../test/fakes/qdrant/fake-qdrant.js';
import { startTcpGate, type TcpGate } from '../../../test/helpers/tcp-gate.js';

function recorder() {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  return {
    lines,
    warn: (fields: Record<string, unknown>, msg: string) => lines.push({ level: 'warn', msg, fields }),
    info: (fields: Record<string, unknown>, msg: string) => lines.push({ level: 'info', msg, fields }),
  };
}

let fake: FakeQdrant;
let gate: TcpGate;
let gateUrl: string;
const templates = [{ name: 'documents', size: 2, distance: 'Cosine' as const }];

beforeAll(async () => {
  fake = await startFakeQdrant({ apiKey: 'qdrant-secret-key' });
  gate = await startTcpGate('127.0.0.1', Number(new URL(fake.url).port));
  gateUrl = `http://127.0.0.1:${gate.port}`;
});
afterAll(async () => {
  await gate.close();
  await fake.close();
});

describe('Qdrant out of reach under the control plane', () => {
  it('writes one warning for a run of failed calls and one line when it answers again', async () => {
    const log = recorder();
    const store = createQdrantVectorStore({
      url: gateUrl,
      apiKey: 'qdrant-secret-key',
      mode: 'collection',
      templates,
      logger: log,
      timeoutMs: 2_000,
    });
    await store.createTenantCollections('acme');
    // The plain-http warning is the one line so far: Qdrant answered.
    expect(log.lines.map((l) => l.msg)).toEqual(['the Qdrant API key is sent over plain http']);
    log.lines.length = 0;

    gate.cut();
    for (let i = 0; i < 6; i++) {
      await expect(store.listCollections('acme')).rejects.toBeInstanceOf(VectorStoreUnavailableError);
    }
    expect(await store.healthy()).toBe(false);
    // Each call has settled; the client's own promise is reported a tick later.
    await new Promise((resolve) => setImmediate(resolve));
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatchObject({ level: 'warn', fields: { dependency: 'qdrant' } });
    expect(JSON.stringify(log.lines)).not.toContain('qdrant-secret-key');

    gate.open();
    expect(await store.listCollections('acme')).toEqual([
      expect.objectContaining({ name: 'documents', physical: 'tenant_acme_documents' }),
    ]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(log.lines.map((l) => l.level)).toEqual(['warn', 'info']);
    expect(log.lines[1]!.fields).toMatchObject({ dependency: 'qdrant' });
  });

  it('counts an answer such as a 404 as Qdrant working', async () => {
    const log = recorder();
    const store = createQdrantVectorStore({
      url: fake.url,
      apiKey: 'qdrant-secret-key',
      mode: 'collection',
      templates,
      logger: log,
    });
    expect(await store.deleteCollection('nobody', 'documents')).toBe(false);
    await new Promise((resolve) => setImmediate(resolve));
    expect(log.lines.filter((l) => l.msg !== 'the Qdrant API key is sent over plain http')).toEqual([]);
  });

  it('sends the key as a header and prints nothing on the console', async () => {
    const warn = vi.spyOn(console, 'warn');
    try {
      const store = createQdrantVectorStore({
        url: fake.url,
        apiKey: 'qdrant-secret-key',
        mode: 'collection',
        templates,
      });
      // The fake refuses a request without the key, so this passing proves it was sent.
      expect(await store.createTenantCollections('keyed')).toHaveLength(1);
      const wrong = createQdrantVectorStore({
        url: fake.url,
        apiKey: 'wrong-key',
        mode: 'collection',
        templates,
      });
      await expect(wrong.listCollections('keyed')).rejects.toBeInstanceOf(VectorStoreUnavailableError);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it.each(['key with space', 'line\r\nX-Injected: 1', 'tab\tkey', 'é-key'])(
    'refuses QDRANT_API_KEY %j when the configuration is read',
    (value) => {
      const env = {
        LANEKEEPER_ADMIN_TOKEN: 'a'.repeat(32),
        LANEKEEPER_PROXY_TOKEN: 'b'.repeat(32),
        QDRANT_URL: 'http://127.0.0.1:6333',
        QDRANT_API_KEY: value,
      };
      let problem: ControlPlaneConfigError | undefined;
      try {
        loadConfig(env);
      } catch (error) {
        problem = error as ControlPlaneConfigError;
      }
      expect(problem).toBeInstanceOf(ControlPlaneConfigError);
      expect(problem!.problems.map((p) => p.variable)).toContain('QDRANT_API_KEY');
      expect(JSON.stringify(problem!.problems)).not.toContain(value);
    },
  );
});
