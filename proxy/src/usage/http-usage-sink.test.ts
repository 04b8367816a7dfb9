import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpUsageSink } from './http-usage-sink.js';
import type { UsageEvent } from './usage-event.js';

/** A stand-in control plane on port 0 answering each post with the next scripted status, or as `answer` says. */
async function controlPlane(statuses: number[] | ((ids: string[]) => number)) {
  const posts: { auth?: string; ids: string[] }[] = [];
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const body = JSON.parse(raw) as { events: UsageEvent[] };
      posts.push({ auth: req.headers.authorization, ids: body.events.map((e) => e.request_id) });
      const ids = body.events.map((e) => e.request_id);
      const status = typeof statuses === 'function' ? statuses(ids) : (statuses.shift() ?? 200);
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, posts };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

const event = (id: string) => ({ request_id: id, tenant: 'acme' }) as UsageEvent;

function deps() {
  const counted = { dropped: 0, errors: [] as string[] };
  return {
    counted,
    deps: {
      metrics: { meterDropped: { inc: (n = 1) => void (counted.dropped += n) } },
      logger: { warn: () => {}, error: (_o: object, msg: string) => void counted.errors.push(msg) },
    },
  };
}

async function until(check: () => boolean, limitMs = 5_000) {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('gave up waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the HTTP usage sink', () => {
  it('batches events and posts them with the proxy token', async () => {
    const cp = await controlPlane([]);
    const { deps: d } = deps();
    const sink = createHttpUsageSink({ url: cp.url, token: 'proxy-token', batchSize: 3, flushMs: 50 }, d);
    for (const id of ['a', 'b', 'c', 'd']) sink.push(event(id));
    await until(() => cp.posts.flatMap((p) => p.ids).length === 4);
    expect(cp.posts[0]).toEqual({ auth: 'Bearer proxy-token', ids: ['a', 'b', 'c'] });
    expect(cp.posts[1]!.ids).toEqual(['d']);
    // The fake control plane has the post when it arrives; the sink lets go of the events
    // once the answer is back, a moment later.
    await until(() => sink.pending() === 0);
    await sink.close();
  });

  it('retries a batch the control plane failed (5xx, 429) until it is taken', async () => {
    const cp = await controlPlane([503, 429, 500]);
    const { deps: d, counted } = deps();
    const sink = createHttpUsageSink({ url: cp.url, token: 't', flushMs: 10, backoffMs: 10 }, d);
    sink.push(event('a'));
    await until(() => cp.posts.length === 4);
    expect(cp.posts.map((p) => p.ids)).toEqual([['a'], ['a'], ['a'], ['a']]);
    await until(() => sink.pending() === 0);
    expect(counted.dropped).toBe(0);
    await sink.close();
  });

  // Mid-rotation the control plane has the new proxy token and this proxy the old one; an
  // ingress with no route yet answers 404 or 405 (taken for a refusal of the batch, a 404
  // dropped every event queued within seconds).
  it('keeps and retries a batch refused for its token (401, 403), a timeout (408) or a missing route (404, 405)', async () => {
    const cp = await controlPlane([401, 403, 408, 404, 405]);
    const { deps: d, counted } = deps();
    const sink = createHttpUsageSink({ url: cp.url, token: 't', flushMs: 10, backoffMs: 10 }, d);
    sink.push(event('a'));
    sink.push(event('b'));
    await until(() => sink.pending() === 0);
    expect(cp.posts.map((p) => p.ids)).toEqual(Array.from({ length: 6 }, () => ['a', 'b']));
    expect(counted.dropped).toBe(0);
    await sink.close();
  });

  it('splits a batch the control plane refuses (400) to drop only the event it refuses', async () => {
    const booked: string[] = [];
    const cp = await controlPlane((ids) => {
      if (ids.includes('c')) return 400;
      booked.push(...ids);
      return 200;
    });
    const { deps: d, counted } = deps();
    const sink = createHttpUsageSink(
      { url: cp.url, token: 't', flushMs: 10, backoffMs: 10, batchSize: 8 },
      d,
    );
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f']) sink.push(event(id));
    await until(() => sink.pending() === 0);
    expect(booked.sort()).toEqual(['a', 'b', 'd', 'e', 'f']);
    expect(counted.dropped).toBe(1);
    expect(counted.errors).toEqual(['the control plane refused a usage event; it is dropped']);
    await sink.close();
  });

  it('splits a batch too big for the control plane (413) until its parts are taken', async () => {
    const booked: string[] = [];
    const cp = await controlPlane((ids) => {
      if (ids.length > 2) return 413;
      booked.push(...ids);
      return 200;
    });
    const { deps: d, counted } = deps();
    const sink = createHttpUsageSink(
      { url: cp.url, token: 't', flushMs: 10, backoffMs: 10, batchSize: 8 },
      d,
    );
    for (const id of ['a', 'b', 'c', 'd', 'e']) sink.push(event(id));
    await until(() => sink.pending() === 0);
    expect(booked).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(counted.dropped).toBe(0);
    await sink.close();
  });

  it('keeps at most maxQueue events while the control plane is away, counting the oldest dropped', async () => {
    const { deps: d, counted } = deps();
    // Nothing listens on port 1: every post fails.
    const sink = createHttpUsageSink(
      { url: 'http://127.0.0.1:1', token: 't', maxQueue: 5, flushMs: 10_000, batchSize: 500 },
      d,
    );
    for (let i = 0; i < 8; i++) sink.push(event(`e${i}`));
    expect(sink.pending()).toBe(5);
    expect(counted.dropped).toBe(3);
    await sink.close(200);
    expect(sink.pending()).toBe(0);
    expect(counted.dropped).toBe(8);
  });

  it('sends what is queued on close, before its batch timer would', async () => {
    const cp = await controlPlane([]);
    const { deps: d } = deps();
    const sink = createHttpUsageSink({ url: cp.url, token: 't', flushMs: 60_000 }, d);
    sink.push(event('late'));
    await sink.close();
    expect(cp.posts.map((p) => p.ids)).toEqual([['late']]);
  });
});
