/**
 * The demo survives what a newcomer throws at it: the demo upstream answers malformed
 * requests with the provider's own 400 and keeps serving, and the supervisor behind
 * `npm run demo` restarts a part that crashes instead of taking the whole demo down, while
 * a part that fails at start stops it (restarting would only fail again).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain .mjs demo script, without type declarations
import { supervise } from './supervise.mjs';

const UPSTREAM = join(import.meta.dirname, 'upstream.mjs');

let child: ChildProcess;
let url: string;

beforeAll(async () => {
  child = spawn(process.execPath, [UPSTREAM], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const found = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      if (found) resolve(found);
    });
    child.on('exit', (code) => reject(new Error(`demo upstream exited with ${code}`)));
  });
});
afterAll(() => {
  child.kill('SIGTERM');
});

async function post(path: string, body: string) {
  const res = await request(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

describe('the demo upstream', () => {
  it.each([
    ['messages as a string', { model: 'm', messages: 'hi' }, 'messages'],
    ['a null message', { model: 'm', messages: [null] }, 'messages[0]'],
    ['a message without content', { model: 'm', messages: [{ role: 'user' }] }, 'messages[0].content'],
    ['content as a number', { model: 'm', messages: [{ role: 'user', content: 5 }] }, 'messages[0].content'],
    ['no model', { messages: [{ role: 'user', content: 'hi' }] }, 'model'],
    ['a JSON array body', [1, 2], 'JSON object'],
  ])("answers %s with OpenAI's 400 and keeps serving", async (_name, body, names) => {
    const r = await post('/v1/chat/completions', JSON.stringify(body));
    expect(r.status).toBe(400);
    const error = r.json.error as { type: string; message: string };
    expect(error.type).toBe('invalid_request_error');
    expect(error.message).toContain(names);
    const ok = await post(
      '/v1/chat/completions',
      JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
    );
    expect(ok.status).toBe(200);
  });

  it("answers a malformed Anthropic request with Anthropic's 400", async () => {
    const r = await post('/v1/messages', JSON.stringify({ model: 'm', max_tokens: 5, messages: 'hi' }));
    expect(r.status).toBe(400);
    expect(r.json.type).toBe('error');
    expect((r.json.error as { type: string }).type).toBe('invalid_request_error');
    expect(child.exitCode).toBeNull();
  });
});

describe('the demo supervisor', () => {
  const part = (name: string, script: string) => ({ name, args: ['-e', script] });

  it('restarts a part that crashes after it started, a bounded number of times', async () => {
    const runs = join(mkdtempSync(join(tmpdir(), 'lanekeeper-demo-')), 'runs');
    const script = `require('node:fs').appendFileSync(${JSON.stringify(runs)}, 'run\\n'); setTimeout(() => process.exit(3), 150)`;
    const { done } = supervise([part('crasher', script)], {
      startedAfterMs: 50,
      maxRestarts: 2,
      handleSignals: false,
    });
    // Three runs (the first and two restarts), then the demo stops with the part's code.
    expect(await done).toBe(3);
    expect(readFileSync(runs, 'utf8')).toBe('run\nrun\nrun\n');
  });

  it('stops every part when one fails at start', async () => {
    const started = Date.now();
    const { done } = supervise(
      [part('long', 'setInterval(() => {}, 1000)'), part('broken', 'process.exit(1)')],
      { startedAfterMs: 5_000, handleSignals: false },
    );
    expect(await done).toBe(1);
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
