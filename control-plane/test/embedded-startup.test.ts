/**
 * Without DATABASE_URL the control plane runs on the embedded database (PGlite): it creates
 * the data directory, migrates it on its own, and what the admin API wrote is still there
 * after a restart.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startEmbeddedDatabase } from '../src/embedded-db.js';
import { startControlPlane } from '../src/main.js';
import { call } from './helpers/http.js';
import { REDIS_URL } from './helpers/test-env.js';

let root: string;
let env: NodeJS.ProcessEnv;
const adminToken = `admin-${randomBytes(16).toString('hex')}`;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'lk-embedded-'));
  const id = randomBytes(5).toString('hex');
  env = {
    REDIS_URL,
    LANEKEEPER_DATA_DIR: join(root, 'nested', 'data'),
    LANEKEEPER_ADMIN_TOKEN: adminToken,
    LANEKEEPER_PROXY_TOKEN: `proxy-${randomBytes(16).toString('hex')}`,
    PORT: '0',
    HOST: '127.0.0.1',
    LANEKEEPER_KEY_PREFIX: `lk-test-${id}:`,
    LANEKEEPER_LEDGER_CONSUMER: `ledger-${id}`,
    LANEKEEPER_LOG_LEVEL: 'silent',
  };
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('the embedded database (no DATABASE_URL)', () => {
  it('creates and migrates the data directory, and keeps data across a restart', async () => {
    expect(existsSync(env.LANEKEEPER_DATA_DIR!)).toBe(false);
    const first = await startControlPlane(env);
    try {
      expect(existsSync(env.LANEKEEPER_DATA_DIR!)).toBe(true);
      const ready = await call(first.url, 'GET', '/readyz');
      expect(ready).toMatchObject({ status: 200, body: { ready: true, postgres: true } });
      const plan = await call(first.url, 'POST', '/v1/plans', {
        token: adminToken,
        body: { id: 'free', models: { default: 'gpt-4o-mini' } },
      });
      expect(plan.status).toBe(201);
      const tenant = await call(first.url, 'POST', '/v1/tenants', {
        token: adminToken,
        body: { id: 'acme', plan: 'free' },
      });
      expect(tenant.status).toBe(201);
    } finally {
      await first.close();
    }

    const second = await startControlPlane(env);
    try {
      const tenants = await call(second.url, 'GET', '/v1/tenants', { token: adminToken });
      expect(tenants.status).toBe(200);
      expect(JSON.stringify(tenants.body)).toContain('"acme"');
      const plan = await call(second.url, 'GET', '/v1/plans/free', { token: adminToken });
      expect(plan).toMatchObject({ status: 200, body: { id: 'free', models: { default: 'gpt-4o-mini' } } });
      // Concurrent requests share the small pool over the socket server without mixing replies.
      const many = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          call(second.url, 'POST', '/v1/tenants', {
            token: adminToken,
            body: { id: `t-${i}`, plan: 'free' },
          }),
        ),
      );
      expect(many.map((r) => r.status)).toEqual(Array(20).fill(201));
      expect(many.map((r) => r.body.id)).toEqual(Array.from({ length: 20 }, (_, i) => `t-${i}`));
    } finally {
      await second.close();
    }
  });

  it('serves the database only to this user: a private Unix socket, no TCP port, a 0700 data directory', async () => {
    const dataDir = join(root, 'loose');
    // As a directory made by hand with the usual umask would be.
    await mkdir(dataDir, { mode: 0o755 });
    const tcpBefore = listeningTcpPorts();
    const db = await startEmbeddedDatabase(dataDir);
    const socketDir = new URLSearchParams(db.url.split('?')[1]).get('host')!;
    try {
      expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
      expect((await stat(socketDir)).mode & 0o777).toBe(0o700);
      expect(db.url).not.toMatch(/@[^/]/);
      expect([...listeningTcpPorts()].filter((port) => !tcpBefore.has(port))).toEqual([]);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await client.end();
    } finally {
      await db.close();
    }
    expect(existsSync(socketDir)).toBe(false);
  });

  // PGlite takes no lock: two processes on one directory each acknowledged writes one of them
  // lost (`npm run demo` and `lanekeeper control-plane` from the repository share a default).
  it("refuses a data directory another live process has open, and takes over a dead one's", async () => {
    const dir = join(root, 'locked');
    const first = await startEmbeddedDatabase(dir);
    try {
      await expect(startEmbeddedDatabase(dir)).rejects.toThrow(/already open in this process/);
      const second = await startControlPlane({ ...env, LANEKEEPER_DATA_DIR: dir }).catch((e: unknown) => e);
      expect(String(second)).toMatch(/already open in this process/);
    } finally {
      await first.close();
    }
    expect(existsSync(join(dir, 'lanekeeper.lock'))).toBe(false);

    // Held by another process that is alive: refused, naming it.
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await writeFile(join(dir, 'lanekeeper.lock'), `${holder.pid}\n`);
      await expect(startEmbeddedDatabase(dir)).rejects.toThrow(`open in process ${holder.pid}`);
    } finally {
      holder.kill();
      await once(holder, 'exit');
    }
    // Its process gone (killed, crashed): the lock is stale, and taken over.
    const reopened = await startEmbeddedDatabase(dir);
    try {
      expect(readFileSync(join(dir, 'lanekeeper.lock'), 'utf8').trim()).toBe(String(process.pid));
    } finally {
      await reopened.close();
    }
  });

  it('refuses a data directory path that is a file, naming the problem', async () => {
    const error = await startControlPlane({ ...env, LANEKEEPER_DATA_DIR: '/dev/null/data' }).catch(
      (e: unknown) => e,
    );
    expect(String(error)).toMatch(/ENOTDIR|not a directory/i);
  });
});

/**
 * Local TCP ports in LISTEN state owned by this process: /proc/net/tcp{,6} list every socket
 * of the network namespace, so only those whose inode is one of our file descriptors count
 * (another test file, in another worker, listens on ports of its own meanwhile).
 */
function listeningTcpPorts(): Set<number> {
  const ours = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
      if (inode) ours.add(inode);
    } catch {
      // The descriptor closed while we looked.
    }
  }
  const ports = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // st 0A is LISTEN; the port is the hex after the colon of the local address; field 9 the inode.
      if (fields[3] === '0A' && ours.has(fields[9]!)) ports.add(parseInt(fields[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}
