/**
 * No ghost slots (issue 13, item 6): an admission that timed out on the proxy's side but
 * ran later in Redis must not hold the tenant's concurrency slot. A private redis-server
 * is slowed with DEBUG SLEEP so the admission misses its deadline (the request goes on,
 * fail_open) and runs when the server wakes; afterwards the tenant (max_concurrent 1) must
 * hold no slot and be admitted again, not refused until the slot's expiry.
 */
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/schema.js';
import { createStore } from '../../src/store/index.js';
import { Metrics } from '../../src/metrics.js';
import { startFakeUpstream } from '../helpers/fake-upstream.js';
import { startReplica } from '../helpers/replica.js';
import { KEYS, baseConfig, startHarness, type Harness } from '../helpers/harness.js';
import { PrivateRedis, eventually, freePort } from '../store/private-redis.js';

const PREFIX = 'lk-sec-ghost:';
const SLOTS = `${PREFIX}{acme}:slots`;

let server: PrivateRedis;
let h: Harness;
let admin: Redis;

beforeAll(async () => {
  server = new PrivateRedis(await freePort());
  await server.start();
  admin = new Redis(server.url);
  h = await startHarness({
    reply: { kind: 'json', body: { choices: [], usage: { prompt_tokens: 1, completion_tokens: 1 } } },
    config: (base) => {
      const plans = base.plans as Record<string, Record<string, unknown>>;
      return {
        ...base,
        store: { redis: server.url, key_prefix: PREFIX, timeout_ms: 300 },
        on_store_error: 'fail_open',
        plans: {
          ...plans,
          free: { ...plans.free, rate_limits: { requests_per_minute: 1000, max_concurrent: 1 } },
        },
      };
    },
  });
});

afterAll(async () => {
  await h.close();
  admin.disconnect();
  await server.stop();
});

async function chat(): Promise<number> {
  const res = await request(`${h.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.body.text();
  return res.statusCode;
}

describe('an admission that timed out on the proxy but ran later in Redis', () => {
  it('holds no concurrency slot once Redis has caught up, and the tenant is admitted again', async () => {
    // Warm up: scripts loaded, one request admitted and settled.
    await eventually(async () => (await chat()) === 200);
    await eventually(async () => (await admin.zcard(SLOTS)) === 0);

    const sleeper = new Redis(server.url);
    const asleep = sleeper.debug('SLEEP', '1.5');
    await new Promise((r) => setTimeout(r, 50));
    // The admission misses its 300 ms deadline; fail_open lets the request through.
    expect(await chat()).toBe(200);
    await asleep;
    sleeper.disconnect();

    // Redis has now run the late admission; its slot must be gone (released, not left to
    // expire after the upstream timeout plus a minute).
    await eventually(async () => (await admin.zcard(SLOTS)) === 0, 40);
    expect(await admin.zcard(SLOTS)).toBe(0);
    expect(await chat()).toBe(200);
  });
});

describe('a client that hangs up while its admission is in Redis', () => {
  it('leaves no slot behind: the tenant (max_concurrent 1) is admitted again', async () => {
    await eventually(async () => (await chat()) === 200);
    await eventually(async () => (await admin.zcard(SLOTS)) === 0);
    const sleeper = new Redis(server.url);
    // Shorter than the 300 ms store deadline: the admission succeeds, after the client left.
    const asleep = sleeper.debug('SLEEP', '0.25');
    await new Promise((r) => setTimeout(r, 20));
    const leaving = new AbortController();
    const sent = request(`${h.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      signal: leaving.signal,
      headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 80));
    leaving.abort();
    await sent;
    await asleep;
    sleeper.disconnect();
    await eventually(async () => h.accessLogs().some((l) => l.outcome === 'client_aborted'));
    // Before the fix the slot stayed, refreshed by the heartbeat, and every later request
    // was refused for concurrency.
    await eventually(async () => (await admin.zcard(SLOTS)) === 0, 40);
    expect(await admin.zcard(SLOTS)).toBe(0);
    expect(await admin.hlen(`${PREFIX}{acme}:resv`)).toBe(0);
    expect(await chat()).toBe(200);
  });
});

