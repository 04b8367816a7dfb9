/**
 * The control-plane source without a control plane: what a proxy does when it starts while
 * the control plane is unreachable. (Fetching, 304s, pub/sub and disk writes are tested
 * against a real control plane in test/e2e/control-plane-source.test.ts.)
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ControlPlaneUnavailableError,
  createControlPlaneSource,
  type ControlPlaneSnapshot,
} from './control-plane-source.js';

// Port 1 on loopback: nothing listens there, so every fetch fails at once.
const UNREACHABLE = 'http://127.0.0.1:1';
const quiet = { info: () => {}, warn: () => {}, error: () => {} };
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lk-source-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function sourceWith(snapshotPath: string, seen: ControlPlaneSnapshot[]) {
  return createControlPlaneSource(
    {
      url: UNREACHABLE,
      token: 't',
      pollIntervalMs: 60_000,
      snapshotPath,
      keyPrefix: 'lk:',
      logger: quiet,
      fetchTimeoutMs: 1000,
    },
    (raw) => seen.push(raw),
  );
}

describe('createControlPlaneSource with the control plane down', () => {
  it('starts from the snapshot saved on disk', async () => {
    const snapshot: ControlPlaneSnapshot = {
      version: 7,
      plans: { free: { models: { default: 'm' } } },
      tenants: [{ id: 'acme', plan: 'free' }],
      pricing: {},
    };
    const path = join(dir, 'snapshot.json');
    await writeFile(path, JSON.stringify({ etag: '"7"', saved_at: '2026-11-29T00:00:00Z', snapshot }));
    const seen: ControlPlaneSnapshot[] = [];
    const source = sourceWith(path, seen);
    await source.start();
    try {
      expect(seen).toEqual([snapshot]);
      expect(source.current).toEqual({ version: 7, origin: 'disk' });
      // Still down: a refresh changes nothing and does not throw.
      expect(await source.refresh()).toBe(false);
    } finally {
      await source.close();
    }
  });

  it.each([
    ['no snapshot file', undefined],
    ['a torn snapshot file', '{"etag":"\\"7\\"","snapshot":{"vers'],
    ['a file that is not a snapshot', '{"etag":null,"snapshot":{"plans":[]}}'],
  ])('refuses to start with %s', async (_name, content) => {
    const path = join(dir, 'snapshot.json');
    if (content !== undefined) await writeFile(path, content);
    const seen: ControlPlaneSnapshot[] = [];
    const source = sourceWith(path, seen);
    await expect(source.start()).rejects.toBeInstanceOf(ControlPlaneUnavailableError);
    expect(seen).toEqual([]);
    await source.close();
  });
});

describe('createControlPlaneSource with a snapshot the proxy refuses', () => {
  it('fetches it again at the next poll (no If-None-Match), and logs it once', async () => {
    const snapshot: ControlPlaneSnapshot = { version: 3, plans: {}, tenants: [], pricing: {} };
    const asked: (string | undefined)[] = [];
    const server = createServer((req, res) => {
      asked.push(req.headers['if-none-match']);
      if (req.headers['if-none-match'] === '"3"') return void res.writeHead(304).end();
      res.writeHead(200, { 'content-type': 'application/json', etag: '"3"' }).end(JSON.stringify(snapshot));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const errors: unknown[] = [];
    let refuse = true;
    const source = createControlPlaneSource(
      {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        token: 't',
        pollIntervalMs: 60_000,
        snapshotPath: join(dir, 'snapshot.json'),
        keyPrefix: 'lk:',
        logger: { ...quiet, error: (...args: unknown[]) => void errors.push(args) },
        fetchTimeoutMs: 1000,
      },
      () => {
        // Refused until the proxy's own config changes (an upstream added, say).
        if (refuse) throw new Error('refused');
      },
    );
    try {
      await expect(source.start()).rejects.toBeInstanceOf(ControlPlaneUnavailableError);
      expect(await source.refresh()).toBe(false);
      refuse = false;
      expect(await source.refresh()).toBe(true);
      expect(source.current).toEqual({ version: 3, origin: 'control-plane' });
      // Accepted: from now on the ETag stands.
      expect(await source.refresh()).toBe(false);
      expect(asked).toEqual([undefined, undefined, undefined, '"3"']);
      expect(errors).toHaveLength(1);
    } finally {
      await source.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('createControlPlaneSource when the version goes back', () => {
  it('follows it, and says so: a restored or replaced database', async () => {
    const versions = [5, 3];
    const server = createServer((_req, res) => {
      const version = versions.shift() ?? 3;
      const snapshot: ControlPlaneSnapshot = { version, plans: {}, tenants: [], pricing: {} };
      res
        .writeHead(200, { 'content-type': 'application/json', etag: `"${version}"` })
        .end(JSON.stringify(snapshot));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const warnings: unknown[][] = [];
    const seen: ControlPlaneSnapshot[] = [];
    const source = createControlPlaneSource(
      {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        token: 't',
        pollIntervalMs: 60_000,
        snapshotPath: join(dir, 'snapshot.json'),
        keyPrefix: 'lk:',
        logger: { ...quiet, warn: (...args: unknown[]) => void warnings.push(args) },
        fetchTimeoutMs: 1000,
      },
      (raw) => seen.push(raw),
    );
    try {
      await source.start();
      expect(await source.refresh()).toBe(true);
      expect(seen.map((s) => s.version)).toEqual([5, 3]);
      expect(source.current).toEqual({ version: 3, origin: 'control-plane' });
      expect(warnings).toEqual([
        [{ from: 5, to: 3, tenants: 0 }, expect.stringContaining('config version went back')],
      ]);
    } finally {
      await source.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('createControlPlaneSource against an answer that is no snapshot', () => {
  async function serve(handler: Parameters<typeof createServer>[1]) {
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }

  const big = JSON.stringify({ version: 1, plans: {}, tenants: [], pricing: {}, pad: 'x'.repeat(4096) });

  it.each([
    ['a declared length', true],
    ['a chunked body', false],
  ])('refuses a snapshot over maxSnapshotBytes, with %s', async (_name, declared) => {
    const { server, url } = await serve((_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        ...(declared ? { 'content-length': Buffer.byteLength(big) } : {}),
      });
      if (declared) return void res.end(big);
      // Written in parts: no length known before the body is read.
      res.write(big.slice(0, 1000));
      setTimeout(() => res.end(big.slice(1000)), 10);
    });
    const seen: ControlPlaneSnapshot[] = [];
    const source = createControlPlaneSource(
      {
        url,
        token: 't',
        pollIntervalMs: 60_000,
        snapshotPath: join(dir, 'snapshot.json'),
        keyPrefix: 'lk:',
        logger: quiet,
        maxSnapshotBytes: 1024,
      },
      (raw) => seen.push(raw),
    );
    try {
      await expect(source.start()).rejects.toThrow(/answered more than 1024 bytes/);
      expect(seen).toEqual([]);
    } finally {
      await source.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('does not follow a redirect, nor send its token elsewhere', async () => {
    const elsewhere: string[] = [];
    const other = await serve((req, res) => {
      elsewhere.push(String(req.headers.authorization));
      res.writeHead(200, { 'content-type': 'application/json' }).end(big);
    });
    const { server, url } = await serve((_req, res) => {
      res.writeHead(302, { location: `${other.url}/v1/config` }).end();
    });
    const source = createControlPlaneSource(
      {
        url,
        token: 't',
        pollIntervalMs: 60_000,
        snapshotPath: join(dir, 'snapshot.json'),
        keyPrefix: 'lk:',
        logger: quiet,
      },
      () => undefined,
    );
    try {
      await expect(source.start()).rejects.toBeInstanceOf(ControlPlaneUnavailableError);
      expect(elsewhere).toEqual([]);
    } finally {
      await source.close();
      await new Promise((resolve) => server.close(resolve));
      await new Promise((resolve) => other.server.close(resolve));
    }
  });
});
