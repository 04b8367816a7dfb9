/**
 * The admin CLI (`lanekeeper tenants|keys|plans|usage`) as a user runs it: the real binary
 * against a real control plane on port 0 (PostgreSQL, Redis), output checked in each format,
 * and hostile input: no environment, a wrong token (the API's 401 printed as sent), an
 * unreachable URL, odd tenant ids, a file that is not YAML, an unknown --format.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { UsageEvent } from '@lanekeeper/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookEvents } from '../../control-plane/src/ledger/book-events.js';
import { startControlPlane, type RunningControlPlane } from '../../control-plane/src/main.js';
import { createTestEnv, type TestEnv } from '../../control-plane/test/helpers/test-env.js';
import { usageEvent } from '../../control-plane/test/helpers/usage-event.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', '..', 'proxy', 'bin', 'lanekeeper.js');

let t: TestEnv;
let cp: RunningControlPlane;
let dir: string;

beforeAll(async () => {
  t = await createTestEnv();
  cp = await startControlPlane(t.env);
  dir = await mkdtemp(join(tmpdir(), 'lk-admin-cli-'));
}, 30_000);
afterAll(async () => {
  await cp?.close();
  await t?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function cli(args: string[], env: Record<string, string | undefined> = {}) {
  const base = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    LANEKEEPER_CONTROL_PLANE_URL: cp.url,
    LANEKEEPER_ADMIN_TOKEN: t.adminToken,
  };
  const merged = Object.fromEntries(
    Object.entries({ ...base, ...env }).filter((e): e is [string, string] => e[1] !== undefined),
  );
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: merged });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/**
 * Runs the CLI at a terminal: util-linux `script` gives it a pseudo-terminal (so stdin is a
 * TTY and it prompts), and `answer` is typed once the prompt shows. Output is the terminal's:
 * stdout, stderr and the echoed typing, with CRLF line ends.
 */
function atTerminal(args: string[], answer: string): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      TERM: 'dumb',
      SHELL: '/bin/sh',
      LANEKEEPER_CONTROL_PLANE_URL: cp.url,
      LANEKEEPER_ADMIN_TOKEN: t.adminToken,
    },
  });
  let output = '';
  let typed = false;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    output += chunk;
    if (!typed && output.includes('Type the tenant id to confirm: ')) {
      typed = true;
      child.stdin.write(answer);
    }
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      child.stdin.destroy();
      resolve({ code, output });
    });
  });
}

function event(model: string, ts: string, input: number, output: number): UsageEvent {
  return usageEvent({ tenant: 'acme', ts, model, input, output });
}

