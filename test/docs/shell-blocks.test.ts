/**
 * The shell blocks of README.md and docs/ as a newcomer runs them.
 * - The README's "Try it" block runs word for word against `npm run demo:file` (node
 *   examples/demo/start-file.mjs, on its fixed ports 8080, 8090 and 9464): every refusal it
 *   promises comes back, as does the 429 on the tenth further request.
 * - The control plane walkthrough (docs/control-plane.md: start, onboard, read usage; the
 *   README's start block is the same text) runs in one shell against the local PostgreSQL
 *   and Redis, on the fixed port 8081. Only the database name is changed, to a fresh one,
 *   and the key prefix is set in the environment, so the run shares nothing with others.
 * Every other block is listed with the reason it is not run here, so a new block cannot go
 * unnoticed: it must be run or explained.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const BASE_DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The ```sh blocks of a markdown file, with the line each starts on. */
function shellBlocks(file: string): { line: number; text: string }[] {
  const blocks: { line: number; text: string }[] = [];
  let current: { line: number; lines: string[] } | undefined;
  readFileSync(join(ROOT, file), 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!current && /^```(sh|bash|shell)\s*$/.test(line)) current = { line: i + 1, lines: [] };
      else if (current && line.startsWith('```')) {
        blocks.push({ line: current.line, text: current.lines.join('\n') });
        current = undefined;
      } else current?.lines.push(line);
    });
  return blocks;
}

/** Blocks not run by this test, by their first line, and why. */
const NOT_RUN: Record<string, string> = {
  'npm ci && npm run demo': 'run by examples/demo/demo-whole.test.ts (start.mjs on free ports)',
  'npm test': 'the command that runs this test',
  'cp examples/lanekeeper.yaml my-lanekeeper.yaml': 'needs a real provider key',
  'npm run bench                  # about 16 minutes; the table on stdout, JSON in bench/results/ (installs wrk if missing)':
    'takes minutes; bench/ has its own tests',
  'npm run bench                      # about 16 minutes; table on stdout, JSON in bench/results/':
    'takes minutes',
  'node --min-semi-space-size=16 --import tsx bench/tenants-cost.ts json memory 20000 3':
    'a measurement: minutes of CPU on a machine others share',
  'npm ci': 'reinstalls the dependencies this test runs on',
  'npm ci          # install from the lockfile': 'reinstalls the dependencies this test runs on',
  'docker build --target proxy         -t lanekeeper/proxy:0.1.0 .': 'no Docker engine here',
  'docker compose up --build -d': 'no Docker engine here',
  'CP=http://127.0.0.1:8081': 'the docker-compose walkthrough: no Docker engine here',
  'curl -s http://127.0.0.1:9464/v1/usage/acme -H "authorization: Bearer dev-proxy-admin-token-change-me"   # the proxy\'s current hour (LANEKEEPER_PROXY_ADMIN_TOKEN)':
    'the docker-compose walkthrough: no Docker engine here',
  'curl -s -X PATCH $CP/v1/tenants/acme -H "$ADMIN" -H "$JSON" -d \'{"status":"suspended"}\'':
    'the docker-compose walkthrough: no Docker engine here',
  'helm install lanekeeper charts/lanekeeper -n lanekeeper --create-namespace \\': 'no Helm or cluster here',
  'helm install support charts/lanekeeper -n support \\': 'no Helm or cluster here',
  'helm install prometheus-adapter prometheus-community/prometheus-adapter -n monitoring \\':
    'no Helm or cluster here',
  'npm run demo:file                   # terminal 1: proxy + demo upstream (see the root README)':
    'starts the demo this test starts itself',
  'npx vitest run examples/retrofit': 'a test command',
  'npm run test:security   # proxy/test/security/ and test/e2e/security-erasure.test.ts':
    'a test command (its tests run in npm test)',
  'export LANEKEEPER_CONTROL_PLANE_URL=http://127.0.0.1:8081':
    'the admin CLI: each command is run against a control plane by test/e2e/admin-cli.test.ts',
};

