/**
 * Child process for the two-process exactness test: opens a Redis store on the prefix it is
 * given, says "ready", waits for "go" on stdin, fires COUNT admissions in parallel and
 * prints how many were admitted as JSON.
 */
import { createInterface } from 'node:readline';
import { createRedisStore } from '../../src/store/redis.js';
import { admitRequest } from '../../src/store/store-fixtures.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};

const store = createRedisStore({
  redis: env('LK_REDIS_URL'),
  key_prefix: env('LK_PREFIX'),
  cluster: false,
  timeout_ms: 5_000,
  usage_stream: 'usage',
  usage_stream_maxlen: 1_000,
  retention_hours: 48,
});
const tenant = env('LK_TENANT');
const count = Number(env('LK_COUNT'));
const limits = { requests_per_minute: Number(env('LK_RPM')) };

if (!(await store.healthy())) throw new Error('redis not reachable');
process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() === 'go') break;
}
const results = await Promise.all(
  Array.from({ length: count }, () => store.admit(admitRequest(tenant, limits))),
);
process.stdout.write(`${JSON.stringify({ admitted: results.filter((r) => r.ok).length })}\n`);
await store.close();
process.exit(0);
