/**
 * The usage ledger's consumer: a Redis consumer group on the proxies' usage stream, booking
 * each XREADGROUP batch with `bookEvents` and acknowledging it only after COMMIT. A replica
 * killed between commit and XACK leaves its entries pending; on start it first re-reads its
 * own pending entries (the bookings are idempotent, so the replay inserts nothing twice), and
 * any replica claims entries another consumer left pending longer than `claimIdleMs`.
 */
import { createOutageLog, settledWithin } from '@lanekeeper/contract';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { BookingResult, StreamEntry } from './book-events.js';
import { bookOrIsolate } from './book-or-isolate.js';

/** What a consumer needs; `redis` must be its own connection (XREADGROUP blocks it). */
export interface LedgerConsumerOptions {
  redis: Redis;
  pool: pg.Pool;
  streamKey: string;
  group: string;
  consumer: string;
  batch: number;
  claimIdleMs: number;
  /** How long one XREADGROUP waits for new entries; bounds how long close() takes. */
  blockMs?: number;
  metrics: Metrics;
  logger: Logger;
  /** A connection for XINFO, so reading the lag never waits behind a blocking XREADGROUP. */
  statsRedis?: Redis;
  /** Set when tracing is on: books each batch inside a span. */
  traceBatch?(entries: number, book: () => Promise<BookingResult>): Promise<BookingResult>;
  /** Test seam: runs after a batch commits and before it is acknowledged. */
  afterCommit?: (ids: string[], result: BookingResult) => void | Promise<void>;
}

/** A running consumer. */
export interface LedgerConsumer {
  /** Starts the loop, which creates the group (MKSTREAM); a Redis outage is retried, never fatal. */
  start(): Promise<void>;
  /** Stops after the batch in flight (which is committed and acknowledged, or left pending). */
  close(): Promise<void>;
  /** Entries not yet delivered plus delivered-but-unacknowledged; also updates the lag metrics. */
  lag(): Promise<{ lag: number; pending: number }>;
}

