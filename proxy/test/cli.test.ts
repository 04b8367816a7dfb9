/**
 * The `lanekeeper` command as a newcomer first meets it: every command answers --help with
 * its own usage and exit 0 on a machine with nothing configured, --version prints the
 * package's version, and a missing environment is reported without a stack trace.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../src/identity/credentials.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'bin', 'lanekeeper.js');
const VERSION = (
  JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as {
    version: string;
  }
).version;

/** The environment of a machine where nothing is configured (no DATABASE_URL, no config). */
const BARE_ENV = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: BARE_ENV });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('lanekeeper --help and --version', () => {
  it.each([
    ['proxy', 'usage: lanekeeper proxy --config FILE'],
    ['check-config', 'usage: lanekeeper check-config FILE'],
    ['hash-key', 'usage: lanekeeper hash-key KEY'],
    ['control-plane', 'usage: lanekeeper control-plane'],
    ['migrate', 'usage: lanekeeper migrate'],
  ])('answers "%s --help" with its own usage and exit 0, without its environment', async (command, usage) => {
    for (const flag of ['--help', '-h']) {
      const r = await cli(command, flag);
      expect(r.code).toBe(0);
      expect(r.stdout.startsWith(usage)).toBe(true);
      expect(r.stderr).toBe('');
    }
  });

  it('lists every command in the top-level help', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    for (const command of ['proxy', 'check-config', 'hash-key', 'control-plane', 'migrate', '--version'])
      expect(r.stdout).toContain(command);
  });

  it('prints the package version', async () => {
    for (const flag of ['--version', '-V']) {
      const r = await cli(flag);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`lanekeeper ${VERSION}\n`);
    }
  });

  it('hashes a key only when one is given, and takes keys that start with "-" after --', async () => {
    expect((await cli('hash-key', 'lk_abc')).stdout).toBe(`${sha256Hex('lk_abc')}\n`);
    expect((await cli('hash-key', '--', '--help')).stdout).toBe(`${sha256Hex('--help')}\n`);
    const missing = await cli('hash-key');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('needs a KEY');
  });

  it('reads the key from stdin with "-", keeping it out of argv', () => {
    const piped = (input: string) =>
      spawnSync(process.execPath, [CLI, 'hash-key', '-'], { input, env: BARE_ENV, encoding: 'utf8' });
    for (const input of ['lk_secret', 'lk_secret\n', 'lk_secret\r\nignored']) {
      const r = piped(input);
      expect([r.status, r.stdout], JSON.stringify(input)).toEqual([0, `${sha256Hex('lk_secret')}\n`]);
    }
    const empty = piped('');
    expect(empty.status).toBe(2);
    expect(empty.stderr).toContain('needs a KEY');
    // After "--", a lone "-" is the key itself.
    expect(
      spawnSync(process.execPath, [CLI, 'hash-key', '--', '-'], { env: BARE_ENV, encoding: 'utf8' }).stdout,
    ).toBe(`${sha256Hex('-')}\n`);
  });

  it('reports a missing control-plane environment by variable, without a stack trace', async () => {
    const r = await cli('control-plane');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('LANEKEEPER_ADMIN_TOKEN: is required');
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toMatchObject({
      level: 'fatal',
      service: 'lanekeeper-control-plane',
      err: expect.stringContaining('LANEKEEPER_ADMIN_TOKEN'),
    });
    expect(r.stderr).not.toContain('DATABASE_URL');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('says which process has the data directory open, without a stack trace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lk-cli-lock-'));
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      writeFileSync(join(dir, 'lanekeeper.lock'), `${holder.pid}\n`);
      const env = {
        ...BARE_ENV,
        LANEKEEPER_ADMIN_TOKEN: 'a'.repeat(32),
        LANEKEEPER_PROXY_TOKEN: 'p'.repeat(32),
        LANEKEEPER_DATA_DIR: dir,
        PORT: '0',
      };
      const r = spawnSync(process.execPath, [CLI, 'control-plane'], {
        env,
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`is open in process ${holder.pid}`);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    } finally {
      holder.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says which port is taken and what to do, without a stack trace, when the proxy cannot listen', async () => {
    const holder = createServer().listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const { port } = holder.address() as AddressInfo;
    const dir = mkdtempSync(join(tmpdir(), 'lk-cli-port-'));
    try {
      const config = join(dir, 'taken.yaml');
      writeFileSync(
        config,
        `listen: "127.0.0.1:${port}"\nadmin_listen: "127.0.0.1:0"\nupstream: { url: "http://127.0.0.1:9" }\n`,
      );
      const r = await cli('proxy', '--config', config);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot listen on 127.0.0.1:${port}: another process is using it`);
      expect(r.stderr).toContain('listen / admin_listen in the config');
      expect(r.stderr).not.toMatch(/\n\s+at /);
      // And once in the log's own shape, for a pipeline that reads only JSON from stdout.
      const lines = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.at(-1)).toMatchObject({
        level: 'fatal',
        service: 'lanekeeper-proxy',
        msg: 'could not start',
        err: expect.stringContaining(`cannot listen on 127.0.0.1:${port}`),
      });
      expect(lines.at(-1)?.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    } finally {
      holder.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says a database does not exist, and what to do, in one line', async () => {
    const base = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
    base.pathname = `/lk_no_such_db_${process.pid}`;
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [CLI, 'migrate'],
        { env: { ...BARE_ENV, DATABASE_URL: base.href } },
        (error, _o, stderr) => resolve({ code: (error as { code?: number } | null)?.code ?? 0, stderr }),
      );
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `lanekeeper: database "lk_no_such_db_${process.pid}" does not exist (3D000). Create the database first (createdb NAME), or point DATABASE_URL at one that exists.\n`,
    );
  });

  it('refuses an unknown command with the usage and exit 2', async () => {
    const r = await cli('bogus');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "bogus"');
    expect(r.stderr).toContain('usage: lanekeeper <command>');
  });
});
