/**
 * The YAML config file as an operator edits it: a valid edit applies without a restart and
 * without dropping a stream in flight; an invalid edit keeps the old config and says why.
 * Also the CLI commands that read config files.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { request } from 'undici';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxy, type RunningProxy } from '../src/main.js';
import { chatStream, startFakeUpstream, type FakeUpstream } from './helpers/fake-upstream.js';
import { baseConfig, KEYS } from './helpers/harness.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'bin', 'lanekeeper.js');
const USAGE = { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 };

let dir: string;
let upstream: FakeUpstream;
let proxy: RunningProxy;
const logs: Record<string, unknown>[] = [];

async function writeConfig(config: unknown): Promise<void> {
  // Write then rename, as editors and ConfigMap updates do.
  const path = join(dir, 'lanekeeper.yaml');
  await writeFile(`${path}.tmp`, typeof config === 'string' ? config : stringify(config));
  await rename(`${path}.tmp`, path);
}

async function waitFor(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const chat = () =>
  request(`${proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], stream: true }),
  });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lanekeeper-config-'));
  upstream = await startFakeUpstream((req) => ({
    kind: 'stream',
    chunks: chatStream(
      (req.body as { model: string }).model,
      Array.from({ length: 30 }, () => 'x'),
      USAGE,
      true,
    ),
    delayMs: 10,
  }));
  await writeConfig(baseConfig(upstream.url));
  const sink = new Writable({
    write(chunk: Buffer, _e, done) {
      for (const line of chunk.toString().split('\n'))
        if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  proxy = await startProxy({ configPath: join(dir, 'lanekeeper.yaml'), logger: pino(sink) });
});
afterAll(async () => {
  await proxy.close(1000);
  await upstream.close();
});

describe('editing the config file', () => {
  it('applies a valid edit to new requests without dropping the stream in flight', async () => {
    const inFlight = await chat();
    const base = baseConfig(upstream.url) as { plans: Record<string, { models: Record<string, string> }> };
    base.plans.pro!.models = { default: 'big-model' };
    await writeConfig(base);
    await waitFor(() => proxy.config().plans.pro?.models.default === 'big-model', 'the reload');
    const text = await inFlight.body.text();
    expect(inFlight.statusCode).toBe(200);
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(text.split('data: ').length - 1).toBeGreaterThan(30);
    const next = await chat();
    await next.body.text();
    expect((upstream.received.at(-1)!.body as { model: string }).model).toBe('big-model');
  });

  it('applies an edit written the moment the proxy has started', async () => {
    // The watcher used to read the file again as it started, racing this very write: when the
    // write won, the edit was taken for the loaded text and never applied.
    const own = await mkdtemp(join(tmpdir(), 'lanekeeper-config-race-'));
    const path = join(own, 'lanekeeper.yaml');
    const base = baseConfig(upstream.url) as { plans: Record<string, { models: Record<string, string> }> };
    await writeFile(path, stringify(base));
    const second = await startProxy({ configPath: path, logger: pino({ level: 'silent' }) });
    try {
      base.plans.pro!.models = { default: 'edited-at-start' };
      await writeFile(path, stringify(base));
      await waitFor(() => second.config().plans.pro?.models.default === 'edited-at-start', 'the reload');
    } finally {
      await second.close(0);
    }
  });

  it('keeps the previous config when an edit is invalid, and logs every problem', async () => {
    const before = proxy.config();
    await writeConfig(
      'listen: "127.0.0.1:0"\nupstream: { url: "not a url" }\nplans: { free: { models: {} } }\n',
    );
    await waitFor(() => logs.some((l) => String(l.msg).includes('config edit rejected')), 'the rejection');
    expect(proxy.config()).toBe(before);
    const line = logs.find((l) => String(l.msg).includes('config edit rejected'))!;
    expect(String(line.err)).toContain('upstream.url');
    expect(String(line.err)).toContain('plans.free.models');
    const r = await chat();
    await r.body.text();
    expect(r.statusCode).toBe(200);
  });
});

describe('the lanekeeper CLI', () => {
  it('hash-key prints the sha256 hex of a key', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'hash-key', 'lk_demo_free_key']);
    expect(stdout.trim()).toBe('0c841f7fd3efaad9b089ac8a1c346e9893542ef336fc17cfe301be2bc301ff74');
  });

  it('check-config accepts the example config', async () => {
    const { stdout } = await run(process.execPath, [
      CLI,
      'check-config',
      join(import.meta.dirname, '..', '..', 'examples', 'lanekeeper.yaml'),
    ]);
    expect(stdout).toContain('OK (4 tenants, 3 plans)');
  });

  it('check-config names every problem by its YAML path and exits non-zero', async () => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(
      bad,
      stringify({
        upstream: { url: 'ftp://nope' },
        plans: { free: { models: { default: 'm' }, rate_limits: { requests_per_minute: -1 } } },
        tenants: [{ id: 'Bad_Id', plan: 'gold', api_key_sha256: ['xyz'] }],
      }),
    );
    const error = (await run(process.execPath, [CLI, 'check-config', bad]).catch((e: unknown) => e)) as {
      code: number;
      stderr: string;
    };
    expect(error.code).toBe(1);
    for (const path of [
      'upstream.url',
      'plans.free.rate_limits.requests_per_minute',
      'tenants.0.id',
      'tenants.0.api_key_sha256.0',
    ]) {
      expect(error.stderr).toContain(path);
    }
  });

  it.each([
    ['a misspelt store', { store: 'memroy' }, 'store: must be "memory" or an object'],
    ['a number for the store', { store: 5 }, 'store: must be "memory" or an object'],
    [
      'a Redis URL that is no string',
      { store: { redis: 6379 } },
      'store.redis: Invalid input: expected string',
    ],
  ])('check-config says what is wrong with %s, not "Invalid input"', async (_name, extra, line) => {
    const bad = join(dir, 'union.yaml');
    await writeFile(bad, stringify({ upstream: { url: 'http://127.0.0.1:9' }, ...extra }));
    const error = (await run(process.execPath, [CLI, 'check-config', bad]).catch((e: unknown) => e)) as {
      code: number;
      stderr: string;
    };
    expect(error.code).toBe(1);
    expect(error.stderr).toContain(line);
  });

  it('check-config reports a YAML syntax error with its line', async () => {
    const bad = join(dir, 'syntax.yaml');
    await writeFile(bad, 'upstream:\n  url: "http://x\n  other: [\n');
    const error = (await run(process.execPath, [CLI, 'check-config', bad]).catch((e: unknown) => e)) as {
      code: number;
      stderr: string;
    };
    expect(error.code).toBe(1);
    expect(error.stderr).toMatch(/line \d+/);
    expect(await readFile(bad, 'utf8')).toContain('upstream');
  });
});
