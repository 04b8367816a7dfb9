/**
 * The control plane's entry points, imported by the lanekeeper CLI
 * (`npx lanekeeper control-plane` and `npx lanekeeper migrate`):
 *
 *   startControlPlane(env) validates the environment, refuses to run on a schema that is not
 *   current (the embedded database, used without DATABASE_URL, is migrated on the spot),
 *   connects PostgreSQL, Redis and (optionally) Qdrant, starts the usage ledger and
 *   the price-switch timer, and listens. `close()` stops everything it started.
 *   migrate(env) applies the pending SQL migrations.
 */
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createOutageLog, errorSummary, logShape, settledWithin } from '@lanekeeper/contract';
import type pg from 'pg';
import { pino, type Logger } from 'pino';
import { buildApp } from './app.js';
import { startControlPlaneTracing } from './tracing.js';
import { createConfigPublisher } from './changes.js';
import { loadConfig, loadMigrateConfig, type ControlPlaneConfig } from './config.js';
import { EMBEDDED_POOL_MAX, startEmbeddedDatabase } from './embedded-db.js';
import { createLedgerConsumer, type LedgerConsumer } from './ledger/consumer.js';
import { createMetrics } from './metrics.js';
import { assertSchemaCurrent, runMigrations } from './migrate.js';
import { startPriceSwitch } from './price-switch.js';
import { usageStreamKey } from './redis-layout.js';
import { createPool } from './stores/postgres.js';
import { createQdrantVectorStore } from './stores/qdrant.js';

export { loadConfig } from './config.js';
export type { ControlPlaneConfig } from './config.js';
export { ControlPlaneConfigError, SchemaNotCurrentError } from './errors.js';

/** How long one Redis command may take (each is a key or two; a blocked Redis answers none). */
const REDIS_COMMAND_TIMEOUT_MS = 2_000;

/** A running control plane. */
export interface RunningControlPlane {
  /** Base URL, e.g. http://127.0.0.1:8081 (the real port when PORT=0). */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts the control plane. Throws ControlPlaneConfigError (every bad variable named) or
 * SchemaNotCurrentError (run `npx lanekeeper migrate`) before opening any port.
 */
export async function startControlPlane(env: NodeJS.ProcessEnv = process.env): Promise<RunningControlPlane> {
  const config = loadConfig(env);
  const logger = pino({
    ...logShape('lanekeeper-control-plane'),
    level: config.logLevel,
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: config.logLevel === 'debug' ? pino.stdSerializers.err : errorSummary },
  });
  const database = await openDatabase(config, logger);
  const pool = database.pool;
  try {
    await assertSchemaCurrent(pool);
  } catch (error) {
    await database.close();
    throw error;
  }
  const tracing = await startControlPlaneTracing(env, logger);

  // No offline queue: while Redis is away, commands fail at once (readyz says so, publishes are
  // counted and left to the proxies' polling) instead of piling up behind a reconnect. And a
  // command timeout, for a Redis connected but not answering: without one, every config
  // change committed and then waited on its PUBLISH for good.
  const redis = config.redisUrl
    ? new Redis(config.redisUrl, {
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
        commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      })
    : undefined;
  // The ledger's reads block for their own while (XREADGROUP BLOCK): no command timeout.
  const ledgerRedis = redis?.duplicate({ maxRetriesPerRequest: null, commandTimeout: undefined });
  const redisClients = [redis, ledgerRedis].filter((r): r is Redis => r !== undefined);
  for (const r of redisClients) r.on('error', (err) => logger.debug({ err }, 'redis connection error'));
  if (redis) {
    // Both clients reach the same server: the main one reports its outages (one warning,
    // a summary a minute, one line when it is back), ioredis's reconnect errors at debug.
    const outage = createOutageLog(logger, 'redis');
    redis.on('error', (err) => outage.failed(err));
    redis.on('ready', () => outage.succeeded());
  }
  if (redis) {
    await Promise.race([once(redis, 'ready'), delay(2000)]).catch(() => undefined);
    if (redis.status !== 'ready') {
      logger.warn(
        {},
        'Redis is not reachable yet: config changes are not pushed and usage is not booked until it is',
      );
    }
  } else {
    logger.info(
      {},
      'REDIS_URL is not set: proxies get config changes by polling and post usage to /v1/usage-events',
    );
  }
  const metrics = createMetrics();
  // Without Redis there is no channel to announce on; proxies' polls pick up every version.
  const publisher = redis
    ? createConfigPublisher(redis, config.keyPrefix, logger, metrics)
    : { publish: async () => {} };
  const priceSwitch = startPriceSwitch(pool, publisher, logger);
  const vectors = config.qdrant
    ? createQdrantVectorStore({
        url: config.qdrant.url,
        apiKey: config.qdrant.apiKey,
        mode: config.vectorMode,
        templates: config.collectionTemplates,
        logger,
      })
    : undefined;

