/**
 * A stream holds its concurrency slot for as long as it runs, through the real proxy, on the
 * memory and the Redis store. `timeout_ms` is undici's idle timeout between chunks, so a
 * stream that keeps sending outlives it; the heartbeat used to stop refreshing a request
 * after max(timeout_ms) + 60 s, and a tenant with max_concurrent: 1 then got a second
 * stream admitted beside the first. That limit is at least a minute whatever the config, so
 * rather than stream for a minute these tests move the monotonic clock the proxy reads
 * (node:perf_hooks, which the heartbeat measures a request's age with) ten minutes forward
 * mid-stream, then keep streaming for several slot TTLs of real time. A slot a process can no
 * longer refresh (it was killed) still expires within the slot TTL.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { request, type Dispatcher } from 'undici';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { collectGarbage } from '../../src/store/store-fixtures.js';
import { chatCompletion, chatStream } from '../helpers/fake-upstream.js';
import { startReplica } from '../helpers/replica.js';
import { KEYS, baseConfig, startHarness } from '../helpers/harness.js';
import { unlinkPrefix } from './private-redis.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Short, so an unrefreshed slot expires within a fraction of a second. */
const SLOT_TTL_MS = 300;
const redis = new Redis(REDIS_URL);
const prefixes: string[] = [];

afterAll(async () => {
  for (const prefix of prefixes) await unlinkPrefix(redis, prefix);
  redis.disconnect();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * An upstream whose streams send a chunk every 100 ms (well inside the 1 s idle timeout)
 * until the test ends them; a request that does not stream gets a completion at once.
 */
async function startStreamingUpstream(): Promise<{
  url: string;
  endStreams(): void;
  close(): Promise<void>;
}> {
  const [head, piece, ...tail] = chatStream(
    'small-model',
    ['tick'],
    { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 },
    true,
  ) as [string, string, ...string[]];
  const streams = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      if (!(JSON.parse(raw || '{}') as { stream?: boolean }).stream) {
        const body = JSON.stringify(
          chatCompletion('small-model', 'ok', { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 }),
        );
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(head);
      const ticks = setInterval(() => res.write(piece), 100);
      streams.add(res);
      res.on('close', () => {
        clearInterval(ticks);
        streams.delete(res);
      });
      res.on('finish', () => clearInterval(ticks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    endStreams() {
      for (const res of streams) res.end(tail.join(''));
      streams.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** acme on a plan of one concurrent request, behind `upstreamUrl`, on the given store. */
function slotConfig(upstreamUrl: string, store: unknown, slotTtlMs = SLOT_TTL_MS): Record<string, unknown> {
  const base = baseConfig(upstreamUrl);
  const plans = base.plans as Record<string, Record<string, unknown>>;
  return {
    ...base,
    upstream: { ...(base.upstream as object), timeout_ms: 1_000 },
    ...(store === undefined ? {} : { store }),
    slot_ttl_ms: slotTtlMs,
    plans: { ...plans, free: { ...plans.free, rate_limits: { max_concurrent: 1 } } },
  };
}

function redisStore(): Record<string, unknown> {
  const prefix = `lk-test-long-${randomUUID().slice(0, 8)}:`;
  prefixes.push(prefix);
  return { redis: REDIS_URL, key_prefix: prefix, timeout_ms: 2_000 };
}

function chatRequest(url: string, stream: boolean): Promise<Dispatcher.ResponseData> {
  return request(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
    body: JSON.stringify({ stream, messages: [{ role: 'user', content: 'hi' }] }),
  });
}

/** Status of a one-shot request (the body read to its end). */
async function chat(url: string): Promise<number> {
  const res = await chatRequest(url, false);
  await res.body.text();
  return res.statusCode;
}

/** Opens a stream, waits for its first bytes, and reads the rest in the background. */
async function openStream(url: string): Promise<{ status: number; text: Promise<string> }> {
  const res = await chatRequest(url, true);
  const chunks = res.body[Symbol.asyncIterator]();
  const first = await chunks.next();
  const text = (async () => {
    let all = first.done ? '' : String(first.value);
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) all += String(next.value);
    return all;
  })();
  return { status: res.statusCode, text };
}

describe.each([
  { name: 'memory', store: () => undefined },
  { name: 'redis', store: redisStore },
])('a stream longer than max(timeout_ms) + 60 s, $name store', ({ store }) => {
  it('holds its slot: a second request is refused for the whole stream and admitted once it ends', async () => {
    const upstream = await startStreamingUpstream();
    const h = await startHarness({ config: () => slotConfig(upstream.url, store()) });
    const realNow = performance.now.bind(performance);
    let skippedMs = 0;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => realNow() + skippedMs);
    try {
      const first = await openStream(h.proxy.url);
      expect(first.status).toBe(200);
      expect(await chat(h.proxy.url)).toBe(429);

      // Ten minutes "pass" for the heartbeat, past the old limit (61 s with this 1 s
      // timeout_ms), while the stream goes on sending.
      skippedMs = 10 * 60_000;
      // Ten slot TTLs of real time, each ending with a refused request: a slot no longer
      // refreshed would have expired by the second. A collection each time shows the
      // running request's reservation is reachable (the heartbeat holds it weakly).
      for (let i = 0; i < 10; i++) {
        collectGarbage();
        await sleep(SLOT_TTL_MS);
        expect(await chat(h.proxy.url)).toBe(429);
      }

      upstream.endStreams();
      expect(await first.text).toContain('data: [DONE]');
      expect(await chat(h.proxy.url)).toBe(200);
    } finally {
      await h.close();
      clock.mockRestore();
      await upstream.close();
    }
  });
});

describe('a replica killed in the middle of a stream, redis store', () => {
  it("frees the stream's slot within the slot TTL: the heartbeat died with it", async () => {
    const upstream = await startStreamingUpstream();
    const config = slotConfig(upstream.url, redisStore(), 600);
    const doomed = await startReplica(config);
    const h = await startHarness({ config: () => config });
    try {
      const first = await openStream(doomed.url);
      expect(first.status).toBe(200);
      expect(await chat(h.proxy.url)).toBe(429);
      doomed.child.kill('SIGKILL');
      await first.text.catch(() => undefined);

      let status = 429;
      for (let i = 0; i < 50 && status === 429; i++) {
        await sleep(100);
        status = await chat(h.proxy.url);
      }
      expect(status).toBe(200);
    } finally {
      doomed.child.kill('SIGKILL');
      await h.close();
      await upstream.close();
    }
  });
});
