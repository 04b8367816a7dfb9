/**
 * The usage event a proxy appends to the Redis stream names the tenant's incarnation when its
 * config gives the tenant one (as the control plane's does), and has no such field when it
 * does not (a hand-written config): the ledger then tells an erased tenant's late events from
 * those of a tenant created again under the same id. A real proxy on a real Redis.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatCompletion } from '../helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const INCARNATION = '6f1c2b9e-4d7a-4f0e-9b1a-3c5d7e9f1a2b';
const prefix = `lk-test-${randomUUID().slice(0, 8)}:`;

let h: Harness;
const redis = new Redis(REDIS_URL);

beforeAll(async () => {
  h = await startHarness({
    reply: {
      kind: 'json',
      body: chatCompletion('small-model', 'ok', { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }),
    },
    config: (base) => ({
      ...base,
      store: { redis: REDIS_URL, key_prefix: prefix, timeout_ms: 2000 },
      // acme has an incarnation, globex (and the rest) none.
      tenants: (base.tenants as Record<string, unknown>[]).map((t) =>
        t.id === 'acme' ? { ...t, incarnation: INCARNATION } : t,
      ),
    }),
  });
});

afterAll(async () => {
  await h?.close();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

async function chat(key: string): Promise<string> {
  const res = await request(`${h.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.body.text();
  expect(res.statusCode).toBe(200);
  return res.headers['x-lanekeeper-request-id'] as string;
}

/** The events in the stream, by request id, once `ids` are all there. */
async function eventsOf(ids: string[]): Promise<Map<string, Record<string, unknown>>> {
  for (let i = 0; i < 200; i++) {
    const entries = await redis.xrange(`${prefix}usage`, '-', '+');
    const events = new Map(
      entries.map(([, fields]) => {
        const event = JSON.parse(fields[1]!) as Record<string, unknown>;
        return [event.request_id as string, event];
      }),
    );
    if (ids.every((id) => events.has(id))) return events;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the usage events did not reach the stream');
}

describe("the usage event and the tenant's incarnation", () => {
  it('carries the incarnation from the config, and omits it for a tenant without one', async () => {
    const withOne = await chat(KEYS.free);
    const without = await chat(KEYS.pro);
    const events = await eventsOf([withOne, without]);

    expect(events.get(withOne)).toMatchObject({ v: 1, tenant: 'acme', tenant_incarnation: INCARNATION });
    expect(events.get(without)).toMatchObject({ v: 1, tenant: 'globex' });
    expect(events.get(without)).not.toHaveProperty('tenant_incarnation');
  });
});
