/**
 * Usage to the control plane over HTTP, for a proxy that takes its config from a control
 * plane but has no Redis (store: memory): there is no usage stream for the ledger to read,
 * so events are batched and posted to POST /v1/usage-events with the proxy token.
 *
 * Posting never blocks a request: `push` only queues. Failed posts are one outage story
 * ("control plane (usage posts)"), at debug while the config source already reports the
 * control plane down. A 400, 413 or 422 is about the batch
 * (one bad event refuses all of it, and 413 its size): the batch is split in halves and each
 * sent again, down to the one event refused, which alone is dropped and logged. Any other
 * failed post (network, 5xx, 401 or 403 while the proxy token is being fixed, and 404 or 405
 * from an ingress that has no route to the control plane yet) is retried with exponential
 * backoff, the events kept: taken for refusals of the batch, a 404 dropped every event
 * queued within seconds. The queue is bounded: past `maxQueue`
 * the oldest events go, counted in lanekeeper_meter_events_dropped_total. The control plane
 * books by request_id, so a batch re-sent after a lost reply is counted once. `close()` sends
 * what is queued (within a deadline) before the proxy exits.
 */
import { createOutageLog, settledWithin } from '@lanekeeper/contract';
import type { UsageEvent } from './usage-event.js';

/** What the sink reports through. */
export interface UsageSinkDeps {
  metrics: { meterDropped: { inc(n?: number): void } };
  logger: {
    debug(obj: object, msg: string): void;
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
    error(obj: object, msg: string): void;
  };
  /**
   * Whether the control plane's outage is already being reported (the config source polls
   * it and says so once, then once a minute): a post failing meanwhile is the same outage,
   * logged at debug. Asked after each failed post.
   */
  reportedElsewhere?(): Promise<boolean>;
  /** Least time between two summaries of one outage (tests shorten it). */
  outageSummaryMs?: number;
}

/** How the sink batches and retries; every field has a default. */
export interface UsageSinkOptions {
  /** The control plane's base URL. */
  url: string;
  /** The proxy token. */
  token: string;
  /** Events per post (the control plane takes at most 500). */
  batchSize?: number;
  /** How long an event may wait for its batch to fill. */
  flushMs?: number;
  /** Most events held; older ones are dropped beyond it. */
  maxQueue?: number;
  /** First retry delay; doubles per failure up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Per-post timeout. */
  timeoutMs?: number;
}

/** A running sink. */
export interface UsageSink {
  push(event: UsageEvent): void;
  /** Events not yet accepted by the control plane. */
  pending(): number;
  /**
   * Sends what is queued, giving up after `deadlineMs`; what is left is counted as dropped.
   * Resolves with the number of events not delivered.
   */
  close(deadlineMs?: number): Promise<number>;
}

/** The control plane's refusals of a batch as such; any other failure says nothing of the events. */
const ABOUT_THE_BATCH = new Set([400, 413, 422]);

export function createHttpUsageSink(options: UsageSinkOptions, deps: UsageSinkDeps): UsageSink {
  const batchSize = Math.min(options.batchSize ?? 200, 500);
  const flushMs = options.flushMs ?? 500;
  const maxQueue = options.maxQueue ?? 50_000;
  const backoffMs = options.backoffMs ?? 250;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const endpoint = new URL('/v1/usage-events', options.url).toString();

  const queue: UsageEvent[] = [];
  let sending: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  let closed = false;
  /** Ends a backoff wait early (close). */
  let wake: (() => void) | undefined;
  /** The current failure is part of an outage the config source reports. */
  let covered = false;
  // One outage story, as every dependency's: a warning, a summary a minute, a recovery
  // line. A control plane that was down logged a warning per retry here (17 in 3 minutes).
  const outage = createOutageLog(
    {
      warn: (fields, msg) => (covered ? deps.logger.debug(fields, msg) : deps.logger.warn(fields, msg)),
      info: (fields, msg) => deps.logger.info(fields, msg),
    },
    'control plane (usage posts)',
    { summaryMs: deps.outageSummaryMs },
  );

  async function failed(error: unknown): Promise<void> {
    covered = (await deps.reportedElsewhere?.().catch(() => false)) ?? false;
    outage.failed(error);
  }

  /**
   * Posts one batch: `sent` when the control plane took it (or refused its one event for
   * good, dropped), `split` when it refused the batch as such, `retry` when it could not say.
   */
  async function post(batch: UsageEvent[]): Promise<'sent' | 'split' | 'retry'> {
    try {
      const res = await fetch(endpoint, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ events: batch }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.text();
      if (res.ok) return 'sent';
      if (ABOUT_THE_BATCH.has(res.status)) {
        if (batch.length > 1) return 'split';
        deps.metrics.meterDropped.inc(batch.length);
        deps.logger.error(
          { status: res.status, events: batch.length, reply: text.slice(0, 500) },
          'the control plane refused a usage event; it is dropped',
        );
        return 'sent';
      }
      await failed(`POST ${endpoint} answered ${res.status}: ${text.slice(0, 200)}`);
    } catch (error) {
      await failed(error);
    }
    return 'retry';
  }

  async function drain(): Promise<void> {
    // Shrinks while the control plane refuses batches as such, to find the event it refuses.
    let size = batchSize;
    while (queue.length > 0) {
      const batch = queue.slice(0, size);
      const result = await post(batch);
      if (result === 'split') {
        size = Math.max(1, Math.floor(batch.length / 2));
        continue;
      }
      if (result === 'sent') {
        // Events dropped for overflow meanwhile came off the front; remove what was sent.
        const sent = new Set(batch);
        let i = 0;
        while (i < queue.length && sent.has(queue[i]!)) i++;
        queue.splice(0, i);
        if (failures > 0) outage.succeeded({ waiting: queue.length });
        failures = 0;
        size = batchSize;
        continue;
      }
      failures++;
      if (closed) return;
      const wait = Math.min(maxBackoffMs, backoffMs * 2 ** (failures - 1));
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, wait).unref();
      });
      wake = undefined;
      // Woken by close, which makes the last pass itself.
      if (closed) return;
    }
  }

  function kick(): void {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    sending ??= drain().finally(() => {
      sending = undefined;
      if (queue.length > 0 && !closed) schedule();
    });
  }

  function schedule(): void {
    if (sending || timer) return;
    if (queue.length >= batchSize) return kick();
    timer = setTimeout(kick, flushMs);
    timer.unref();
  }

  return {
    push(event) {
      queue.push(event);
      if (queue.length > maxQueue) {
        const over = queue.length - maxQueue;
        queue.splice(0, over);
        deps.metrics.meterDropped.inc(over);
      }
      if (!closed) schedule();
    },
    pending: () => queue.length,
    async close(deadlineMs = 5_000) {
      if (timer) clearTimeout(timer);
      timer = undefined;
      // A drain waiting out a backoff returns at once, and the last pass is tried now.
      closed = true;
      wake?.();
      const finalFlush = (async () => {
        await sending;
        // One last pass without backoff: whatever fails now is counted as dropped.
        await drain();
      })();
      // Not unref'd: the listeners are closed by now, and an unref'd wait let the process
      // exit in the middle of it, the events lost without a line.
      await settledWithin(finalFlush, deadlineMs);
      const unsent = queue.length;
      if (unsent > 0) {
        deps.metrics.meterDropped.inc(unsent);
        deps.logger.error({ events: unsent }, 'usage events not delivered before shutdown');
        queue.length = 0;
      }
      return unsent;
    },
  };
}