type ReadReply = [string, [string, string[] | null][]][] | null;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function createLedgerConsumer(opts: LedgerConsumerOptions): LedgerConsumer {
  const { redis, streamKey, group, consumer, batch, metrics, logger } = opts;
  const blockMs = opts.blockMs ?? 1000;
  // A batch retried every half second while PostgreSQL is away wrote an error with its stack
  // each time: one warning when booking starts failing, a summary a minute, one line when
  // it books again (the Redis connection's own outage is the main client's to report).
  const outage = createOutageLog(logger, 'usage ledger', { fields: { group, consumer } });
  let running = false;
  let loop: Promise<void> | undefined;
  let lastClaim = 0;

  const ensureGroup = async () => {
    try {
      await redis.xgroup('CREATE', streamKey, group, '0', 'MKSTREAM');
    } catch (error) {
      if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
    }
  };

  const handle = async (entries: StreamEntry[]) => {
    if (entries.length === 0) return;
    // One bad event is rejected on its own rather than stall the group (book-or-isolate.ts).
    const book = () => bookOrIsolate(opts.pool, entries);
    const result = opts.traceBatch ? await opts.traceBatch(entries.length, book) : await book();
    const ids = entries.map((e) => e.id);
    await opts.afterCommit?.(ids, result);
    await redis.xack(streamKey, group, ...ids);
    metrics.ledgerRows.inc({ outcome: 'inserted' }, result.inserted);
    metrics.ledgerRows.inc({ outcome: 'duplicate' }, result.duplicates);
    metrics.ledgerRows.inc({ outcome: 'rejected' }, result.rejected);
    metrics.ledgerRows.inc({ outcome: 'erased_tenant' }, result.erased);
    if (result.rejected > 0)
      logger.warn({ rejected: result.rejected }, 'usage events rejected (kept in usage_rejects)');
  };

  const read = async (id: string, block: boolean): Promise<StreamEntry[]> => {
    const args: (string | number)[] = ['GROUP', group, consumer, 'COUNT', batch];
    if (block) args.push('BLOCK', blockMs);
    args.push('STREAMS', streamKey, id);
    // The typed method keeps the RESP2 reply shape under RESP3 (`call` would return a flat map).
    const xreadgroup = redis.xreadgroup.bind(redis) as unknown as (
      ...a: (string | number)[]
    ) => Promise<unknown>;
    const reply = (await xreadgroup(...args)) as ReadReply;
    return (reply?.[0]?.[1] ?? []).map(([entryId, fields]) => ({ id: entryId, fields }));
  };

  /** Re-processes this consumer's own pending entries (a previous life's unacknowledged batch). */
  const drainOwnPending = async () => {
    for (;;) {
      const entries = await read('0', false);
      if (entries.length === 0 || !running) return;
      await handle(entries);
    }
  };

  /** Takes over entries other consumers left pending too long (they died). */
  const claimAbandoned = async () => {
    let cursor = '0-0';
    do {
      const reply = (await redis.xautoclaim(
        streamKey,
        group,
        consumer,
        opts.claimIdleMs,
        cursor,
        'COUNT',
        batch,
      )) as [string, [string, string[] | null][], string[]?];
      cursor = reply[0];
      await handle(reply[1].map(([id, fields]) => ({ id, fields })));
    } while (cursor !== '0-0' && running);
  };

  const run = async () => {
    let recovering = true;
    while (running) {
      if (redis.status !== 'ready') {
        // Redis is away: wait for ioredis to reconnect rather than fail a command per turn.
        recovering = true;
        await sleep(250);
        continue;
      }
      try {
        if (recovering) {
          await ensureGroup(); // also after the stream was deleted (NOGROUP)
          await drainOwnPending();
          recovering = false;
        }
        if (Date.now() - lastClaim >= Math.max(opts.claimIdleMs / 2, 1000)) {
          lastClaim = Date.now();
          await claimAbandoned();
        }
        await handle(await read('>', true));
        outage.succeeded();
      } catch (error) {
        if (!running) break;
        metrics.consumerErrors.inc();
        // The entries stay pending and are booked again on the next turn. A command cut by
        // the Redis connection going away is Redis's outage, which the main client reports.
        // A stream or group gone (a Redis restarted empty) is recreated on the next turn.
        if (redis.status === 'ready' && !String((error as Error).message).startsWith('NOGROUP'))
          outage.failed(error);
        recovering = true;
        await sleep(500);
      }
    }
  };

  return {
    async start() {
      // The group is created by the loop, so a Redis outage at start-up delays booking, not start-up.
      running = true;
      loop = run();
    },
    async close() {
      running = false;
      // A command waiting on an unreachable Redis would never return: cut the connection.
      // Cut while ioredis is reconnecting, its queued command is never failed either (no
      // socket left to close), and a SIGTERM with Redis down waited for ever: stop waiting.
      const cutMs = blockMs + 2000;
      const cut = setTimeout(() => redis.disconnect(), cutMs);
      await settledWithin(loop, cutMs + 1000);
      clearTimeout(cut);
    },
    async lag() {
      const stats = opts.statsRedis ?? redis;
      const groups = (await stats.call('XINFO', 'GROUPS', streamKey).catch(() => [])) as unknown[][];
      for (const g of groups) {
        const info: Record<string, unknown> = {};
        for (let i = 0; i + 1 < g.length; i += 2) info[String(g[i])] = g[i + 1];
        if (info.name === group) {
          // Redis reports lag as nil after XDEL (erasure); then count what follows the last delivery.
          const lag =
            info.lag === null || info.lag === undefined
              ? (
                  await stats.xrange(
                    streamKey,
                    `(${String(info['last-delivered-id'])}`,
                    '+',
                    'COUNT',
                    100_000,
                  )
                ).length
              : Number(info.lag) || 0;
          const pending = Number(info.pending ?? 0) || 0;
          metrics.ledgerLag.set(lag);
          metrics.ledgerPending.set(pending);
          return { lag, pending };
        }
      }
      // No group yet: nothing was ever delivered, so the whole stream is lag.
      const lag = Number(await stats.xlen(streamKey).catch(() => 0));
      metrics.ledgerLag.set(lag);
      metrics.ledgerPending.set(0);
      return { lag, pending: 0 };
    },
  };
}
