// Exactness across replicas: two separate processes share one Redis and fire 100 admissions
// each, in parallel, at a limit of 50 per minute. Exactly 50 may pass in total.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { freshTenant } from '../../src/store/store-fixtures.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `lk-test-${randomUUID().slice(0, 8)}:`;
const worker = fileURLToPath(new URL('./admit-worker.ts', import.meta.url));

function startWorker(tenant: string): {
  child: ChildProcess;
  lines: AsyncIterator<string>;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', worker], {
    env: {
      ...process.env,
      LK_REDIS_URL: REDIS_URL,
      LK_PREFIX: prefix,
      LK_TENANT: tenant,
      LK_COUNT: '100',
      LK_RPM: '50',
    },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return { child, lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator]() };
}

async function nextLine(lines: AsyncIterator<string>): Promise<string> {
  const { value, done } = await lines.next();
  if (done) throw new Error('worker ended without output');
  return value;
}

afterAll(async () => {
  const admin = new Redis(REDIS_URL);
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length > 0) await admin.unlink(...keys);
  await admin.quit();
});

describe('two proxy processes on one Redis', () => {
  it('200 parallel admissions from two processes against 50 per minute admit exactly 50', async () => {
    const tenant = freshTenant();
    const workers = [startWorker(tenant), startWorker(tenant)];
    for (const w of workers) expect(await nextLine(w.lines)).toBe('ready');
    for (const w of workers) w.child.stdin?.write('go\n');
    const counts = await Promise.all(
      workers.map(async (w) => (JSON.parse(await nextLine(w.lines)) as { admitted: number }).admitted),
    );
    expect(counts[0]! + counts[1]!).toBe(50);
    const admin = new Redis(REDIS_URL);
    // The buckets' sum, kept beside them (admit.lua).
    expect(Number(await admin.hget(`${prefix}{${tenant}}:rps`, 'n'))).toBe(50);
    await admin.quit();
  }, 60_000);
});
