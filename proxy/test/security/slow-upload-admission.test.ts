/**
 * A body uploaded slowly must not shed its request's limits. Admission ran with the time the
 * headers arrived: for a body longer in coming than slot_ttl_ms (15 s by default; a single
 * pause under body_idle_timeout_ms will do), the slot and the tokens/budget reservation
 * expired as they were written, and the next admission pruned them while the request ran.
 * A tenant with max_concurrent 1 then ran two requests at once, and booked 1.84 times its
 * tokens_per_hour. Both stores, the same answers.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { chatCompletion } from '../helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';
import { eventually, unlinkPrefix } from '../store/private-redis.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = new Redis(REDIS_URL);
const prefixes: string[] = [];
afterAll(async () => {
  for (const prefix of prefixes) await unlinkPrefix(redis, prefix);
  redis.disconnect();
});

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const SLOT_TTL_MS = 1_000;
const CHAT = { model: 'small-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 900 };

function config(limits: Record<string, number>, store: string) {
  return (base: Record<string, unknown>) => {
    const plans = base.plans as Record<string, Record<string, unknown>>;
    const key_prefix = `slow-upload-${randomUUID().slice(0, 8)}:`;
    if (store === 'redis') prefixes.push(key_prefix);
    return {
      ...base,
      ...(store === 'redis' ? { store: { redis: REDIS_URL, key_prefix, timeout_ms: 2_000 } } : {}),
      slot_ttl_ms: SLOT_TTL_MS,
      plans: { ...plans, free: { ...plans.free, rate_limits: limits } },
    };
  };
}

async function chat(url: string, pauseMs = 0) {
  const text = JSON.stringify(CHAT);
  // The first bytes, a pause longer than slot_ttl_ms, then the rest.
  async function* slowly() {
    yield text.slice(0, 10);
    await sleep(pauseMs);
    yield text.slice(10);
  }
  const res = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
    body: pauseMs > 0 ? Readable.from(slowly()) : text,
  });
  return { status: res.statusCode, body: await res.body.text() };
}

describe.each(['memory', 'redis'])('a request whose body took longer than slot_ttl_ms, %s store', (store) => {
  it.each([
    ['max_concurrent', { max_concurrent: 1 }, /concurrent requests/],
    ['tokens_per_hour', { tokens_per_hour: 1_000 }, /tokens per hour/],
  ])('still holds its %s while it runs', async (_limit, limits, message) => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    h = await startHarness({
      reply: {
        kind: 'json',
        until: held,
        body: chatCompletion('small-model', 'ok', { prompt_tokens: 20, completion_tokens: 900 }),
      },
      config: config(limits, store),
    });
    const slow = chat(h.proxy.url, 1.5 * SLOT_TTL_MS);
    try {
      await eventually(() => h!.upstream.received.length === 1);
      // Past a heartbeat or two: the slot kept alive is the one admission wrote.
      await sleep(SLOT_TTL_MS / 2);
      const second = await chat(h.proxy.url);
      expect(second.status, second.body).toBe(429);
      expect(JSON.parse(second.body).error.message).toMatch(message);
      expect(h.upstream.received).toHaveLength(1);
    } finally {
      release();
    }
    expect((await slow).status).toBe(200);
  });
});