describe('lanekeeper admin commands against a control plane', () => {
  it('applies a plan from YAML, then replaces it whole', async () => {
    const file = join(dir, 'plan.yaml');
    await writeFile(file, 'id: free\nmodels: { default: gpt-4o-mini }\nmax_context: 8000\n');
    const created = await cli(['plans', 'apply', '-f', file, '--format', 'json']);
    expect(created.code).toBe(0);
    expect(created.stderr).toContain('created plan "free"');
    expect(JSON.parse(created.stdout)).toMatchObject({
      id: 'free',
      models: { default: 'gpt-4o-mini' },
      max_context: 8000,
    });

    await writeFile(file, 'id: free\nmodels: { default: gpt-4o }\n');
    const updated = await cli(['plans', 'apply', '-f', file, '--format', 'json']);
    expect(updated.code).toBe(0);
    expect(updated.stderr).toContain('updated plan "free"');
    const plan = JSON.parse(updated.stdout);
    expect(plan.models).toEqual({ default: 'gpt-4o' });
    expect(plan).not.toHaveProperty('max_context');

    const listed = await cli(['plans', 'list']);
    expect(listed.stdout.split('\n')[0]).toMatch(/^id\s+models\s+rate_limits/);
    expect(listed.stdout).toContain('{"default":"gpt-4o"}');
  });

  it('onboards, lists, suspends and resumes tenants, in table, CSV and JSON', async () => {
    const created = await cli(['tenants', 'create', 'acme', '--plan', 'free']);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^id\s+acme$/m);
    expect(created.stdout).toMatch(/^status\s+active$/m);
    await cli(['tenants', 'create', 'beta', '--plan', 'free']);

    const table = await cli(['tenants', 'list']);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    // Aligned: every column starts at the same offset on every line.
    expect(lines.map((l) => l.indexOf(l.includes('acme') || l.includes('beta') ? 'free' : 'plan'))).toEqual([
      6, 6, 6,
    ]);

    const csv = await cli(['tenants', 'list', '--format', 'csv']);
    expect(csv.stdout.split('\r\n')[0]).toBe('id,plan,status,overrides,created_at,updated_at');
    expect(csv.stdout).toContain('\r\nacme,free,active,{},');

    const suspended = await cli(['tenants', 'suspend', 'acme', '--format', 'json']);
    expect(JSON.parse(suspended.stdout).status).toBe('suspended');
    const resumed = await cli(['tenants', 'resume', 'acme', '--format', 'json']);
    expect(JSON.parse(resumed.stdout).status).toBe('active');
    const got = await cli(['tenants', 'get', 'acme', '--format', 'json']);
    expect(JSON.parse(got.stdout)).toMatchObject({ id: 'acme', plan: 'free', status: 'active' });
  });

  it('issues, lists and revokes keys; the key is printed once', async () => {
    const created = await cli(['keys', 'create', '--tenant', 'acme', '--format', 'json']);
    expect(created.code).toBe(0);
    const key = JSON.parse(created.stdout);
    expect(key.key).toMatch(/^lk_/);
    const listed = await cli(['keys', 'list', 'acme', '--format', 'json']);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id: key.id, revoked_at: null })]);
    expect(listed.stdout).not.toContain(key.key);
    const revoked = await cli(['keys', 'revoke', '--tenant', 'acme', key.id, '--format', 'json']);
    expect(JSON.parse(revoked.stdout).revoked_at).toEqual(expect.any(String));
  });

  it('reports usage by day and by model, with a total', async () => {
    await bookEvents(
      t.pool,
      [
        event('small', '2026-11-03T10:00:00Z', 100, 50),
        event('small', '2026-11-04T10:00:00Z', 200, 50),
        event('=cmd|calc', '2026-11-30T23:00:00Z', 10, 5),
      ].map((e, i) => ({ id: `${i + 1}-0`, fields: ['event', JSON.stringify(e)] })),
    );
    const byDay = await cli(['usage', '--tenant', 'acme', '--from', '2026-11-01', '--to', '2026-11-30']);
    expect(byDay.code).toBe(0);
    const rows = byDay.stdout.trimEnd().split('\n');
    expect(rows.map((r) => r.split(/\s+/).slice(0, 2))).toEqual([
      ['day', 'requests'],
      ['2026-11-03', '1'],
      ['2026-11-04', '1'],
      ['2026-11-30', '1'], // --to as a day includes that whole day
      ['total', '3'],
    ]);
    const byModel = await cli([
      'usage',
      '--tenant',
      'acme',
      '--from',
      '2026-11-01',
      '--to',
      '2026-11-30',
      '--by',
      'model',
      '--format',
      'csv',
    ]);
    expect(byModel.code).toBe(0);
    const lines = byModel.stdout.split('\r\n');
    expect(lines[0]).toBe(
      'model,requests,input_tokens,output_tokens,cached_input_tokens,cache_write_tokens,reasoning_tokens,cost_usd,unpriced_requests',
    );
    // RFC 4180 quoting, and a cell a spreadsheet would run as a formula neutralised.
    expect(lines.slice(1, 3)).toEqual(["'=cmd|calc,1,10,5,0,0,0,0,1", 'small,2,300,100,0,0,0,0,2']);
    const json = await cli([
      'usage',
      '--tenant',
      'acme',
      '--from',
      '2026-11-01T00:00:00Z',
      '--to',
      '2026-11-05T00:00:00Z',
      '--by',
      'model',
      '--format',
      'json',
    ]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      tenant: 'acme',
      total: { requests: 2, input_tokens: 300 },
    });
  });

  it('erases a tenant', async () => {
    const erased = await cli(['tenants', 'erase', 'beta', '--format', 'json']);
    expect(erased.code).toBe(0);
    expect(JSON.parse(erased.stdout)).toMatchObject({ tenant: 'beta' });
    const gone = await cli(['tenants', 'get', 'beta']);
    expect(gone.code).toBe(1);
    expect(JSON.parse(gone.stderr).error.code).toBe('CP_ERR_NOT_FOUND');
  });
});

