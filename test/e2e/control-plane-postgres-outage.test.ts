/**
 * PostgreSQL out of reach under a running control plane, as the operator reads its log and
 * as the proxies polling it see it: a 503 they retry, one `postgres unavailable` warning
 * and one line when it is back, never an error line per call. Before, every proxy poll wrote
 * `request failed` (63 lines in two minutes with two proxies).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../../control-plane/test/helpers/test-env.js';
import { until } from '../../proxy/test/helpers/waiting.js';

const ROOT = join(import.meta.dirname, '..', '..');

/** A TCP gate in front of the database: `cut` drops every connection and refuses new ones. */
async function gateTo(
  target: URL,
): Promise<{ port: number; cut(): void; open(): void; close(): Promise<void> }> {
  let isCut = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (isCut) return client.destroy();
    const upstream = createConnection(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    cut() {
      isCut = true;
      for (const s of sockets) s.destroy();
    },
    open() {
      isCut = false;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('a control plane whose PostgreSQL goes away', () => {
  let env: TestEnv;
  let gate: Awaited<ReturnType<typeof gateTo>>;
  let cp: ChildProcess | undefined;
  const lines: { level: string; msg: string; [key: string]: unknown }[] = [];
  const raw: string[] = [];
  let url = '';

  beforeAll(async () => {
    env = await createTestEnv({ extra: { LANEKEEPER_LOG_LEVEL: 'info', REDIS_URL: '' } });
    const database = new URL(env.databaseUrl);
    gate = await gateTo(database);
    const gated = new URL(env.databaseUrl);
    gated.hostname = '127.0.0.1';
    gated.port = String(gate.port);
    cp = spawn(process.execPath, [join(ROOT, 'proxy', 'bin', 'lanekeeper.js'), 'control-plane'], {
      env: { ...process.env, ...env.env, DATABASE_URL: gated.toString() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [cp.stdout, cp.stderr]) {
      stream?.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) {
          if (!line) continue;
          raw.push(line);
          try {
            lines.push(JSON.parse(line));
          } catch {
            lines.push({ level: 'unparsed', msg: line });
          }
        }
      });
    }
    const listening = await until('the control plane to listen', async () =>
      lines.find((l) => l.msg === 'control plane listening'),
    );
    url = `http://127.0.0.1:${String(listening.port)}`;
  }, 60_000);

  afterAll(async () => {
    if (cp && cp.exitCode === null) cp.kill('SIGKILL');
    await gate?.close();
    await env?.dispose();
  });

  const poll = () => fetch(`${url}/v1/config`, { headers: { authorization: `Bearer ${env.proxyToken}` } });

  it('answers the polls 503 and logs one outage, not a line per poll', async () => {
    expect((await poll()).status).toBe(200);
    const mark = lines.length;
    gate.cut();
    for (let i = 0; i < 12; i++) {
      const response = await poll();
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('5');
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
        'CP_ERR_STORE_UNAVAILABLE',
      );
    }
    gate.open();
    await until('a poll answered again', async () => (await poll()).status === 200);
    const outage = await until('the recovery line', async () =>
      lines.slice(mark).find((l) => l.msg === 'postgres available again'),
    );
    expect(outage).toMatchObject({ level: 'info', dependency: 'postgres' });
    const during = lines.slice(mark);
    expect(during.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => l.msg)).toEqual([
      'postgres unavailable',
    ]);
    expect(raw.join('\n')).not.toMatch(/"stack"|\\n\s+at /);
  }, 30_000);
});
