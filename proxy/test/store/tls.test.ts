// rediss:// with a password, against a private TLS-only redis-server with a self-signed
// certificate (trusted by the client through NODE_EXTRA_CA_CERTS).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../helpers/self-signed.js';
import { freePort } from './private-redis.js';

const run = promisify(execFile);
const worker = fileURLToPath(new URL('./tls-worker.ts', import.meta.url));
const PASSWORD = 'tls-test-secret';
let dir = '';
let port = 0;
let server: ChildProcess | undefined;

async function runWorker(url: string, trustCa = true): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', worker], {
    env: {
      ...process.env,
      LK_REDIS_URL: url,
      LK_PREFIX: `lk-test-${randomUUID().slice(0, 8)}:`,
      NODE_EXTRA_CA_CERTS: trustCa ? join(dir, 'cert.pem') : '',
    },
    timeout: 30_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lk-tls-'));
  await selfSignedCertificate(dir);
  port = await freePort();
  server = spawn(
    'redis-server',
    [
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--tls-cert-file',
      join(dir, 'cert.pem'),
      '--tls-key-file',
      join(dir, 'key.pem'),
      '--tls-ca-cert-file',
      join(dir, 'cert.pem'),
      '--tls-auth-clients',
      'no',
      '--requirepass',
      PASSWORD,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
    ],
    { stdio: 'ignore' },
  );
  // Bounded wait until the TLS port accepts connections (at most 100 tries, 50 ms apart).
  for (let i = 0; i < 100; i++) {
    const ok = await run('redis-cli', [
      '--tls',
      '--cacert',
      join(dir, 'cert.pem'),
      '-h',
      'localhost',
      '-p',
      String(port),
      '--no-auth-warning',
      '-a',
      PASSWORD,
      'ping',
    ])
      .then(({ stdout }) => stdout.includes('PONG'))
      .catch(() => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('TLS redis-server did not come up');
}, 60_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = once(server, 'exit');
    server.kill('SIGTERM');
    await exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a Redis store over TLS with a password', () => {
  it('admits, records and reads over rediss:// with the right password', async () => {
    const result = await runWorker(`rediss://:${PASSWORD}@localhost:${port}`);
    expect(result).toEqual({ healthy: true, admitted: true, requests: 1 });
  }, 60_000);

  it('verifies the server certificate: an untrusted one is refused', async () => {
    expect(await runWorker(`rediss://:${PASSWORD}@localhost:${port}`, false)).toEqual({ healthy: false });
  }, 60_000);

  it('is not healthy with a wrong password', async () => {
    expect(await runWorker(`rediss://:wrong@localhost:${port}`)).toEqual({ healthy: false });
  }, 60_000);

  it('is not healthy over plain redis:// against a TLS-only port', async () => {
    expect(await runWorker(`redis://:${PASSWORD}@localhost:${port}`)).toEqual({ healthy: false });
  }, 60_000);
});
