// Issue 16: the finish calls' replay guard holds a few marks per proxy, not one id per
// request, so a tenant's Redis state stays bounded at any rate; and a call applied twice
// (its reply lost, the command resent) still counts once; and a dead proxy's marks expire.
import { randomUUID } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisStoreConfig } from '../../src/config/schema.js';
import { createRedisStore } from '../../src/store/redis.js';
import { admitRequest, freshTenant, usageEvent } from '../../src/store/store-fixtures.js';
import { PrivateRedis, commandCalls, eventually, freePort, unlinkPrefix } from './private-redis.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `lk-marks-${randomUUID().slice(0, 8)}:`;

function config(url: string, over: Partial<RedisStoreConfig> = {}): RedisStoreConfig {
  return {
    redis: url,
    key_prefix: prefix,
    cluster: false,
    timeout_ms: 2_000,
    usage_stream: 'usage',
    // The stream is global, not the tenant's: kept short so 100,000 events do not fill Redis.
    usage_stream_maxlen: 1_000,
    retention_hours: 48,
    ...over,
  };
}

const admin = new Redis(REDIS_URL);
afterAll(async () => {
  await unlinkPrefix(admin, prefix);
  await admin.quit();
});

/** Bytes of every key of the tenant (MEMORY USAGE, every element counted). */
async function tenantBytes(client: Redis, tenant: string): Promise<number> {
  const keys = await client.keys(`${prefix}{${tenant}}:*`);
  let bytes = 0;
  for (const key of keys) bytes += Number(await client.memory('USAGE', key, 'SAMPLES', '0'));
  return bytes;
}

const marksKey = (tenant: string): string => `${prefix}{${tenant}}:marks`;

describe('the replay marks of finish calls', () => {
  it("keep a tenant's keys under 4 KiB after 100,000 admitted, settled and recorded requests", async () => {
    const store = createRedisStore(config(REDIS_URL));
    const tenant = freshTenant();
    const limits = {
      requests_per_minute: 10_000_000,
      tokens_per_hour: 10_000_000_000,
      max_concurrent: 10_000,
    };
    const start = Date.UTC(2026, 11, 5, 10, 0, 0);
    // 1,000 per simulated second over 100 seconds (a 1,000 req/s tenant); every request ends.
    for (let second = 0; second < 100; second++) {
      const admitted = await Promise.all(
        Array.from({ length: 1_000 }, (_, i) =>
          store.admit(
            admitRequest(tenant, limits, {
              now: start + second * 1_000 + i,
              inputPrice: 1e-6,
              outputPrice: 2e-6,
            }),
          ),
        ),
      );
      await Promise.all(
        admitted.flatMap((a) => {
          if (!a.ok) throw new Error('refused');
          const ts = new Date(a.reservation.at).toISOString();
          return [
            store.settle(a.reservation, { tokens: 30, usd: 0.00005 }),
            store.record(usageEvent(tenant, { request_id: a.reservation.requestId, ts })),
          ];
        }),
      );
    }
    // Every request counted once.
    const total = await store.allTime(tenant);
    expect(total.requests).toBe(100_000);
    expect(total.input_tokens).toBe(100_000 * usageEvent(tenant).input_tokens);
    // Marks only for calls not acknowledged yet: the last few.
    expect(await admin.zcard(marksKey(tenant))).toBeLessThanOrEqual(64);
    const bytes = await tenantBytes(admin, tenant);
    expect(bytes).toBeLessThanOrEqual(4_096);
    // A clean shutdown acknowledges the last calls too.
    await store.close();
    expect(await admin.exists(marksKey(tenant))).toBe(0);
  }, 180_000);

  it('forget the mark of a call once its answer is acknowledged by the next call', async () => {
    const store = createRedisStore(config(REDIS_URL));
    const tenant = freshTenant();
    for (let i = 0; i < 5; i++) await store.record(usageEvent(tenant));
    // Only the last call's mark waits for its acknowledgement.
    const marks = await admin.zrange(marksKey(tenant), '0', '-1');
    expect(marks).toHaveLength(1);
    expect(marks[0]).toMatch(/^[\w-]{8}:5$/);
    expect((await store.allTime(tenant)).requests).toBe(5);
    await store.close();
    expect(await admin.exists(marksKey(tenant))).toBe(0);
  });

  it("of a proxy that died expire after their TTL, and other proxies' calls prune them", async () => {
    const tenant = freshTenant();
    // A proxy that dies after its call: the store is never closed, its mark never acknowledged.
    const dead = createRedisStore(config(REDIS_URL), { replayMarkTtlMs: 1_000 });
    await dead.record(usageEvent(tenant));
    const [left] = await admin.zrange(marksKey(tenant), '0', '-1');
    expect(left).toBeDefined();
    const pttl = await admin.pttl(marksKey(tenant));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(1_000);
    // Alone, the key expires with it.
    await eventually(async () => (await admin.exists(marksKey(tenant))) === 0, 100);

    // Beside a live proxy (whose marks keep the key alive), the dead one's mark is pruned.
    const dead2 = createRedisStore(config(REDIS_URL), { replayMarkTtlMs: 1_000 });
    await dead2.record(usageEvent(tenant));
    const live = createRedisStore(config(REDIS_URL));
    await live.record(usageEvent(tenant));
    expect(await admin.zcard(marksKey(tenant))).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await live.record(usageEvent(tenant));
    const marks = await admin.zrange(marksKey(tenant), '0', '-1');
    expect(marks).toHaveLength(1);
    expect(marks[0]!.endsWith(':2')).toBe(true);
    expect((await live.allTime(tenant)).requests).toBe(4);
    await live.close();
    // Only now: a close would have acknowledged their marks.
    await dead.close();
    await dead2.close();
  }, 20_000);
});