/** A store built as the proxy builds it, on the private Redis, with a short slot TTL. */
function replicaStore(prefix: string) {
  const config = parseConfig({
    ...baseConfig('http://127.0.0.1:9'),
    store: { redis: server.url, key_prefix: prefix, timeout_ms: 2000 },
    slot_ttl_ms: 600,
  });
  const silent = { warn() {}, info() {}, error() {} };
  return createStore(config, { metrics: new Metrics(100), logger: silent });
}

function admitOne(store: ReturnType<typeof replicaStore>, requestId: string) {
  return store.admit({
    tenant: 'acme',
    requestId,
    now: Date.now(),
    limits: { max_concurrent: 1 },
    promptTokens: 0,
    maxOutput: 0,
    inputPrice: 0,
    outputPrice: 0,
    slotTtlMs: 600,
  });
}

describe('slot expiry', () => {
  it("frees a crashed replica's slot within the short slot TTL", async () => {
    const crashed = replicaStore('lk-sec-ghost-crash:');
    expect((await admitOne(crashed, 'r-crashed')).ok).toBe(true);
    await crashed.close(); // never settles: its heartbeat stops as a killed process's would
    const survivor = replicaStore('lk-sec-ghost-crash:');
    try {
      expect((await admitOne(survivor, 'r-refused')).ok).toBe(false);
      let admitted = false;
      for (let i = 0; i < 60 && !admitted; i++) {
        await new Promise((r) => setTimeout(r, 50));
        admitted = (await admitOne(survivor, `r-${i}`)).ok;
      }
      expect(admitted).toBe(true);
    } finally {
      await survivor.close();
    }
  });

  it('keeps the slot of a request still in flight past the TTL (the heartbeat)', async () => {
    const live = replicaStore('lk-sec-ghost-live:');
    const other = replicaStore('lk-sec-ghost-live:');
    try {
      const first = await admitOne(live, 'r-long');
      expect(first.ok).toBe(true);
      // Four TTLs later the long request still holds its slot.
      await new Promise((r) => setTimeout(r, 2400));
      expect((await admitOne(other, 'r-second')).ok).toBe(false);
      if (first.ok) await live.settle(first.reservation, { tokens: 0, usd: 0 });
      expect((await admitOne(other, 'r-third')).ok).toBe(true);
    } finally {
      await live.close();
      await other.close();
    }
  });
});

describe('a replica killed with a request in flight', () => {
  it("frees the tenant's slot within the default slot TTL, not the upstream timeout plus a minute", async () => {
    const upstream = await startFakeUpstream({ kind: 'hang' });
    const base = baseConfig(upstream.url);
    const plans = base.plans as Record<string, Record<string, unknown>>;
    const config = {
      ...base,
      upstream: { ...(base.upstream as object), timeout_ms: 120_000 },
      store: { redis: server.url, key_prefix: 'lk-sec-ghost-kill:', timeout_ms: 2000 },
      plans: { ...plans, free: { ...plans.free, rate_limits: { max_concurrent: 1 } } },
    };
    const doomed = await startReplica(config);
    const survivor = await startReplica(config);
    try {
      // The request hangs upstream, holding acme's one slot, and its replica dies.
      void request(`${doomed.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
      }).catch(() => undefined);
      const slots = 'lk-sec-ghost-kill:{acme}:slots';
      await eventually(async () => (await admin.zcard(slots)) === 1);
      doomed.child.kill('SIGKILL');
      upstream.reply({
        kind: 'json',
        body: { choices: [], usage: { prompt_tokens: 1, completion_tokens: 1 } },
      });

      const ask = async () => {
        const res = await request(`${survivor.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
          body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
        });
        await res.body.text();
        return res.statusCode;
      };
      expect(await ask()).toBe(429);
      // Bounded: 25 s, past the 15 s default TTL; the old TTL was 120 s + 60 s.
      let status = 429;
      for (let i = 0; i < 50 && status === 429; i++) {
        await new Promise((r) => setTimeout(r, 500));
        status = await ask();
      }
      expect(status).toBe(200);
    } finally {
      doomed.child.kill('SIGKILL');
      survivor.child.kill('SIGTERM');
      await upstream.close();
    }
  }, 60_000);
});