const TRY_IT =
  "# A chat completion as tenant acme (free plan): the proxy picks the plan's model and adds its system prompt.";
const RETROFIT =
  'LLM_BASE_URL=http://127.0.0.1:8080/v1 npx tsx examples/retrofit/start.ts &   # the bot, on :3000';
const CP_START =
  'export DATABASE_URL=postgres://postgres@127.0.0.1:5432/lanekeeper REDIS_URL=redis://127.0.0.1:6379';
const CP_ONBOARD = 'CP=http://127.0.0.1:8081; AUTH="Authorization: Bearer $LANEKEEPER_ADMIN_TOKEN"';
const CP_USAGE = '# From the ledger (billing-grade), by hour or by UTC day; from/to are ISO-8601.';
const RUN = new Set([TRY_IT, RETROFIT, CP_START, CP_ONBOARD, CP_USAGE]);

/** The one block of `file` that starts with `first`. */
function block(file: string, first: string): string {
  const found = shellBlocks(file).filter((b) => b.text.startsWith(`${first}\n`));
  expect(found, `${file}: one block starting ${first}`).toHaveLength(1);
  return found[0]!.text;
}

describe('shell blocks in README.md and docs/', () => {
  it('are each run here or listed with the reason they are not', () => {
    const files = [
      'README.md',
      ...readdirSync(join(ROOT, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
      'examples/retrofit/README.md',
    ];
    const unaccounted = files.flatMap((file) =>
      shellBlocks(file)
        .map((b) => ({ where: `${file}:${b.line}`, first: b.text.split('\n')[0]! }))
        .filter((b) => !RUN.has(b.first) && !Object.hasOwn(NOT_RUN, b.first)),
    );
    expect(unaccounted).toEqual([]);
  });
});

describe('the README "Try it" block against npm run demo:file', () => {
  let demo: ChildProcess;

  beforeAll(async () => {
    demo = spawn(process.execPath, [join(ROOT, 'examples', 'demo', 'start-file.mjs')], {
      stdio: 'ignore',
      detached: true,
    });
    for (let i = 0; i < 200; i++) {
      const up = await fetch('http://127.0.0.1:9464/readyz').then(
        (r) => r.ok,
        () => false,
      );
      if (up) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the demo did not start (is something else on ports 8080, 8090 or 9464?)');
  }, 30_000);

  afterAll(() => {
    if (demo.pid) process.kill(-demo.pid, 'SIGTERM');
  });

  it('runs word for word and answers what the README says', async () => {
    const tryIt = block('README.md', TRY_IT);
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', tryIt], { cwd: ROOT });
    expect(stdout).toContain('"object":"chat.completion"');
    // Multi-provider routing: the free plan's model through the Gemini-dialect upstream, the
    // pro plan's "coding" alias through the Anthropic-dialect one, both answered as OpenAI.
    expect(stdout).toContain('speaking Gemini as gemini-3.5-flash');
    expect(stdout).toMatch(/"object":"chat\.completion\.chunk"[^\n]*speaking as claude-sonnet-4-5/);
    expect(stdout).toContain('data: [DONE]');
    expect(stdout).toContain('"code":"invalid_api_key"');
    expect(stdout).toContain('"code":"model_not_allowed"');
    expect(stdout).toContain('"code":"tenant_inactive"');
    expect(stdout).toMatch(/\{"tenant":"acme","hour":"[^"]+","requests":1,/);
    expect(stdout).toContain('lanekeeper_requests_total{');

    // "run it ten more times within the minute and the last answer is a 429"
    const first = tryIt.split('\n').slice(1, 3).join('\n');
    const codes: string[] = [];
    for (let i = 0; i < 10; i++) {
      const { stdout: out } = await run(
        'bash',
        ['-c', `${first.replace('curl -s ', "curl -s -o /dev/null -w '%{http_code}' ")}`],
        { cwd: ROOT },
      );
      codes.push(out);
    }
    expect(codes.slice(0, 9).every((c) => c === '200')).toBe(true);
    expect(codes[9]).toBe('429');
  }, 30_000);

  it('runs the retrofit bot and answers a customer through the demo proxy (examples/retrofit/README.md)', async () => {
    const bot = spawn('bash', ['-euo', 'pipefail', '-c', block('examples/retrofit/README.md', RETROFIT)], {
      cwd: ROOT,
      detached: true,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
    });
    let stdout = '';
    bot.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    try {
      expect(await new Promise((resolve) => bot.on('exit', resolve))).toBe(0);
      expect(stdout).toContain('support bot on http://127.0.0.1:3000, LLM via http://127.0.0.1:8080/v1');
      const answer = JSON.parse(stdout.slice(stdout.indexOf('{"'))) as { answer?: unknown; model?: unknown };
      expect(typeof answer.answer === 'string' && answer.answer.length > 0).toBe(true);
      expect(typeof answer.model === 'string' && answer.model.length > 0).toBe(true);
      expect(stdout).not.toContain('"error"');
    } finally {
      if (bot.pid) process.kill(-bot.pid, 'SIGTERM');
    }
  }, 30_000);
});

describe('the control plane walkthrough (docs/control-plane.md)', () => {
  const database = `lk_docs_${randomBytes(4).toString('hex')}`;
  let shell: ChildProcess | undefined;

  afterAll(async () => {
    // The walkthrough leaves its control plane running in the background, as a reader's would.
    if (shell?.pid) {
      try {
        process.kill(-shell.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 500));
    await run('dropdb', ['--if-exists', '--force', database], {
      env: { ...process.env, PGHOST: '127.0.0.1', PGUSER: 'postgres' },
    }).catch(() => {});
  });

  it("is the README's start block too", () => {
    expect(block('README.md', CP_START)).toBe(block('docs/control-plane.md', CP_START));
  });

  it('starts, onboards a tenant, moves, suspends and revokes, and reads usage, in one shell', async () => {
    const start = block('docs/control-plane.md', CP_START).replaceAll(
      /(5432\/|createdb )lanekeeper\b/g,
      `$1${database}`,
    );
    expect(start).toContain(`createdb ${database}`);
    const script = [
      start,
      block('docs/control-plane.md', CP_ONBOARD),
      block('docs/control-plane.md', CP_USAGE),
    ].join('\n');
    const url = new URL(BASE_DATABASE_URL);
    shell = spawn('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: ROOT,
      detached: true,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        PGHOST: url.hostname,
        PGPORT: url.port || '5432',
        PGUSER: url.username || 'postgres',
        LANEKEEPER_KEY_PREFIX: `lkdocs${randomBytes(4).toString('hex')}:`,
        LANEKEEPER_LEDGER_GROUP: `docs-${database}`,
      },
    });
    let stdout = '';
    let stderr = '';
    shell.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    shell.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    // The shell exits after its last command; the control plane it started stays in the
    // background (in the shell's process group, which afterAll stops).
    const code = await new Promise<number | null>((resolve) => shell!.on('exit', resolve));
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('"id":"free"');
    expect(stdout).toContain('"id":"pro"');
    expect(stdout).toMatch(/"key":"lk_[A-Za-z0-9_-]{20,}"/);
    expect(stdout).toContain('"plan":"pro"');
    expect(stdout).toContain('"status":"suspended"');
    expect(stdout).toMatch(/"revoked_at":"20\d\d-/);
    expect(stdout).toContain('"granularity":"day"');
    expect(stdout).toMatch(/\{"tenant":"acme","hour":"[^"]+"/);
    expect(stdout).not.toMatch(/"error"|"statusCode":[45]\d\d/);
  }, 60_000);
});