  let ledger: LedgerConsumer | undefined;
  if (config.ledger.enabled && redis && ledgerRedis) {
    ledger = createLedgerConsumer({
      redis: ledgerRedis,
      statsRedis: redis,
      pool,
      streamKey: usageStreamKey(config.keyPrefix, config.usageStream),
      group: config.ledger.group,
      consumer: config.ledger.consumer,
      batch: config.ledger.batch,
      claimIdleMs: config.ledger.claimIdleMs,
      metrics,
      logger,
      traceBatch: tracing?.traceBatch,
    });
    await ledger.start();
  }

  const app = await buildApp({
    config,
    pool,
    redis,
    publisher,
    metrics,
    logger,
    vectors,
    priceSwitch,
    ledger,
    tracing,
  });
  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await Promise.allSettled([ledger?.close(), tracing?.shutdown()]);
    await database.close();
    priceSwitch.stop();
    for (const r of redisClients) r.disconnect();
    throw error;
  }
  // Counted for the shutdown's log line: what was in flight, and how much of it finished.
  let inFlight = 0;
  app.server.on('request', (_request: IncomingMessage, response: ServerResponse) => {
    inFlight++;
    response.once('close', () => inFlight--);
  });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  logger.info(
    // Whether the ledger runs, not whether it is configured: it needs Redis too.
    { port, vector_mode: vectors?.mode ?? 'off', ledger: ledger !== undefined },
    'control plane listening',
  );

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      (closing ??= (async () => {
        const started = performance.now();
        const waiting = inFlight;
        const graceMs = config.shutdownGraceMs;
        logger.info({ in_flight: waiting, grace_ms: graceMs }, 'shutting down: draining in-flight requests');
        // Bounded: a request stuck on a database that does not answer held the shutdown for
        // as long as that lasted (over 80 s seen), past any orchestrator's patience.
        // A failed close still ends the wait, as it did: the stop line comes regardless.
        const drained = app.close().catch(() => undefined);
        if (!(await settledWithin(drained, graceMs))) {
          app.server.closeAllConnections();
          await settledWithin(drained, 1_000);
        }
        const cut = inFlight;
        priceSwitch.stop();
        // The batch in flight is committed and acknowledged, or left pending for the next start.
        await ledger?.close();
        await tracing?.shutdown();
        // quit() flushes politely but would wait forever on a Redis that is down.
        await Promise.allSettled(
          redisClients.map((r) => (r.status === 'ready' ? r.quit() : Promise.resolve(r.disconnect()))),
        );
        // A query stuck on an unanswering database keeps its client checked out, and the
        // pool's end waits for it.
        await settledWithin(
          database.close().catch(() => undefined),
          cut > 0 ? 1_000 : graceMs,
        );
        logger.info(
          { drained: waiting - cut, cut, drain_ms: Math.round(performance.now() - started) },
          'control plane stopped',
        );
      })()),
  };
}

/**
 * The pool for DATABASE_URL, or, without it, an embedded PGlite in the data directory, migrated
 * on the spot: a newcomer has no separate migrate step to forget.
 */
async function openDatabase(
  config: ControlPlaneConfig,
  logger: Logger,
): Promise<{ pool: pg.Pool; close(): Promise<void> }> {
  if (config.databaseUrl) {
    const pool = createPool(config.databaseUrl);
    return { pool, close: () => pool.end() };
  }
  const embedded = await startEmbeddedDatabase(config.dataDir);
  logger.warn(
    { data_dir: embedded.dataDir },
    'DATABASE_URL is not set: using the embedded database (PGlite) in the data directory. ' +
      'This mode is for one machine and one control plane; set DATABASE_URL to run on PostgreSQL.',
  );
  try {
    const applied = await runMigrations(embedded.url);
    if (applied.length > 0) logger.info({ applied }, 'embedded database migrated');
  } catch (error) {
    await embedded.close();
    throw error;
  }
  const pool = createPool(embedded.url, EMBEDDED_POOL_MAX);
  return {
    pool,
    close: async () => {
      await pool.end();
      await embedded.close();
    },
  };
}

/** Applies pending migrations to DATABASE_URL; resolves with nothing to do when current. */
export async function migrate(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const { databaseUrl } = loadMigrateConfig(env);
  await runMigrations(databaseUrl, { info: (message) => process.stderr.write(`${message}\n`) });
}
