/**
 * Attacks on the listener itself, written as an attacker would with raw sockets: a
 * thousand slowloris connections that trickle header bytes, a body that stops arriving, a
 * flood of connections past the cap, and a client that hangs up mid-upload. Another
 * tenant must keep being served throughout, every slow socket must be closed by its
 * deadline, and none of it may log an error or hold a tenant's concurrency slot.
 */
import { connect, type Socket } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFilesLimit } from '@lanekeeper/contract';
import { ADMIN_MAX_CONNECTIONS, maxConnectionsFor } from '../../src/listener-limits.js';
import { parseConfig } from '../../src/config/schema.js';
import { chatCompletion } from '../helpers/fake-upstream.js';
import { KEYS, metricValue, startHarness, type Harness } from '../helpers/harness.js';

const USAGE = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 };
const reply = () => ({ kind: 'json' as const, body: chatCompletion('small-model', 'ok', USAGE) });
const CHAT = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] });

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/** A raw socket that is connected (or failed); its `closedAt` is set when the server closes it. */
function open(url: string): Promise<Socket & { closedAt?: number; received: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(hostPort(url)) as Socket & { closedAt?: number; received: string };
    socket.received = '';
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => (socket.received += d.toString('latin1')));
    socket.on('close', () => (socket.closedAt = Date.now()));
    socket.on('error', () => {});
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

async function waitUntil(check: () => boolean, limitMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}

async function chat(h: Harness, key: string): Promise<number> {
  const res = await request(`${h.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: CHAT,
  });
  await res.body.text();
  return res.statusCode;
}

describe('a thousand slowloris sockets', () => {
  let h: Harness;
  const sockets: (Socket & { closedAt?: number; received: string })[] = [];

  beforeAll(async () => {
    h = await startHarness({
      reply,
      config: (base) => ({ ...base, server: { headers_timeout_ms: 3_000, max_connections: 2_000 } }),
    });
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await h.close();
  });

  it('never lock another tenant out, and are all closed once their header deadline passes', async () => {
    for (let i = 0; i < 1_000; i++) {
      const s = await open(h.proxy.url);
      s.write('POST /v1/chat/completions HTTP/1.1\r\nHost: victim\r\n');
      sockets.push(s);
    }
    const openedAt = Date.now();
    // Trickle a header byte down every socket, as slowloris does, while another tenant works.
    const statuses: number[] = [];
    let drip = 0;
    while (Date.now() - openedAt < 2_000) {
      for (const s of sockets) if (!s.destroyed) s.write(`X-${drip}: a\r\n`);
      drip++;
      statuses.push(await chat(h, KEYS.pro));
    }
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(sockets.every((s) => s.closedAt === undefined)).toBe(true);

    // headers_timeout_ms 3 s from each socket's first byte, checked every 750 ms.
    const allClosed = await waitUntil(() => sockets.every((s) => s.closedAt !== undefined), 8_000);
    expect(allClosed).toBe(true);
    const closedAfter = Math.max(...sockets.map((s) => s.closedAt! - openedAt));
    expect(closedAfter).toBeLessThan(8_000);
    // A timed-out request is told why where HTTP allows: 408.
    expect(sockets.filter((s) => s.received.startsWith('HTTP/1.1 408')).length).toBeGreaterThan(900);
    expect(await chat(h, KEYS.pro)).toBe(200);
    expect(h.logs.filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);
  }, 30_000);
});

describe('a body that stops arriving, and a client that hangs up mid-upload', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      reply,
      config: (base) => {
        const plans = base.plans as Record<string, Record<string, unknown>>;
        return {
          ...base,
          server: { body_idle_timeout_ms: 500 },
          plans: { ...plans, free: { ...plans.free, rate_limits: { max_concurrent: 1 } } },
        };
      },
    });
  });
  afterAll(() => h.close());

  const head = (length: number) =>
    `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.free}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

  it('answers a body that goes silent with 408 after body_idle_timeout_ms and closes the socket', async () => {
    const s = await open(h.proxy.url);
    s.write(head(1_000) + '{"messages":');
    expect(await waitUntil(() => s.closedAt !== undefined, 5_000)).toBe(true);
    expect(s.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(s.received).toContain('"code":"request_timeout"');
    expect(h.upstream.received).toHaveLength(0);
    // The tenant's one concurrency slot is free.
    expect(await chat(h, KEYS.free)).toBe(200);
  });

  it('logs a hang-up mid-upload as info without a stack, and holds no slot', async () => {
    const before = h.logs.length;
    for (let i = 0; i < 3; i++) {
      const s = await open(h.proxy.url);
      s.write(head(1_000) + '{"messages":[');
      await new Promise((r) => setTimeout(r, 50));
      s.resetAndDestroy();
    }
    await waitUntil(
      () => h.logs.slice(before).filter((l) => l.msg === 'client hung up mid-upload').length === 3,
      3_000,
    );
    const lines = h.logs.slice(before);
    expect(lines.filter((l) => l.msg === 'client hung up mid-upload')).toHaveLength(3);
    for (const line of lines) {
      expect(['trace', 'debug', 'info']).toContain(line.level);
      expect(JSON.stringify(line)).not.toContain('    at ');
    }
    expect(await chat(h, KEYS.free)).toBe(200);
  });
});

