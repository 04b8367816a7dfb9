/**
 * The control-plane source without a control plane: what a proxy does when it starts while
 * the control plane is unreachable. (Fetching, 304s, pub/sub and disk writes are tested
 * against a real control plane in test/e2e/control-plane-source.test.ts.)
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ControlPlaneUnavailableError,
  createControlPlaneSource,
  type ControlPlaneSnapshot,
  type ControlPlaneSourceOptions,
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

/** A stand-in control plane on a free loopback port, closed after the test. */
async function serve(handler: Parameters<typeof createServer>[1]) {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

/** A source for the control plane at `url`, its snapshot kept in this test's directory. */
function sourceAt(
  url: string,
  onSnapshot: (raw: ControlPlaneSnapshot) => unknown,
  more: Partial<ControlPlaneSourceOptions> = {},
) {
  return createControlPlaneSource(
    {
      url,
      token: 't',
      pollIntervalMs: 60_000,
      snapshotPath: join(dir, 'snapshot.json'),
      keyPrefix: 'lk:',
      logger: quiet,
      fetchTimeoutMs: 1000,
      ...more,
    },
    onSnapshot,
  );
}

/** A snapshot of `version` as the control plane answers it. */
const answer = (version: number, extra: object = {}) =>
  JSON.stringify({ version, plans: {}, tenants: [], pricing: {}, ...extra });

describe('createControlPlaneSource with a snapshot the proxy refuses', () => {
  it('fetches it again at the next poll (no If-None-Match), and logs it once', async () => {
    const asked: (string | undefined)[] = [];
    const url = await serve((req, res) => {
      asked.push(req.headers['if-none-match']);
      if (req.headers['if-none-match'] === '"3"') return void res.writeHead(304).end();
      res.writeHead(200, { 'content-type': 'application/json', etag: '"3"' }).end(answer(3));
    });
    const errors: unknown[] = [];
    let refuse = true;
    const source = sourceAt(
      url,
      () => {
        // Refused until the proxy's own config changes (an upstream added, say).
        if (refuse) throw new Error('refused');
      },
      { logger: { ...quiet, error: (...args: unknown[]) => void errors.push(args) } },
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
    }
  });
});

describe('createControlPlaneSource when the version goes back', () => {
  it('follows it, and says so: a restored or replaced database', async () => {
    const versions = [5, 3];
    const url = await serve((_req, res) => {
      const version = versions.shift() ?? 3;
      res.writeHead(200, { 'content-type': 'application/json', etag: `"${version}"` }).end(answer(version));
    });
    const warnings: unknown[][] = [];
    const seen: ControlPlaneSnapshot[] = [];
    const source = sourceAt(url, (raw) => seen.push(raw), {
      logger: { ...quiet, warn: (...args: unknown[]) => void warnings.push(args) },
    });
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
    }
  });
});

describe('createControlPlaneSource against an answer that is no snapshot', () => {
  const big = answer(1, { pad: 'x'.repeat(4096) });

  it.each([
    ['a declared length', true],
    ['a chunked body', false],
  ])('refuses a snapshot over maxSnapshotBytes, with %s', async (_name, declared) => {
    const url = await serve((_req, res) => {
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
    const source = sourceAt(url, (raw) => seen.push(raw), { maxSnapshotBytes: 1024 });
    try {
      await expect(source.start()).rejects.toThrow(/answered more than 1024 bytes/);
      expect(seen).toEqual([]);
    } finally {
      await source.close();
    }
  });

  it('does not follow a redirect, nor send its token elsewhere', async () => {
    const elsewhere: string[] = [];
    const other = await serve((req, res) => {
      elsewhere.push(String(req.headers.authorization));
      res.writeHead(200, { 'content-type': 'application/json' }).end(big);
    });
    const url = await serve((_req, res) => void res.writeHead(302, { location: `${other}/v1/config` }).end());
    const source = sourceAt(url, () => undefined);
    try {
      await expect(source.start()).rejects.toBeInstanceOf(ControlPlaneUnavailableError);
      expect(elsewhere).toEqual([]);
    } finally {
      await source.close();
    }
  });
});