describe('the erase prompt at a terminal', () => {
  const exists = async (id: string) => (await cli(['tenants', 'get', id])).code === 0;

  it('aborts with exit 2 and erases nothing unless the tenant id is typed', async () => {
    const plan = join(dir, 'prompt-plan.yaml');
    await writeFile(plan, 'id: prompt\nmodels: { default: m }\n');
    expect((await cli(['plans', 'apply', '-f', plan])).code).toBe(0);
    expect((await cli(['tenants', 'create', 'gamma', '--plan', 'prompt'])).code).toBe(0);
    // Each a keystroke sequence: a near miss, nothing, another case, a longer id, two words,
    // a backspace leaving "gama", a 4,000-character line, Ctrl+C, Ctrl+D.
    for (const answer of [
      'gamm\r',
      '\r',
      'GAMMA\r',
      'gamma2\r',
      'gamma gamma\r',
      'gam\x7fma\r',
      `${'g'.repeat(4000)}\r`,
      '\x03',
      '\x04',
    ]) {
      const r = await atTerminal(['tenants', 'erase', 'gamma', '--format', 'json'], answer);
      expect({ answer, code: r.code }).toEqual({ answer, code: 2 });
      expect(r.output).toContain('not confirmed: nothing was erased');
      expect(r.output).not.toContain('Error');
      expect(r.output).not.toContain('"tenant"');
    }
    // Had any answer erased it, the next prompt's erasure would have answered 404 (exit 1).
    expect(await exists('gamma')).toBe(true);
  }, 120_000);

  it('erases when the tenant id is typed', async () => {
    const r = await atTerminal(['tenants', 'erase', 'gamma', '--format', 'json'], 'gamma\r');
    expect(r.output).toContain('Erase tenant "gamma" and all its data? This cannot be undone.');
    expect(r.code).toBe(0);
    expect(r.output).toContain('"tenant": "gamma"');
    expect(await exists('gamma')).toBe(false);
  });
});