describe('the connection cap', () => {
  let h: Harness;
  const held: Socket[] = [];

  beforeAll(async () => {
    h = await startHarness({ reply, config: (base) => ({ ...base, server: { max_connections: 20 } }) });
  });
  afterAll(async () => {
    for (const s of held) s.destroy();
    await h.close();
  });

  it('closes connections past max_connections at once instead of accepting and starving them', async () => {
    for (let i = 0; i < 20; i++) held.push(await open(h.proxy.url));
    const extra = await open(h.proxy.url);
    extra.write('GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await waitUntil(() => extra.closedAt !== undefined, 2_000)).toBe(true);
    expect(extra.received).toBe('');
    const metrics = await (await request(`${h.proxy.adminUrl}/metrics`)).body.text();
    expect(metricValue(metrics, 'lanekeeper_connections_dropped_total', {})).toBeGreaterThanOrEqual(1);
    // Freeing connections lets new ones in.
    for (const s of held.splice(0)) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect(await chat(h, KEYS.pro)).toBe(200);
  });

  it('caps the admin listener too: a flood of probe connections takes no tenant traffic down', async () => {
    for (let i = 0; i < ADMIN_MAX_CONNECTIONS; i++) held.push(await open(h.proxy.adminUrl));
    const extra = await open(h.proxy.adminUrl);
    extra.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await waitUntil(() => extra.closedAt !== undefined, 2_000)).toBe(true);
    expect(extra.received).toBe('');
    expect(await chat(h, KEYS.pro)).toBe(200);
    for (const s of held.splice(0)) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect((await request(`${h.proxy.adminUrl}/healthz`)).statusCode).toBe(200);
  });
});

describe('the default connection cap', () => {
  it('leaves room under the open-files limit for the upstream pool and the process', () => {
    const config = parseConfig({ upstream: { url: 'http://127.0.0.1:1', connections: 128 } });
    expect(maxConnectionsFor(config, 1_024)).toBe(1_024 - 128 - 256 - ADMIN_MAX_CONNECTIONS);
    expect(maxConnectionsFor(config, 1_000_000)).toBe(16_384);
    expect(maxConnectionsFor(config, 100)).toBe(64);
    expect(
      maxConnectionsFor(parseConfig({ upstream: { url: 'http://x:1' }, server: { max_connections: 7 } })),
    ).toBe(7);
    expect(
      openFilesLimit('Max open files            1024                 4096                 files\n'),
    ).toBe(1_024);
    expect(
      openFilesLimit('Max open files            unlimited            unlimited            files\n'),
    ).toBeUndefined();
  });

  it('refuses a header timeout longer than the request timeout', () => {
    expect(() =>
      parseConfig({
        upstream: { url: 'http://x:1' },
        server: { headers_timeout_ms: 10, request_timeout_ms: 5 },
      }),
    ).toThrow(/server.headers_timeout_ms/);
    expect(() =>
      parseConfig({ upstream: { url: 'http://x:1' }, server: { headers_timeout_ms: 0 } }),
    ).toThrow();
    expect(() => parseConfig({ upstream: { url: 'http://x:1' }, server: { max_connections: -1 } })).toThrow();
    expect(() =>
      parseConfig({ upstream: { url: 'http://x:1' }, server: { max_connections: '10' } }),
    ).toThrow();
    expect(() => parseConfig({ upstream: { url: 'http://x:1' }, server: { surprise: 1 } })).toThrow();
  });
});
