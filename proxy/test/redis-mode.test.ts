/**
 * Many replicas, one truth: proxies sharing a real Redis (REDIS_URL, default
 * 127.0.0.1:6379) enforce one tenant's limits exactly, whichever replica takes a request,
 * and reservations keep parallel requests from overshooting token and spend caps.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { chatCompletion, startFakeUpstream, type FakeUpstream } from './helpers/fake-upstream.js';
import { baseConfig, KEYS, startHarness, type Harness } from './helpers/harness.js';
import { freePort, PrivateRedis } from './store/private-redis.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const CLI = join(import.meta.dirname, '..', 'bin', 'lanekeeper.js');
const redis = new Redis(REDIS_URL);
const prefixes: string[] = [];

function redisConfig(upstreamUrl: string, plan: Record<string, unknown>): Record<string, unknown> {
  const prefix = `lk-test-${randomUUID().slice(0, 8)}:`;
  prefixes.push(prefix);
  const base = baseConfig(upstreamUrl);
  const plans = base.plans as Record<string, Record<string, unknown>>;
  return {
    ...base, // A generous timeout: on a 2-core machine running the whole suite, event-loop lag alone
    // can pass the 250 ms default, and a timed-out admission fails open.
    store: { redis: REDIS_URL, key_prefix: prefix, timeout_ms: 2000 },
    plans: { ...plans, free: { ...plans.free, ...plan } },
  };
}

afterAll(async () => {
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  redis.disconnect();
});

async function startProcess(config: Record<string, unknown>): Promise<{ url: string; child: ChildProcess }> {
  const dir = await mkdtemp(join(tmpdir(), 'lanekeeper-replica-'));
  await writeFile(
    join(dir, 'config.yaml'),
    stringify({ ...config, listen: '127.0.0.1:0', admin_listen: '127.0.0.1:0' }),
  );
  const child = spawn(process.execPath, [CLI, 'proxy', '--config', join(dir, 'config.yaml')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`replica did not start: ${output}`)), 15_000);
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
      if (process.env.DEBUG_REPLICAS)
        process.stderr.write(
          d
            .toString()
            .split('\n')
            .filter((l) => !l.includes('"msg":"request"'))
            .join('\n'),
        );
      const match = /"listen":"(http:\/\/[^"]+)"/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  });
  return { url, child };
}

const chatBody = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'small-model', messages: [{ role: 'user', content: 'hi' }], ...extra });

describe('two proxy processes on one Redis', () => {
  let upstream: FakeUpstream;
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const child of children) child.kill('SIGTERM');
    await upstream?.close();
  });

  it('admit exactly 50 of 200 parallel requests against a limit of 50 per minute', async () => {
    upstream = await startFakeUpstream({
      kind: 'json',
      body: chatCompletion('small-model', 'ok', { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }),
    });
    const config = redisConfig(upstream.url, { rate_limits: { requests_per_minute: 50 } });
    const replicas = await Promise.all([startProcess(config), startProcess(config)]);
    children.push(...replicas.map((r) => r.child));
    const agent = new Agent({ connections: 100 });
    const statuses = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const res = await request(`${replicas[i % 2]!.url}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: agent,
          headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
          body: chatBody(),
        });
        await res.body.text();
        return res.statusCode;
      }),
    );
    await agent.close();
    expect(statuses.filter((s) => s === 200)).toHaveLength(50);
    expect(statuses.filter((s) => s === 429)).toHaveLength(150);
    expect(upstream.received).toHaveLength(50);
  });
});

describe('caps under parallel load (Redis store)', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  // The upstream spends every token it is allowed: the worst case the proxy reserved.
  const spendItAll = (req: { body: unknown }) => {
    const body = req.body as { max_tokens?: number; max_completion_tokens?: number };
    const output = body.max_completion_tokens ?? body.max_tokens ?? 1000;
    return {
      kind: 'json' as const,
      body: chatCompletion('small-model', 'x', {
        prompt_tokens: 5,
        completion_tokens: output,
        total_tokens: 5 + output,
      }),
    };
  };

  async function burst(harness: Harness, n: number): Promise<number[]> {
    const agent = new Agent({ connections: n });
    const statuses = await Promise.all(
      Array.from({ length: n }, async () => {
        const res = await request(`${harness.proxy.url}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: agent,
          headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
          body: chatBody({ max_tokens: 400 }),
        });
        await res.body.text();
        return res.statusCode;
      }),
    );
    await agent.close();
    return statuses;
  }

  it('never let 100 concurrent requests meter more tokens than tokens_per_hour', async () => {
    h = await startHarness({
      reply: spendItAll,
      config: (base) =>
        redisConfig((base.upstream as { url: string }).url, { rate_limits: { tokens_per_hour: 5000 } }),
    });
    const statuses = await burst(h, 100);
    await h.settled(100);
    const metered = h
      .accessLogs()
      .reduce((sum, l) => sum + ((l.input_tokens as number) ?? 0) + ((l.output_tokens as number) ?? 0), 0);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(5);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(metered).toBeLessThanOrEqual(5000);
  });

  it('never let 100 concurrent requests spend more than budget_usd_per_day, and refuse the rest as budget_exceeded', async () => {
    // small-model costs $2 per 1M output tokens: $0.01 buys 5,000 output tokens.
    h = await startHarness({
      reply: spendItAll,
      config: (base) =>
        redisConfig((base.upstream as { url: string }).url, { rate_limits: { budget_usd_per_day: 0.01 } }),
    });
    const statuses = await burst(h, 100);
    await h.settled(100);
    const spent = h.accessLogs().reduce((sum, l) => sum + ((l.cost_usd as number) ?? 0), 0);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(5);
    expect(spent).toBeLessThanOrEqual(0.01 + 1e-12);
    const refused = await request(`${h.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
      body: chatBody({ max_tokens: 400 }),
    });
    const body = (await refused.body.json()) as { error: { code: string } };
    // What is left of the day budget cannot pay for the 400 output tokens this client caps at.
    expect(refused.statusCode).toBe(429);
    expect(body.error.code).toBe('budget_exceeded');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(86_400);
  });
});

describe('Redis going away under traffic', () => {
  let h: Harness | undefined;
  let privateRedis: PrivateRedis | undefined;
  afterEach(async () => {
    await h?.close();
    await privateRedis?.stop();
    h = undefined;
  });

  const ok = {
    kind: 'json' as const,
    body: chatCompletion('small-model', 'ok', { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 }),
  };
  const send = async (harness: Harness) => {
    const res = await request(`${harness.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
      body: chatBody(),
    });
    return { status: res.statusCode, body: (await res.body.json()) as { error?: { code: string } } };
  };

  it('keeps traffic flowing under fail_open, and every event made meanwhile reaches the stream after Redis returns', async () => {
    privateRedis = new PrivateRedis(await freePort());
    await privateRedis.start();
    h = await startHarness({
      reply: ok,
      config: (base) => ({
        ...redisConfig((base.upstream as { url: string }).url, {
          rate_limits: { requests_per_minute: 1000 },
        }),
        store: { redis: privateRedis!.url, key_prefix: 'lk:', timeout_ms: 200 },
      }),
    });
    expect((await send(h)).status).toBe(200);
    await privateRedis.stop();
    const during = [];
    for (let i = 0; i < 5; i++) during.push((await send(h)).status);
    expect(during).toEqual([200, 200, 200, 200, 200]);
    const ready = await fetch(`${h.proxy.adminUrl}/readyz`);
    expect(((await ready.json()) as { store: { up: boolean } }).store.up).toBe(false);
    await h.settled(6);
    await privateRedis.start();
    const client = new Redis(privateRedis.url);
    try {
      // The private Redis keeps nothing across a restart: what the stream holds afterwards
      // is exactly what the proxy buffered while it was away.
      const ids = new Set(
        h
          .accessLogs()
          .slice(1)
          .map((l) => l.request_id),
      );
      let found: string[] = [];
      for (let i = 0; i < 100 && found.length < 5; i++) {
        const entries = await client.xrange('lk:usage', '-', '+');
        found = entries
          .map(([, fields]) => (JSON.parse(fields[1]!) as { request_id: string }).request_id)
          .filter((id) => ids.has(id));
        if (found.length < 5) await new Promise((r) => setTimeout(r, 100));
      }
      expect(found).toHaveLength(5);
      expect(new Set(found)).toEqual(ids);
    } finally {
      client.disconnect();
    }
  });

  it('refuses with 503 store_unavailable under fail_closed when Redis accepts nothing', async () => {
    const port = await freePort();
    h = await startHarness({
      reply: ok,
      config: (base) => ({
        ...redisConfig((base.upstream as { url: string }).url, {
          rate_limits: { requests_per_minute: 1000 },
        }),
        store: { redis: `redis://127.0.0.1:${port}`, key_prefix: 'lk:', timeout_ms: 200 },
        on_store_error: 'fail_closed',
      }),
    });
    const r = await send(h);
    expect(r.status).toBe(503);
    expect(r.body.error?.code).toBe('store_unavailable');
    expect(h.upstream.received).toHaveLength(0);
    expect((await fetch(`${h.proxy.adminUrl}/readyz`)).status).toBe(503);
  });
});
