/**
 * `npm run build` from a clean copy of the repository gives a working CLI: the compiled
 * code finds the files it loads relative to itself (the Redis store's Lua scripts, the
 * control plane's migrations), so the proxy starts and serves, check-config and --help
 * answer, and migrate applies the migrations. Before the asset copy was part of the build,
 * every command crashed with ENOENT on a built tree.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { request } from 'undici';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../src/identity/credentials.js';
import { startFakeUpstream, chatCompletion, type FakeUpstream } from './helpers/fake-upstream.js';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');
const BASE_DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

let copy: string;
let upstream: FakeUpstream;
let child: ChildProcess | undefined;

/** The tracked files only, as a clean clone has them (no dist/, no local leftovers). */
async function cleanCopy(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'lanekeeper-build-'));
  const { stdout } = await run('git', ['ls-files', '-z'], { cwd: REPO, maxBuffer: 64 * 1024 * 1024 });
  for (const file of stdout.split('\0').filter(Boolean)) {
    if (!existsSync(join(REPO, file))) continue;
    cpSync(join(REPO, file), join(dir, file), { recursive: true });
  }
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

const cli = (...args: string[]) =>
  run(process.execPath, [join(copy, 'proxy', 'bin', 'lanekeeper.js'), ...args], {
    cwd: copy,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
  });

beforeAll(async () => {
  copy = await cleanCopy();
  await run('npm', ['run', 'build'], { cwd: copy });
  upstream = await startFakeUpstream(() => ({
    kind: 'json',
    body: chatCompletion('small-model', 'built', { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 }),
  }));
}, 240_000);

afterAll(async () => {
  child?.kill('SIGTERM');
  await upstream?.close();
  if (copy) rmSync(copy, { recursive: true, force: true });
});

describe('the built CLI', () => {
  it('is the compiled code, with the Lua scripts and migrations beside it', () => {
    expect(existsSync(join(copy, 'dist', 'proxy', 'src', 'cli.js'))).toBe(true);
    expect(existsSync(join(copy, 'dist', 'proxy', 'src', 'store', 'lua', 'reservations.lua'))).toBe(true);
    expect(existsSync(join(copy, 'dist', 'control-plane', 'migrations', '0001_initial.sql'))).toBe(true);
    expect(existsSync(join(copy, 'dist', 'proxy', 'src', 'cli.test.js'))).toBe(false);
  });

  it('answers --help and --version, and checks the example config', async () => {
    expect((await cli('--help')).stdout).toContain('usage: lanekeeper <command>');
    expect((await cli('--version')).stdout).toMatch(/^lanekeeper \d+\.\d+\.\d+\n$/);
    expect((await cli('check-config', 'examples/lanekeeper.yaml')).stdout).toContain('OK');
  });

  it('starts the proxy and serves a tenant, traced (the OpenTelemetry entry point resolves in a build)', async () => {
    const key = `lk_${randomBytes(8).toString('hex')}`;
    const config = join(copy, 'built.yaml');
    writeFileSync(
      config,
      stringify({
        listen: '127.0.0.1:0',
        admin_listen: '127.0.0.1:0',
        upstream: { url: upstream.url },
        plans: { p: { models: { default: 'small-model' }, rate_limits: { requests_per_minute: 10 } } },
        tenants: [{ id: 'built', plan: 'p', api_key_sha256: [sha256Hex(key)] }],
        // Nothing listens there: exports fail quietly, but the tracer must load and run.
        telemetry: { otlp_endpoint: 'http://127.0.0.1:9', sample_ratio: 1 },
      }),
    );
    child = spawn(
      process.execPath,
      [join(copy, 'proxy', 'bin', 'lanekeeper.js'), 'proxy', '--config', config],
      {
        cwd: dirname(config),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    let url: string | undefined;
    for (let i = 0; i < 300 && !url; i++) {
      url = /"listen":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1];
      if (!url) await new Promise((r) => setTimeout(r, 50));
    }
    expect(output).not.toContain('ENOENT');
    expect(url, output).toBeDefined();
    const res = await request(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.statusCode).toBe(200);
    expect(((await res.body.json()) as { model: string }).model).toBe('small-model');
    expect(output).not.toContain('ERR_PACKAGE_PATH_NOT_EXPORTED');
    // A sampled traceparent the proxy made itself: the request span exists.
    expect(String(upstream.received.at(-1)?.headers.traceparent)).toMatch(
      /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/,
    );
  });

  it('applies the migrations with migrate', async () => {
    const database = `lk_build_test_${randomBytes(5).toString('hex')}`;
    const admin = new pg.Client({ connectionString: BASE_DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    try {
      const url = new URL(BASE_DATABASE_URL);
      url.pathname = `/${database}`;
      await run(process.execPath, [join(copy, 'proxy', 'bin', 'lanekeeper.js'), 'migrate'], {
        cwd: copy,
        env: { PATH: process.env.PATH ?? '', DATABASE_URL: url.toString() },
      });
      const db = new pg.Client({ connectionString: url.toString() });
      await db.connect();
      const { rows } = await db.query<{ name: string }>('SELECT name FROM schema_migrations');
      await db.end();
      expect(rows.map((r) => r.name)).toContain('0001_initial');
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.end();
    }
  });
});
