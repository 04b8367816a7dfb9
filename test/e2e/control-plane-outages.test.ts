/**
 * The control plane's dependencies failing, seen in its log, as a real process: its Redis
 * stopped and started again, its ledger's table taken away while events wait, and a SIGTERM
 * with Redis down. Each outage is one warning, then (after a minute) summaries, and one line
 * when it is back, never a stack trace; SIGTERM says what it drained and the process exits.
 * Before, a ledger retry wrote an error with its stack twice a second, a Redis outage wrote
 * nothing, and SIGTERM wrote nothing.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../../control-plane/test/helpers/test-env.js';
import { usageEvent } from '../../control-plane/test/helpers/usage-event.js';
import { PrivateRedis, freePort } from '../../proxy/test/store/private-redis.js';
import { until } from '../../proxy/test/helpers/waiting.js';
import { startControlPlaneProcess, type LogLine } from '../helpers/control-plane-process.js';

/** A usage event the ledger books, with a request id to find its row by. */
function usageEventNamed(requestId: string): string {
  return JSON.stringify({
    ...usageEvent({
      tenant: 'acme',
      ts: new Date().toISOString(),
      model: 'gpt-4o-mini',
      input: 1,
      output: 1,
    }),
    request_id: requestId,
  });
}

describe('a control plane whose dependencies fail', () => {
  let env: TestEnv;
  let redis: PrivateRedis;
  let client: Redis;
  let cp: ChildProcess | undefined;
  /** An OTLP endpoint that takes every export: tracing on, and no export outage in the log. */
  let collector: Server;
  let lines: LogLine[] = [];
  let raw: string[] = [];
  const since = (mark: number) => lines.slice(mark);
  let url = '';
  const cpUrl = () => url;

  beforeAll(async () => {
    redis = new PrivateRedis(await freePort());
    await redis.start();
    collector = createServer((request, response) => {
      request.resume();
      request.on('end', () => response.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    }).listen(0, '127.0.0.1');
    await once(collector, 'listening');
    const { port } = collector.address() as { port: number };
    env = await createTestEnv({
      extra: {
        LANEKEEPER_LOG_LEVEL: 'info',
        REDIS_URL: redis.url,
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
        OTEL_BSP_SCHEDULE_DELAY: '100',
      },
    });
    client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    ({ cp, lines, raw, url } = await startControlPlaneProcess(env.env));
  }, 60_000);

  afterAll(async () => {
    if (cp && cp.exitCode === null) cp.kill('SIGKILL');
    client?.disconnect();
    await redis?.stop();
    collector?.close();
    await env?.dispose();
  });

  it('books again after its ledger table came back: one warning, one recovery line, no stack', async () => {
    const stream = `${env.prefix}usage`;
    await client.xadd(stream, '*', 'event', usageEventNamed('before'));
    await until('the first event booked', async () => {
      const { rows } = await env.pool.query('SELECT 1 FROM usage_ledger WHERE request_id = $1', ['before']);
      return rows.length > 0;
    });
    const mark = lines.length;
    await env.pool.query('ALTER TABLE usage_ledger RENAME TO usage_ledger_away');
    try {
      await client.xadd(stream, '*', 'event', usageEventNamed('during'));
      // Retried every half second: six turns or more.
      await new Promise((resolve) => setTimeout(resolve, 3_500));
    } finally {
      await env.pool.query('ALTER TABLE usage_ledger_away RENAME TO usage_ledger');
    }
    await until('the waiting event booked', async () => {
      const { rows } = await env.pool.query('SELECT 1 FROM usage_ledger WHERE request_id = $1', ['during']);
      return rows.length > 0;
    });
    const back = await until('the recovery line', async () =>
      since(mark).find((l) => l.msg === 'usage ledger available again'),
    );
    const during = since(mark);
    const warnings = during.filter((l) => l.level === 'warn' || l.level === 'error');
    expect(warnings.map((l) => l.msg)).toEqual(['usage ledger unavailable']);
    expect(String(warnings[0]!.err)).toContain('usage_ledger');
    expect(back).toMatchObject({ level: 'info', dependency: 'usage ledger' });
    expect(back.failures as number).toBeGreaterThanOrEqual(5);
    expect(raw.join('\n')).not.toMatch(/"stack"|\\n\s+at /);
  }, 30_000);

  it('says once that Redis is down and once that it is back', async () => {
    const mark = lines.length;
    await redis.stop();
    await until('the outage warning', async () => since(mark).find((l) => l.msg === 'redis unavailable'));
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await redis.start();
    const back = await until('the recovery line', async () =>
      since(mark).find((l) => l.msg === 'redis available again'),
    );
    expect(back.level).toBe('info');
    const warnings = since(mark).filter((l) => l.level === 'warn' || l.level === 'error');
    expect(warnings.map((l) => [l.msg, l.err])).toEqual([['redis unavailable', expect.any(String)]]);
    expect(raw.join('\n')).not.toMatch(/"stack"|\\n\s+at /);
  }, 30_000);

  it('writes a failed API call as one line with its request id, trace id and tenant, no stack', async () => {
    const mark = lines.length;
    await env.pool.query('ALTER TABLE tenants RENAME TO tenants_away');
    let response: Response;
    try {
      response = await fetch(`${cpUrl()}/v1/tenants/acme`, {
        headers: { authorization: `Bearer ${env.adminToken}`, 'x-request-id': 'forged-by-the-client' },
      });
    } finally {
      await env.pool.query('ALTER TABLE tenants_away RENAME TO tenants');
    }
    expect(response.status).toBe(500);
    const { error } = (await response.json()) as { error: { message: string } };
    const failed = await until('the failure line', async () =>
      since(mark).find((l) => l.msg === 'request failed'),
    );
    expect(error.message).toBe(`internal error; see the control plane log (request_id ${failed.request_id})`);
    expect(failed.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(failed).toMatchObject({ level: 'error', tenant: 'acme', url: '/v1/tenants/acme' });
    expect(failed.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(failed.err).toMatchObject({ message: expect.stringContaining('tenants') });
    expect(raw.join('\n')).not.toMatch(/"stack"|\\n\s+at /);
  }, 30_000);

  it('logs what it drained on SIGTERM and exits, even with Redis down', async () => {
    const before = lines.length;
    await redis.stop();
    await until('the outage warning', async () => since(before).find((l) => l.msg === 'redis unavailable'));
    const mark = lines.length;
    const exited = new Promise<number | null>((resolve) => cp!.once('exit', resolve));
    const started = Date.now();
    cp!.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    const after = since(mark);
    expect(after.find((l) => l.msg === 'shutting down: draining in-flight requests')).toMatchObject({
      level: 'info',
      in_flight: 0,
    });
    const stopped = after.find((l) => l.msg === 'control plane stopped');
    expect(stopped).toMatchObject({ level: 'info', drained: 0 });
    expect(stopped?.drain_ms).toEqual(expect.any(Number));
  }, 30_000);
});
