/**
 * What a proxy in control-plane mode with the memory store logs while its control plane is
 * away, as an operator reads it: one outage story (not a warning per usage-post retry, 17
 * in 3 minutes before), the usage delivered once it is back, a refused proxy token that
 * ends when the token is taken again (a 304 included), and a stop line that counts what
 * could not be posted.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256Hex } from '../src/identity/credentials.js';
import { createLogger } from '../src/log.js';
import { startProxy, type RunningProxy } from '../src/main.js';
import { logLines } from '../../test/helpers/log-lines.js';
import { chatCompletion, startFakeUpstream, type FakeUpstream } from './helpers/fake-upstream.js';

const KEY = 'lk_outage_logs_0123456789';
const SNAPSHOT = {
  version: 1,
  plans: { p: { models: { default: 'm' } } },
  tenants: [{ id: 'acme', plan: 'p', api_key_sha256: [sha256Hex(KEY)] }],
  pricing: { m: { input: 1, output: 1 } },
};

/** A stand-in control plane: `mode` says how it answers everything. */
async function fakeControlPlane() {
  const state = { mode: 'up' as 'up' | 'down' | 'refuse', booked: [] as string[], configGets: 0 };
  const server: Server = createServer((req, res) => {
    if (state.mode === 'down') return req.socket.destroy();
    if (state.mode === 'refuse') return res.writeHead(401).end('{"error":"bad token"}');
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c));
    req.on('end', () => {
      if (req.url === '/v1/config') {
        state.configGets++;
        if (req.headers['if-none-match'] === '"1"') return res.writeHead(304).end();
        return res
          .writeHead(200, { etag: '"1"', 'content-type': 'application/json' })
          .end(JSON.stringify(SNAPSHOT));
      }
      const body = JSON.parse(raw) as { events: { request_id: string }[] };
      state.booked.push(...body.events.map((e) => e.request_id));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    state,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let upstream: FakeUpstream | undefined;
let proxy: RunningProxy | undefined;
let cp: Awaited<ReturnType<typeof fakeControlPlane>> | undefined;
afterEach(async () => {
  await proxy?.close(100);
  await upstream?.close();
  await cp?.close();
  proxy = upstream = cp = undefined;
});

async function start(store: 'memory' | { redis: string } = 'memory') {
  cp = await fakeControlPlane();
  upstream = await startFakeUpstream(() => ({
    kind: 'json',
    body: chatCompletion('m', 'ok', { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 }),
  }));
  const { lines, stream } = logLines();
  proxy = await startProxy({
    config: {
      listen: '127.0.0.1:0',
      admin_listen: '127.0.0.1:0',
      upstream: { url: upstream.url },
      store,
      control_plane: {
        url: cp.url,
        token: 't',
        poll_interval_ms: 100,
        snapshot_path: join(await mkdtemp(join(tmpdir(), 'lk-outage-')), 'snapshot.json'),
      },
    },
    logger: createLogger('debug', stream),
    env: {},
  });
  return lines;
}

async function chat(): Promise<number> {
  const res = await request(`${proxy!.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.body.dump();
  return res.statusCode;
}

async function until(check: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const warnings = (lines: Record<string, unknown>[]) => lines.filter((l) => l.level === 'warn');

describe('a control plane that goes away under a memory-store proxy', () => {
  it('is one outage in the log, whatever the usage posts retry, and the usage arrives after', async () => {
    const lines = await start();
    cp!.state.mode = 'down';
    for (let i = 0; i < 5; i++) expect(await chat()).toBe(200);
    // Posts retry at 0.25, 0.5, 1 and 2 s: four failures, all part of the outage the poll reports.
    await until(
      () => lines.filter((l) => l.msg === 'control plane (usage posts) unavailable').length > 0,
      'a failed usage post',
    );
    await new Promise((r) => setTimeout(r, 2_000));
    expect(warnings(lines).map((l) => l.msg)).toEqual(['control plane unavailable']);
    expect(lines.find((l) => l.msg === 'control plane (usage posts) unavailable')).toMatchObject({
      level: 'debug',
    });
    cp!.state.mode = 'up';
    await until(() => cp!.state.booked.length === 5, 'the five events booked', 35_000);
    expect(new Set(cp!.state.booked).size).toBe(5);
    await until(
      () => lines.some((l) => l.msg === 'control plane (usage posts) available again'),
      'the posts recovery line',
    );
    expect(lines.filter((l) => l.msg === 'control plane available again')).toHaveLength(1);
    expect(warnings(lines).map((l) => l.msg)).toEqual(['control plane unavailable']);
    expect(JSON.stringify(lines)).not.toContain('    at ');
  }, 60_000);

  it('counts in the stop line the events it could not post', async () => {
    const lines = await start();
    cp!.state.mode = 'down';
    for (let i = 0; i < 3; i++) expect(await chat()).toBe(200);
    await proxy!.close(100);
    proxy = undefined;
    expect(lines.find((l) => l.msg === 'usage events not delivered before shutdown')).toMatchObject({
      events: 3,
    });
    expect(lines.find((l) => l.msg === 'lanekeeper proxy stopped')).toMatchObject({
      meter_events_waiting: 3,
      meter_events_unsent: 3,
    });
  });
});

describe('a control plane that refuses the proxy token', () => {
  it('ends that outage on the next good answer, a 304 too, so a second refusal is said again', async () => {
    const lines = await start();
    const refusedLines = () =>
      lines
        .filter((l) => String(l.msg).startsWith('control plane (this proxy token refused)'))
        .map((l) => l.msg);
    cp!.state.mode = 'refuse';
    await until(() => refusedLines().length === 1, 'the refusal');
    cp!.state.mode = 'up';
    const gets = cp!.state.configGets;
    await until(() => cp!.state.configGets > gets + 1, 'polls answered 304');
    await until(() => refusedLines().length === 2, 'the end of the refusal');
    cp!.state.mode = 'refuse';
    await until(() => refusedLines().length === 3, 'the second refusal');
    expect(refusedLines()).toEqual([
      'control plane (this proxy token refused) unavailable',
      'control plane (this proxy token refused) available again',
      'control plane (this proxy token refused) unavailable',
    ]);
  });
});

describe('a Redis that is down under a Redis-store proxy', () => {
  it('is one outage in the log (the subscription to the same Redis says it at debug), and does not hold up a stop', async () => {
    // Nothing listens on port 1: the store and the config subscription both fail.
    const lines = await start({ redis: 'redis://127.0.0.1:1' });
    await until(
      () => lines.some((l) => String(l.msg).startsWith('config subscription (redis)')),
      'the subscription',
    );
    expect(warnings(lines).some((l) => String(l.msg).startsWith('config subscription'))).toBe(false);
    expect(lines.find((l) => l.msg === 'config subscription (redis) unavailable')).toMatchObject({
      level: 'debug',
    });
    expect(warnings(lines).map((l) => l.msg)).toContain('redis unavailable');
    // Closing did not wait on the subscription's QUIT, queued for a Redis that never came:
    // the proxy's SIGTERM hung there for good.
    const closed = await Promise.race([
      proxy!.close(100).then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('still closing after 10 s'), 10_000)),
    ]);
    proxy = undefined;
    expect(closed).toBe('closed');
  });
});