/**
 * A TCP relay to a Redis server that can lose replies: while `losing`, what the server
 * answers is dropped and the client's connection cut, as a network failure after the
 * command reached Redis. The client then resends the command on its new connection.
 */
class LossyRelay {
  losing = false;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  constructor(private readonly target: number) {
    this.server = createServer((client) => {
      const upstream = connect(this.target, '127.0.0.1');
      this.sockets.add(client).add(upstream);
      client.on('data', (chunk) => upstream.write(chunk));
      upstream.on('data', (chunk) => {
        if (!this.losing) {
          client.write(chunk);
          return;
        }
        this.losing = false;
        client.destroy();
        upstream.destroy();
      });
      const close = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', close).on('error', close);
      upstream.on('close', close).on('error', close);
    });
  }
  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as { port: number }).port;
  }
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('a finish call whose reply is lost', () => {
  let server: PrivateRedis;
  let relay: LossyRelay;
  let url: string;
  let direct: Redis;
  beforeAll(async () => {
    server = new PrivateRedis(await freePort());
    await server.start();
    direct = new Redis(server.url);
    relay = new LossyRelay(Number(new URL(server.url).port));
    url = `redis://127.0.0.1:${await relay.listen()}`;
  });
  afterAll(async () => {
    direct.disconnect();
    await relay.close();
    await server.stop();
  });

  it('runs twice in Redis when the client resends it, and counts once', async () => {
    const store = createRedisStore(config(url));
    const tenant = freshTenant();
    const limits = { tokens_per_hour: 1_000_000, max_concurrent: 10 };
    const admitted = await store.admit(admitRequest(tenant, limits));
    if (!admitted.ok) throw new Error('refused');
    const event = usageEvent(tenant, { request_id: admitted.reservation.requestId });
    // Redis learns the script first, so the lost reply is the script's, not a NOSCRIPT.
    await store.record(usageEvent(freshTenant()));
    await direct.config('RESETSTAT');
    relay.losing = true;
    await Promise.all([store.settle(admitted.reservation, { tokens: 300, usd: 0 }), store.record(event)]);
    // The same script call reached Redis twice: before the cut and resent after it.
    const calls = await commandCalls(direct);
    expect(calls.evalsha).toBe(2);
    expect(calls.eval).toBeUndefined();
    expect((await store.allTime(tenant)).requests).toBe(1);
    const stream = await direct.xrange(`${prefix}usage`, '-', '+');
    expect(stream.filter(([, fields]) => fields[1]?.includes(event.request_id))).toHaveLength(1);
    // 300 tokens metered once (this admission's own hold is not use).
    const next = await store.admit(admitRequest(tenant, limits, { maxOutput: 0 }));
    expect(next.state.tokens?.remaining).toBe(1_000_000 - 300);
    await store.close();
  }, 20_000);
});
