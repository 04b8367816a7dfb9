/**
 * PostgreSQL out of reach under a running control plane (and, on the same process, the
 * usage events it rejects, which its log used to drop), as the operator reads its log and
 * as the proxies polling it see it: a 503 they retry, one `postgres unavailable` warning
 * and one line when it is back, never an error line per call. Before, every proxy poll wrote
 * `request failed` (63 lines in two minutes with two proxies).
 */
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv } from '../../control-plane/test/helpers/test-env.js';
import { usageEvent } from '../../control-plane/test/helpers/usage-event.js';
import { until } from '../../proxy/test/helpers/waiting.js';
import { startControlPlaneProcess } from '../helpers/control-plane-process.js';
import { startTcpGate } from '../helpers/tcp-gate.js';

/** A control plane process on the real database behind a gate, its log lines parsed. */
async function startGated(extra: NodeJS.ProcessEnv = {}) {
  const env = await createTestEnv({ extra: { LANEKEEPER_LOG_LEVEL: 'info', REDIS_URL: '', ...extra } });
  const database = new URL(env.databaseUrl);
  const gate = await startTcpGate(database.hostname, Number(database.port || 5432));
  const gated = new URL(env.databaseUrl);
  gated.hostname = '127.0.0.1';
  gated.port = String(gate.port);
  const started = await startControlPlaneProcess({ ...env.env, DATABASE_URL: gated.toString() });
  const { cp } = started;
  return {
    ...started,
    env,
    gate,
    async stop() {
      if (cp.exitCode === null && cp.signalCode === null) cp.kill('SIGKILL');
      await gate.close();
      await env.dispose();
    },
  };
}

describe('a control plane whose PostgreSQL goes away', () => {
  let stack: Awaited<ReturnType<typeof startGated>>;
  beforeAll(async () => {
    stack = await startGated();
  }, 60_000);
  afterAll(() => stack?.stop());

  const poll = () =>
    fetch(`${stack.url}/v1/config`, { headers: { authorization: `Bearer ${stack.env.proxyToken}` } });

  it('logs the usage events it rejects, which it used to drop from the log', async () => {
    const event = usageEvent({ tenant: 'acme', ts: '2020-01-01T00:00:00Z', model: 'm', input: 1, output: 1 });
    const response = await fetch(`${stack.url}/v1/usage-events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.env.proxyToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events: [event] }),
    });
    expect(await response.json()).toMatchObject({ rejected: 1 });
    const line = await until('the rejection line', async () =>
      stack.lines.find((l) => l.msg === 'usage events rejected (kept in usage_rejects)'),
    );
    expect(line).toMatchObject({ level: 'warn', rejects: [expect.objectContaining({ index: 0 })] });
  });

  it('answers the polls 503 and logs one outage, not a line per poll', async () => {
    const { gate, lines, raw } = stack;
    expect((await poll()).status).toBe(200);
    const mark = lines.length;
    gate.cut();
    for (let i = 0; i < 12; i++) {
      const response = await poll();
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('5');
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
        'CP_ERR_STORE_UNAVAILABLE',
      );
    }
    gate.open();
    await until('a poll answered again', async () => (await poll()).status === 200);
    const outage = await until('the recovery line', async () =>
      lines.slice(mark).find((l) => l.msg === 'postgres available again'),
    );
    expect(outage).toMatchObject({ level: 'info', dependency: 'postgres' });
    const during = lines.slice(mark);
    expect(during.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => l.msg)).toEqual([
      'postgres unavailable',
    ]);
    expect(raw.join('\n')).not.toMatch(/"stack"|\\n\s+at /);
  }, 30_000);
});

describe('a control plane stopped while its PostgreSQL does not answer', () => {
  let stack: Awaited<ReturnType<typeof startGated>> | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  /** A call that waits on the frozen database, and is in flight once this returns. */
  async function stuckCall(s: Awaited<ReturnType<typeof startGated>>) {
    s.gate.freeze();
    const call = fetch(`${s.url}/v1/tenants`, {
      headers: { authorization: `Bearer ${s.env.adminToken}` },
    }).catch((error: unknown) => error);
    await new Promise((r) => setTimeout(r, 300));
    // Wrapped: an async function returning the promise itself would wait for it.
    return { call };
  }

  it('cuts what is in flight after LANEKEEPER_SHUTDOWN_GRACE_MS, says so, and exits', async () => {
    const s = (stack = await startGated({ LANEKEEPER_SHUTDOWN_GRACE_MS: '500' }));
    const { call } = await stuckCall(s);
    const exited = once(s.cp, 'exit');
    const started = Date.now();
    s.cp.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
    // The grace, a second for the cut to land, a second for the pool: far from the 80 s seen.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(s.lines.find((l) => String(l.msg).startsWith('shutting down'))).toMatchObject({
      in_flight: 1,
      grace_ms: 500,
    });
    expect(s.lines.find((l) => l.msg === 'control plane stopped')).toMatchObject({ drained: 0, cut: 1 });
    expect(await call).toBeInstanceOf(Error);
  }, 30_000);

  it('exits at once on a second signal, and says so', async () => {
    const s = (stack = await startGated({ LANEKEEPER_SHUTDOWN_GRACE_MS: '60000' }));
    await stuckCall(s);
    const exited = once(s.cp, 'exit');
    s.cp.kill('SIGTERM');
    await until('the shutdown to start', async () =>
      s.lines.find((l) => String(l.msg).startsWith('shutting down')),
    );
    s.cp.kill('SIGINT');
    const [code] = await exited;
    expect(code).toBe(1);
    expect(s.lines.at(-1)).toMatchObject({
      level: 'warn',
      signal: 'SIGINT',
      msg: expect.stringContaining('second signal'),
    });
  }, 30_000);
});
