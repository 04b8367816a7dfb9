/**
 * A ledger consumer in its own process, so a test can really kill it. With
 * CRASH_AFTER_BATCHES=n it SIGKILLs itself right after the n-th batch commits and before
 * that batch is acknowledged: the worst moment, as a crash or an OOM kill would find it.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createLedgerConsumer } from '../../src/ledger/consumer.js';
import { createMetrics } from '../../src/metrics.js';
import { createPool } from '../../src/stores/postgres.js';

const env = process.env;
const crashAfter = env.CRASH_AFTER_BATCHES ? Number(env.CRASH_AFTER_BATCHES) : undefined;
let batches = 0;

const consumer = createLedgerConsumer({
  redis: new Redis(env.REDIS_URL!, { maxRetriesPerRequest: null }),
  pool: createPool(env.DATABASE_URL!),
  streamKey: env.STREAM!,
  group: env.GROUP!,
  consumer: env.CONSUMER!,
  batch: Number(env.BATCH ?? 50),
  claimIdleMs: 60_000,
  metrics: createMetrics(),
  logger: pino({ level: 'silent' }),
  afterCommit: () => {
    batches++;
    if (crashAfter !== undefined && batches >= crashAfter) process.kill(process.pid, 'SIGKILL');
  },
});
await consumer.start();
process.stdout.write('started\n');
