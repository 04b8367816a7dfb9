/**
 * Child process for the TLS test: opens a Redis store on LK_REDIS_URL (rediss://, with a
 * password) and prints JSON saying whether it is healthy and whether an admission, a
 * record and a read went through. Run with NODE_EXTRA_CA_CERTS naming the test CA, which
 * is how an operator trusts a private CA.
 */
import { createRedisStore } from '../../src/store/redis.js';
import { admitRequest, freshTenant, usageEvent } from '../../src/store/store-fixtures.js';

const store = createRedisStore({
  redis: process.env.LK_REDIS_URL ?? '',
  key_prefix: process.env.LK_PREFIX ?? 'lk-test:',
  cluster: false,
  timeout_ms: 2_000,
  usage_stream: 'usage',
  usage_stream_maxlen: 1_000,
  retention_hours: 48,
});
const out: Record<string, unknown> = { healthy: await store.healthy() };
if (out.healthy) {
  const tenant = freshTenant();
  out.admitted = (await store.admit(admitRequest(tenant, { requests_per_minute: 5 }))).ok;
  const event = usageEvent(tenant);
  await store.record(event);
  out.requests = (await store.currentHour(tenant, Date.parse(event.ts))).requests;
}
process.stdout.write(`${JSON.stringify(out)}\n`);
await store.close();
process.exit(0);
