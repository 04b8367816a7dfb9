import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
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

const run = promisify(execFile);
const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

const event = (id: string) => ({ request_id: id, tenant: 'acme' }) as UsageEvent;

function deps(reportedElsewhere?: () => Promise<boolean>) {
  const counted = {
    dropped: 0,
    errors: [] as string[],
    lines: [] as { level: string; msg: string; fields: Record<string, unknown> }[],
  };
  const line = (level: string) => (fields: object, msg: string) =>
    void counted.lines.push({ level, msg, fields: fields as Record<string, unknown> });
  return {
    counted,
    deps: {
      metrics: { meterDropped: { inc: (n = 1) => void (counted.dropped += n) } },
      logger: {
        debug: line('debug'),
        info: line('info'),
        warn: line('warn'),
        error: (fields: object, msg: string) => {
          counted.errors.push(msg);
          line('error')(fields, msg);
        },
      },
      reportedElsewhere,
      outageSummaryMs: 150,
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

  it('logs a failing control plane as one outage: a warning, summaries, one recovery line', async () => {
    let down = true;
    const cp = await controlPlane(() => (down ? 503 : 200));
    const { deps: d, counted } = deps();
    const sink = createHttpUsageSink(
      { url: cp.url, token: 't', flushMs: 10, backoffMs: 10, maxBackoffMs: 20 },
      d,
    );
    sink.push(event('a'));
    await until(() => cp.posts.length >= 25);
    down = false;
    await until(() => sink.pending() === 0);
    const warnings = counted.lines.filter((l) => l.level === 'warn');
    // 25 or more failed posts over ~0.5 s with summaries every 150 ms: a handful of lines.
    expect(warnings.length).toBeGreaterThanOrEqual(2);
    expect(warnings.length).toBeLessThanOrEqual(6);
    expect(warnings[0]).toMatchObject({
      msg: 'control plane (usage posts) unavailable',
      fields: { err: expect.stringContaining('answered 503') },
    });
    expect(warnings.slice(1).every((w) => w.msg === 'control plane (usage posts) still unavailable')).toBe(
      true,
    );
    const recovered = counted.lines.filter((l) => l.level === 'info');
    expect(recovered).toEqual([
      expect.objectContaining({
        msg: 'control plane (usage posts) available again',
        fields: expect.objectContaining({ failures: cp.posts.length - 1, waiting: 0 }),
      }),
    ]);
    expect(JSON.stringify(counted.lines)).not.toContain('    at ');
    await sink.close();
  });

  it('logs failed posts at debug while the control plane outage is reported elsewhere', async () => {
    let down = true;
    const cp = await controlPlane(() => (down ? 503 : 200));
    let asked = 0;
    const { deps: d, counted } = deps(async () => {
      asked++;
      return down;
    });
    const sink = createHttpUsageSink(
      { url: cp.url, token: 't', flushMs: 10, backoffMs: 10, maxBackoffMs: 20 },
      d,
    );
    sink.push(event('a'));
    await until(() => cp.posts.length >= 10);
    down = false;
    await until(() => sink.pending() === 0);
    expect(asked).toBe(cp.posts.length - 1);
    expect(counted.lines.filter((l) => l.level === 'warn')).toEqual([]);
    expect(counted.lines.filter((l) => l.level === 'debug')[0]?.msg).toBe(
      'control plane (usage posts) unavailable',
    );
    // The events went through: said once.
    expect(counted.lines.filter((l) => l.level === 'info').map((l) => l.msg)).toEqual([
      'control plane (usage posts) available again',
    ]);
    await sink.close();
  });

  it('on close, stops a backoff wait, tries once more, and says how many events it could not deliver', async () => {
    const cp = await controlPlane(() => 503);
    const { deps: d, counted } = deps();
    // A minute of backoff after the first failure: close must not wait it out.
    const sink = createHttpUsageSink({ url: cp.url, token: 't', flushMs: 10, backoffMs: 60_000 }, d);
    for (const id of ['a', 'b', 'c']) sink.push(event(id));
    await until(() => cp.posts.length === 1);
    const started = Date.now();
    expect(await sink.close(5_000)).toBe(3);
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(cp.posts).toHaveLength(2);
    expect(counted.dropped).toBe(3);
    expect(counted.errors).toEqual(['usage events not delivered before shutdown']);
  });

  it('keeps the process alive while it closes: the last pass is not cut by an exit', async () => {
    // A child process in which nothing else holds the event loop, as in a proxy whose
    // listeners are closed: with unref'd timers it exited mid-close, the events lost unsaid.
    const cp = await controlPlane(() => 503);
    const dir = await mkdtemp(join(tmpdir(), 'lanekeeper-sink-'));
    const script = join(dir, 'close.ts');
    await writeFile(
      script,
      `import { createHttpUsageSink } from ${JSON.stringify(join(import.meta.dirname, 'http-usage-sink.ts'))};
const log = (level: string) => (fields: object, msg: string) => console.log(JSON.stringify({ level, msg, ...fields }));
const sink = createHttpUsageSink(
  { url: ${JSON.stringify(cp.url)}, token: 't', flushMs: 1, backoffMs: 200 },
  { metrics: { meterDropped: { inc: () => {} } }, logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') } },
);
sink.push({ request_id: 'a', tenant: 'acme' } as never);
setTimeout(async () => {
  const unsent = await sink.close(1_000);
  console.log(JSON.stringify({ msg: 'closed', unsent }));
}, 100);
`,
    );
    const { stdout } = await run(process.execPath, ['--import', 'tsx', script], { cwd: import.meta.dirname });
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; unsent?: number });
    expect(lines.map((l) => l.msg)).toContain('usage events not delivered before shutdown');
    expect(lines.at(-1)).toEqual({ msg: 'closed', unsent: 1 });
  });
});