describe('hostile input', () => {
  it('names a missing variable and exits 2', async () => {
    for (const variable of ['LANEKEEPER_CONTROL_PLANE_URL', 'LANEKEEPER_ADMIN_TOKEN']) {
      const r = await cli(['tenants', 'list'], { [variable]: undefined });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${variable} is not set`);
      expect(r.stdout).toBe('');
    }
    const bad = await cli(['tenants', 'list'], { LANEKEEPER_CONTROL_PLANE_URL: 'not a url' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('LANEKEEPER_CONTROL_PLANE_URL is not a URL');
  });

  it("prints the API's 401 as sent for a wrong token, exit 1", async () => {
    const r = await cli(['tenants', 'list'], { LANEKEEPER_ADMIN_TOKEN: 'wrong' });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stderr)).toEqual({
      error: {
        code: 'CP_ERR_UNAUTHORIZED',
        message: "wrong admin token (the control plane's LANEKEEPER_ADMIN_TOKEN)",
      },
    });
  });

  it('says when the control plane cannot be reached, exit 1', async () => {
    const r = await cli(['plans', 'list'], { LANEKEEPER_CONTROL_PLANE_URL: 'http://127.0.0.1:1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot reach the control plane at http://127.0.0.1:1');
  });

  it('sends odd tenant ids as one encoded path segment, refused by the API', async () => {
    for (const id of ['../plans', 'a/b', 'a b', '%2e%2e', '?x=1']) {
      const r = await cli(['tenants', 'get', '--', id]);
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stderr).error.code).toBe('CP_ERR_BAD_REQUEST');
    }
  });

  it('refuses . and .. as ids with exit 2: no URL keeps them, and one revocation became an erasure route', async () => {
    for (const args of [
      ['keys', 'revoke', '--tenant', 'acme', '--', '..'],
      ['tenants', 'suspend', '--', '.'],
      ['usage', '--tenant', '..', '--from', '2026-11-01', '--to', '2026-11-02'],
    ]) {
      const r = await cli(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/"\.{1,2}" is not an id/);
    }
  });

  it('takes -h where a value belongs for a mistake, not for help: exit 2 and nothing done', async () => {
    const r = await cli(['tenants', 'create', 'dash-h-co', '--plan', '-h']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--plan needs a value, not -h');
    expect(r.stdout).toBe('');
    expect((await cli(['tenants', 'get', 'dash-h-co'])).code).toBe(1);
    // Its own flag still asks for help.
    expect((await cli(['tenants', 'create', '--help'])).code).toBe(0);
  });

  it('ends quietly when its reader has gone (| head)', async () => {
    const command = `'${process.execPath}' '${CLI}' tenants list --format csv | true`;
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn('bash', ['-o', 'pipefail', '-c', command], {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '/tmp',
          LANEKEEPER_CONTROL_PLANE_URL: cp.url,
          LANEKEEPER_ADMIN_TOKEN: t.adminToken,
        },
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('close', (code) => resolve({ code, stderr }));
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('refuses unknown subcommands, options and formats, and a file that is not YAML, with exit 2', async () => {
    expect((await cli(['tenants', 'frobnicate'])).code).toBe(2);
    expect((await cli(['tenants', 'list', '--bogus'])).code).toBe(2);
    const format = await cli(['tenants', 'list', '--format', 'xml']);
    expect(format.code).toBe(2);
    expect(format.stderr).toContain('--format must be one of table, csv, json');
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'id: [unclosed\n  models: {');
    const yaml = await cli(['plans', 'apply', '-f', file]);
    expect(yaml.code).toBe(2);
    expect(yaml.stderr).toContain('is not YAML');
    const date = await cli(['usage', '--tenant', 'acme', '--from', '2026-02-30', '--to', '2026-03-01']);
    expect(date.code).toBe(2);
    // By day the API counts whole days: a range of hours would report usage outside it.
    const hours = ['--tenant', 'acme', '--from', '2026-11-03T12:00:00Z', '--to', '2026-11-03T13:00:00Z'];
    const byDay = await cli(['usage', ...hours]);
    expect(byDay.code).toBe(2);
    expect(byDay.stderr).toContain('--by day counts whole UTC days');
    expect((await cli(['usage', ...hours, '--by', 'model'])).code).toBe(0);
  });

  it('answers --help for every command without any environment', async () => {
    for (const args of [
      ['tenants', '--help'],
      ['tenants', 'erase', '--help'],
      ['keys', 'revoke', '-h'],
      ['plans', 'apply', '--help'],
      ['usage', '--help'],
    ]) {
      const r = await cli(args, {
        LANEKEEPER_CONTROL_PLANE_URL: undefined,
        LANEKEEPER_ADMIN_TOKEN: undefined,
      });
      expect(r.code).toBe(0);
      expect(r.stdout.startsWith(`usage: lanekeeper ${args[0]}`)).toBe(true);
    }
  });
});
