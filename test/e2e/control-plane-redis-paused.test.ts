/**
 * A control plane whose Redis is connected but does not answer (paused, swapping, a network
 * path that drops packets). Its client had no command timeout: every config change committed
 * and then waited on its PUBLISH for good, so the operator never got the answer, and a key
 * created that way was issued to nobody (found by review). Now a command gives up after 2 s:
 * the change answers, and the proxies get it by polling.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../control-plane/src/main.js';
import { call } from '../../control-plane/test/helpers/http.js';
import { startSeeded, stopSeeded, type Seeded } from '../../control-plane/test/helpers/seeded.js';
import { PrivateRedis, freePort } from '../../proxy/test/store/private-redis.js';

let redis: PrivateRedis;
let client: Redis;
let s: Seeded;
let cp: RunningControlPlane;

beforeAll(async () => {
  redis = new PrivateRedis(await freePort());
  await redis.start();
  client = new Redis(redis.url);
  s = await startSeeded({ extra: { REDIS_URL: redis.url, LANEKEEPER_LEDGER_ENABLED: 'false' } });
  cp = s.cp;
});

afterAll(async () => {
  await client?.call('CLIENT', 'UNPAUSE').catch(() => undefined);
  client?.disconnect();
  await stopSeeded(s ?? {});
  await redis?.stop();
});

describe('a control plane whose Redis stops answering', () => {
  it('still answers a config change, and issues the key it created', async () => {
    await client.call('CLIENT', 'PAUSE', '8000', 'ALL');
    const started = Date.now();
    const created = await call(cp.url, 'POST', '/v1/tenants', {
      token: s.t.adminToken,
      body: { id: 'paused', plan: 'free' },
    });
    const keyed = await call(cp.url, 'POST', '/v1/tenants/paused/keys', { token: s.t.adminToken });
    const elapsed = Date.now() - started;
    expect(created.status).toBe(201);
    expect(keyed.status).toBe(201);
    expect(keyed.body.key).toEqual(expect.any(String));
    // Both answered before Redis came back (paused for 8 s).
    expect(elapsed).toBeLessThan(7_000);
    const metrics = await call(cp.url, 'GET', '/metrics', { token: s.t.adminToken });
    expect(String(metrics.body)).toMatch(/lanekeeper_cp_config_publish_failures_total \d*[1-9]/);
  });
});
