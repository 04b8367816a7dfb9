/**
 * Graceful shutdown of the real `lanekeeper proxy` process: SIGTERM during a stream lets the
 * stream finish and its usage be metered, while new connections are refused.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatStream, startFakeUpstream, type FakeUpstream } from './helpers/fake-upstream.js';
import { baseConfig, KEYS } from './helpers/harness.js';
import { freePort } from './helpers/waiting.js';

const CLI = join(import.meta.dirname, '..', 'bin', 'lanekeeper.js');

let upstream: FakeUpstream;
let child: ChildProcess;
let output = '';
let port = 0;

beforeAll(async () => {
  upstream = await startFakeUpstream({
    kind: 'stream',
    chunks: chatStream(
      'small-model',
      Array.from({ length: 40 }, (_, i) => `w${i} `),
      { prompt_tokens: 9, completion_tokens: 40, total_tokens: 49 },
      true,
    ),
    delayMs: 25,
  });
  port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'lanekeeper-shutdown-'));
  const config = {
    ...baseConfig(upstream.url),
    listen: `127.0.0.1:${port}`,
    admin_listen: `127.0.0.1:${await freePort()}`,
    shutdown_grace_ms: 10_000,
  };
  await writeFile(join(dir, 'config.yaml'), stringify(config));
  child = spawn(process.execPath, [CLI, 'proxy', '--config', join(dir, 'config.yaml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  for (let i = 0; i < 300 && !output.includes('lanekeeper proxy started'); i++)
    await new Promise((r) => setTimeout(r, 20));
  expect(output).toContain('lanekeeper proxy started');
});
afterAll(async () => {
  child.kill('SIGKILL');
  await upstream.close();
});

describe('SIGTERM', () => {
  it('lets the stream in flight finish and be metered, refuses new connections, then exits 0', async () => {
    const res = await request(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'long answer please' }], stream: true }),
    });
    expect(res.statusCode).toBe(200);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 150));
    const refused = await request(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      body: '{}',
    }).then(
      () => 'answered',
      (error: NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException }) =>
        error.code ?? error.cause?.code ?? 'error',
    );
    expect(refused).toBe('ECONNREFUSED');
    const text = await res.body.text();
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(text).toContain('w39 ');
    expect(await exited).toBe(0);
    const lines = output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const line = lines.find((l) => l.msg === 'request');
    // SIGTERM says what it drains, and what it drained.
    expect(lines.find((l) => String(l.msg).startsWith('shutting down'))).toMatchObject({
      level: 'info',
      in_flight: 1,
      grace_ms: 10_000,
    });
    expect(lines.find((l) => l.msg === 'lanekeeper proxy stopped')).toMatchObject({
      drained: 1,
      cut: 0,
      meter_events_unsent: 0,
    });
    expect(line).toMatchObject({
      tenant: 'globex',
      status: 200,
      outcome: 'completed',
      input_tokens: 9,
      output_tokens: 40,
      provenance: 'reported',
    });
  });
});
