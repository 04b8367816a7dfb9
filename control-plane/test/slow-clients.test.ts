/**
 * Clients that hold the control plane's sockets, as an attacker without a token would: a
 * body sent a byte at a time (bodies are read before any route or token check) is cut at
 * LANEKEEPER_REQUEST_TIMEOUT_MS, and connections past LANEKEEPER_MAX_CONNECTIONS are closed at
 * once, so proxies fetching their config get through again as soon as the holders are cut.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxConnectionsFor } from '../src/http/listener.js';
import { startControlPlane, type RunningControlPlane } from '../src/main.js';
import { call } from './helpers/http.js';
import { createTestEnv, type TestEnv } from './helpers/test-env.js';

const MAX_CONNECTIONS = 6;
let t: TestEnv;
let cp: RunningControlPlane;

beforeAll(async () => {
  t = await createTestEnv({
    extra: {
      LANEKEEPER_LEDGER_ENABLED: 'false',
      LANEKEEPER_REQUEST_TIMEOUT_MS: '1000',
      LANEKEEPER_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
    },
  });
  cp = await startControlPlane(t.env);
});
afterAll(async () => {
  await cp?.close();
  await t?.dispose();
});

/** A socket that sends a request's head and then one byte of its body, and what it got back. */
function trickle(
  path: string,
  type: string,
): { socket: Socket; closed: Promise<{ got: string; ms: number }> } {
  const { hostname, port } = new URL(cp.url);
  const started = Date.now();
  const socket = connect({ host: hostname, port: Number(port) }, () =>
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: 16000\r\n\r\nt`,
    ),
  );
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<{ got: string; ms: number }>((resolve) =>
    socket.on('close', () => resolve({ got, ms: Date.now() - started })),
  );
  return { socket, closed };
}

describe('a client trickling a request body', () => {
  it.each([
    ['the console sign-in form', '/console/login', 'application/x-www-form-urlencoded'],
    ['an unknown path, as JSON', '/no-such-route', 'application/json'],
  ])('is answered 408 and cut at the request timeout on %s', async (_name, path, type) => {
    const { socket, closed } = trickle(path, type);
    // The deadline is checked every quarter of the headers timeout (here 250 ms).
    const timer = setTimeout(() => socket.destroy(), 10_000);
    const { got, ms } = await closed;
    clearTimeout(timer);
    expect(got).toMatch(/^HTTP\/1\.1 408/);
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(5_000);
  });
});

describe('connections past LANEKEEPER_MAX_CONNECTIONS', () => {
  it('are closed at once, and served again once the holders are cut', async () => {
    const holders = Array.from({ length: MAX_CONNECTIONS }, () =>
      trickle('/console/login', 'application/x-www-form-urlencoded'),
    );
    await new Promise((r) => setTimeout(r, 200));
    const refused = await call(cp.url, 'GET', '/v1/config', { token: t.proxyToken }).then(
      (reply) => reply.status,
      (error: Error) => error.message,
    );
    expect(refused).not.toBe(200);
    await Promise.all(holders.map((h) => h.closed));
    expect((await call(cp.url, 'GET', '/v1/config', { token: t.proxyToken })).status).toBe(200);
  });

  it('default to the open-files limit less what the stores need, within bounds', () => {
    expect(maxConnectionsFor(100, 1024)).toBe(100);
    expect(maxConnectionsFor(undefined, 1024)).toBe(896);
    expect(maxConnectionsFor(undefined, 100)).toBe(32);
    expect(maxConnectionsFor(undefined, 1_048_576)).toBe(4_096);
    expect(maxConnectionsFor(undefined, undefined)).toBe(4_096);
  });
});
