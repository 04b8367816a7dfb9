/**
 * The proxy's control-plane source against a real control plane: the first snapshot and
 * its copy on disk, 304 when nothing changed, a change pushed over Redis pub/sub (polling
 * set far too slow to explain it), serving on when the control plane goes away, and
 * starting from the disk snapshot while it is down.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INCARNATION_PATTERN } from '@lanekeeper/contract';
import {
  ControlPlaneUnavailableError,
  createControlPlaneSource,
  type ControlPlaneSnapshot,
  type ControlPlaneSource,
} from '../../proxy/src/config/control-plane-source.js';
import { startControlPlane } from '../../control-plane/src/main.js';
import { call } from '../../control-plane/test/helpers/http.js';
import { createTestEnv, REDIS_URL, type TestEnv } from '../../control-plane/test/helpers/test-env.js';

let t: TestEnv;
let cp: { url: string; close(): Promise<void> } | undefined;
let dir: string;
const sources: ControlPlaneSource[] = [];
const logs: { level: string; msg?: string }[] = [];
const logger = {
  info: (_o: object, msg?: string) => logs.push({ level: 'info', msg }),
  warn: (_o: object, msg?: string) => logs.push({ level: 'warn', msg }),
  error: (_o: object, msg?: string) => logs.push({ level: 'error', msg }),
};

const admin = (method: string, path: string, body?: unknown) =>
  call(cp!.url, method, path, { token: t.adminToken, body });

function source(url: string, snapshots: ControlPlaneSnapshot[], pollIntervalMs = 60_000, redis = true) {
  const s = createControlPlaneSource(
    {
      url,
      token: t.proxyToken,
      pollIntervalMs,
      snapshotPath: join(dir, 'snapshot.json'),
      ...(redis ? { redisUrl: REDIS_URL } : {}),
      keyPrefix: t.prefix,
      logger,
      fetchTimeoutMs: 2000,
    },
    (raw) => snapshots.push(raw),
  );
  sources.push(s);
  return s;
}

async function until(check: () => boolean | Promise<boolean>, what: string, limitMs = 10_000) {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  t = await createTestEnv({ extra: { LANEKEEPER_LEDGER_ENABLED: 'false' } });
  dir = await mkdtemp(join(tmpdir(), 'lk-cp-source-'));
  cp = await startControlPlane(t.env);
  await admin('POST', '/v1/plans', { id: 'free', models: { default: 'gpt-4o-mini' } });
  await admin('POST', '/v1/tenants', { id: 'acme', plan: 'free' });
});

afterAll(async () => {
  for (const s of sources) await s.close();
  await cp?.close();
  await t?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('the control-plane source', () => {
  let cpUrl: string;

  it('loads the snapshot and keeps a copy of it on disk', async () => {
    cpUrl = cp!.url;
    const snapshots: ControlPlaneSnapshot[] = [];
    const s = source(cpUrl, snapshots);
    await s.start();
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0]!.tenants).toEqual([
      {
        id: 'acme',
        plan: 'free',
        status: 'active',
        api_key_sha256: [],
        overrides: {},
        incarnation: expect.stringMatching(INCARNATION_PATTERN),
      },
    ]);
    expect(s.current).toEqual({ version: snapshots[0]!.version, origin: 'control-plane' });
    const disk = JSON.parse(await readFile(join(dir, 'snapshot.json'), 'utf8'));
    expect(disk.snapshot).toEqual(snapshots[0]);
    expect(disk.etag).toMatch(new RegExp(`^"${snapshots[0]!.version}-[0-9a-f]{16}"$`));

    // Nothing changed: the refetch is a 304 and the proxy is not handed the same config again.
    expect(await s.refresh()).toBe(false);
    expect(snapshots).toHaveLength(1);
    await s.close();
  });

  it('hears a change over pub/sub and refetches it without waiting for the poll', async () => {
    const snapshots: ControlPlaneSnapshot[] = [];
    const s = source(cpUrl, snapshots, 600_000);
    await s.start();
    await until(async () => {
      const [, subscribers] = (await t.redis.call('PUBSUB', 'NUMSUB', `${t.prefix}config`)) as [
        string,
        number,
      ];
      return subscribers > 0;
    }, 'the source to subscribe');
    const before = snapshots.length;

    await admin('PATCH', '/v1/tenants/acme', { status: 'suspended' });
    await until(
      () =>
        snapshots.length > before &&
        (snapshots.at(-1)!.tenants[0] as { status: string }).status === 'suspended',
      'the pushed change',
    );
    // The disk copy follows the accepted snapshot (written just after the proxy took it).
    await until(async () => {
      const disk = JSON.parse(await readFile(join(dir, 'snapshot.json'), 'utf8'));
      return (disk.snapshot.tenants[0] as { status: string }).status === 'suspended';
    }, 'the disk snapshot');
    await s.close();
  });

  it('keeps the proxy rejection of a snapshot from reaching the disk', async () => {
    let calls = 0;
    const s = createControlPlaneSource(
      {
        url: cpUrl,
        token: t.proxyToken,
        pollIntervalMs: 600_000,
        snapshotPath: join(dir, 'snapshot.json'),
        keyPrefix: t.prefix,
        logger,
      },
      () => {
        calls++;
        if (calls > 1) throw new Error('parseConfig says no');
      },
    );
    sources.push(s);
    await s.start();
    await admin('PATCH', '/v1/tenants/acme', { status: 'active' });
    expect(await s.refresh()).toBe(false);
    const disk = JSON.parse(await readFile(join(dir, 'snapshot.json'), 'utf8'));
    expect((disk.snapshot.tenants[0] as { status: string }).status).toBe('suspended');
    expect(logs.some((l) => l.level === 'error' && l.msg?.includes('rejects'))).toBe(true);
    await s.close();
  });

  it('says when the control plane refuses its token, apart from any outage, and when it takes it again', async () => {
    const at = logs.length;
    let token = 'stale-proxy-token-'.padEnd(40, 'x');
    const s = createControlPlaneSource(
      {
        url: cpUrl,
        get token() {
          return token;
        },
        pollIntervalMs: 600_000,
        snapshotPath: join(dir, 'snapshot.json'),
        keyPrefix: t.prefix,
        logger,
        fetchTimeoutMs: 2000,
      },
      () => undefined,
    );
    sources.push(s);
    await s.start();
    expect(s.current?.origin).toBe('disk');
    for (let i = 0; i < 5; i++) expect(await s.refresh()).toBe(false);
    const refused = logs.slice(at).filter((l) => l.msg?.includes('this proxy token refused'));
    expect(refused).toEqual([{ level: 'warn', msg: 'control plane (this proxy token refused) unavailable' }]);
    token = t.proxyToken;
    await s.refresh();
    expect(s.current?.origin).toBe('control-plane');
    expect(logs.slice(at).filter((l) => l.msg?.includes('this proxy token refused'))).toEqual([
      { level: 'warn', msg: 'control plane (this proxy token refused) unavailable' },
      { level: 'info', msg: 'control plane (this proxy token refused) available again' },
    ]);
    await s.close();
  });

  it('keeps serving its last snapshot when the control plane goes away', async () => {
    const snapshots: ControlPlaneSnapshot[] = [];
    const s = source(cpUrl, snapshots);
    await s.start();
    await cp!.close();
    cp = undefined;
    expect(await s.refresh()).toBe(false);
    expect(s.current?.origin).toBe('control-plane');
    expect(logs.some((l) => l.level === 'warn' && l.msg?.includes('control plane unavailable'))).toBe(true);
    await s.close();
  });

  it('starts from the disk snapshot while the control plane is down', async () => {
    const snapshots: ControlPlaneSnapshot[] = [];
    const s = source(cpUrl, snapshots);
    await s.start();
    expect(snapshots).toHaveLength(1);
    expect((snapshots[0]!.tenants[0] as { status: string }).status).toBe('active');
    expect(s.current?.origin).toBe('disk');
    await s.close();
  });

  it('refuses to start with neither the control plane nor a snapshot', async () => {
    await rm(join(dir, 'snapshot.json'));
    const s = source(cpUrl, []);
    await expect(s.start()).rejects.toBeInstanceOf(ControlPlaneUnavailableError);
  });
});
