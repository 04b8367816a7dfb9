/**
 * The proxy and the control plane write one log shape (contract/src/logging.ts): every
 * line of both, from real processes, parses with the one schema below. And a control plane
 * that is down for three "minutes" (the summary period shortened to 1 s so the test takes
 * three seconds, not three minutes: the proxy polls it every 20 ms meanwhile) costs the
 * proxy's log at most 5 warnings, none with a stack trace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTestEnv, type TestEnv } from '../../control-plane/test/helpers/test-env.js';
import { createControlPlaneSource } from '../../proxy/src/config/control-plane-source.js';
import { sha256Hex } from '../../proxy/src/identity/credentials.js';
import { createLogger } from '../../proxy/src/log.js';
import { startProxy, type RunningProxy } from '../../proxy/src/main.js';
import {
  chatCompletion,
  startFakeUpstream,
  type FakeUpstream,
} from '../../proxy/test/helpers/fake-upstream.js';
import { until } from '../../proxy/test/helpers/waiting.js';

const ROOT = join(import.meta.dirname, '..', '..');

/** The one shape of a log line, for both services. */
const LINE = z
  .object({
    time: z.string().datetime(),
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']),
    service: z.enum(['lanekeeper-proxy', 'lanekeeper-control-plane']),
    msg: z.string().min(1),
    request_id: z.string().min(1).optional(),
    tenant: z.string().nullable().optional(),
  })
  .passthrough();

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(line);
      done();
    },
  });
  return { lines, stream };
}

describe('log lines of the proxy and the control plane', () => {
  let env: TestEnv;
  let cp: ChildProcess | undefined;
  const cpLines: string[] = [];
  let cpUrl = '';
  let upstream: FakeUpstream;
  let proxy: RunningProxy | undefined;
  const proxyLog = capture();

  beforeAll(async () => {
    env = await createTestEnv({ extra: { LANEKEEPER_LOG_LEVEL: 'info' } });
    cp = spawn(process.execPath, [join(ROOT, 'proxy', 'bin', 'lanekeeper.js'), 'control-plane'], {
      env: { ...process.env, ...env.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cp.stdout?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line) cpLines.push(line);
    });
    const started = await until('the control plane to listen', async () =>
      cpLines
        .map((l) => JSON.parse(l) as { msg: string; port?: number })
        .find((l) => l.msg === 'control plane listening'),
    );
    cpUrl = `http://127.0.0.1:${started.port}`;
    upstream = await startFakeUpstream(() => ({
      kind: 'json',
      body: chatCompletion('small-model', 'ok', { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }),
    }));
    proxy = await startProxy({
      logger: createLogger('info', proxyLog.stream),
      config: {
        listen: '127.0.0.1:0',
        admin_listen: '127.0.0.1:0',
        upstream: { url: upstream.url },
        plans: { free: { models: { default: 'small-model' } } },
        tenants: [{ id: 'acme', plan: 'free', api_key_sha256: [sha256Hex('lk_log_shape_key_0123456789')] }],
      },
    });
  }, 60_000);

  afterAll(async () => {
    await proxy?.close(1_000);
    await upstream?.close();
    if (cp && cp.exitCode === null) {
      cp.kill('SIGTERM');
      await new Promise((resolve) => cp?.once('exit', resolve));
    }
    await env?.dispose();
  });

  it('parse with one schema: ISO time, the level as a word, service, msg, and the request id and tenant on a request', async () => {
    const response = await fetch(`${proxy!.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer lk_log_shape_key_0123456789', 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    await fetch(`${cpUrl}/v1/tenants`, { headers: { authorization: 'Bearer wrong' } });
    const access = await until('the access line', async () =>
      proxyLog.lines.map((l) => LINE.parse(JSON.parse(l))).find((l) => l.msg === 'request'),
    );
    expect(access).toMatchObject({ level: 'info', service: 'lanekeeper-proxy', tenant: 'acme' });
    expect(access.request_id).toBe(response.headers.get('x-lanekeeper-request-id'));
    expect(cpLines.length).toBeGreaterThan(0);
    for (const line of [...cpLines, ...proxyLog.lines]) LINE.parse(JSON.parse(line));
    // One naming for fields too: the control plane wrote vectorMode and dataDir.
    const names = [...cpLines, ...proxyLog.lines].flatMap((l) => Object.keys(JSON.parse(l) as object));
    expect(names.filter((name) => !/^[a-z0-9_]+$/.test(name))).toEqual([]);
    expect(cpLines.map((l) => (JSON.parse(l) as { service: string }).service)).toContain(
      'lanekeeper-control-plane',
    );
  });

  it('a control plane down for three summary periods costs at most 5 warnings and no stack trace', async () => {
    cp!.kill('SIGTERM');
    await new Promise((resolve) => cp!.once('exit', resolve));
    const dir = mkdtempSync(join(tmpdir(), 'lk-log-shape-'));
    const log = capture();
    const source = createControlPlaneSource(
      {
        url: cpUrl,
        token: env.proxyToken,
        pollIntervalMs: 20,
        snapshotPath: join(dir, 'snapshot.json'),
        keyPrefix: env.prefix,
        logger: createLogger('info', log.stream),
        fetchTimeoutMs: 200,
        outageSummaryMs: 1_000,
      },
      () => undefined,
    );
    try {
      // Its start fails (no control plane, no snapshot on disk): polling is what is measured.
      await source.start().catch(() => undefined);
      const polls = setInterval(() => void source.refresh(), 20);
      await new Promise((resolve) => setTimeout(resolve, 3_200));
      clearInterval(polls);
    } finally {
      await source.close();
      rmSync(dir, { recursive: true, force: true });
    }
    const lines = log.lines.map((l) => LINE.parse(JSON.parse(l)));
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(warnings.length).toBeGreaterThanOrEqual(3);
    expect(warnings.length).toBeLessThanOrEqual(5);
    expect(warnings[0]?.msg).toBe('control plane unavailable');
    expect(warnings.at(-1)?.msg).toBe('control plane still unavailable');
    expect(log.lines.join('\n')).not.toMatch(/"stack"|\\n\s+at /);
  }, 30_000);
});
