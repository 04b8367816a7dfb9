/**
 * The policy wrapper around any Store, for when its backend (Redis) is away or slow.
 *
 * - admit: a failed or timed-out admission is answered by the policy: under `fail_open` the
 *   request is admitted with an empty ("unlimited") reservation and a rate-limited warning;
 *   under `fail_closed` it is refused with StoreUnavailableError (503). That one request only:
 *   the store is marked down when the failure detector (failure-detector.ts) says so, after
 *   several failures in a row or a high failure ratio, never for one slow call. While it is down,
 *   admissions do not wait for it at all: a probe (`healthy()`, every `probeIntervalMs`)
 *   decides when it is back. That is what keeps a dead Redis from adding latency.
 * - record and settle never lose data silently: on failure (or while down) they go into a
 *   bounded in-memory queue, flushed in order when the probe sees the store again. Items
 *   that do not fit are counted in `lanekeeper_meter_events_dropped_total` and logged.
 *   Replays are safe: the stores count a retried reservation or event object once (Redis
 *   by the replay marks of the calls it was lost in: replay-marks.ts).
 * - `healthy()` asks the backend and keeps `lanekeeper_store_up` true to it, for /readyz.
 */
import { performance } from 'node:perf_hooks';
import { createOutageLog, type OutageLog } from '@lanekeeper/contract';
import { StoreUnavailableError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { UsageEvent } from '../usage/usage-event.js';
import {
  createFailureDetector,
  DEFAULT_FAILURE_DETECTOR,
  type FailureDetectorOptions,
} from './failure-detector.js';
import type { StoreLogger } from './store-logger.js';
import type {
  AdmitRequest,
  AdmitResult,
  HourUsage,
  Reservation,
  Settlement,
  Store,
  UsageTotals,
} from './store.js';

/** The failure policy and where to report what happens. */
export interface GuardOptions {
  readonly onStoreError: 'fail_open' | 'fail_closed';
  readonly metrics: Pick<
    Metrics,
    'storeUp' | 'storeErrors' | 'storeFailuresInARow' | 'meterBuffered' | 'meterDropped'
  >;
  readonly logger: StoreLogger;
  /** Most events and settlements held while the store is away. */
  readonly bufferLimit?: number;
  /** How often a down store is probed. */
  readonly probeIntervalMs?: number;
  /** Items sent per flush batch (pipelined by the Redis client). */
  readonly flushBatch?: number;
  /** When failed calls mean the store is down (DEFAULT_FAILURE_DETECTOR if absent). */
  readonly failureDetector?: FailureDetectorOptions;
  /**
   * Where the store's outages are logged: one warning when it goes down, a summary a minute,
   * one info line when it is back. Shared with the Redis store, so its reconnect errors and
   * these failed calls make one story; made here (named after the store) if absent.
   */
  readonly outage?: OutageLog;
}

/** A guarded store, with its buffer visible for health pages and tests. */
export interface GuardedStore extends Store {
  /** Items waiting for the store. */
  pending(): number;
  /** Sends what is waiting now; resolves true when the queue is empty. */
  flush(): Promise<boolean>;
}

type Pending =
  | { readonly kind: 'record'; readonly event: UsageEvent }
  | { readonly kind: 'settle'; readonly reservation: Reservation; readonly actual: Settlement };

function tenantOf(item: Pending): string {
  return item.kind === 'record' ? item.event.tenant : item.reservation.tenant;
}

/** Wraps a store with the on_store_error policy, the meter buffer and health tracking. */
export function guardStore(store: Store, options: GuardOptions): GuardedStore {
  const { onStoreError, metrics, logger } = options;
  const bufferLimit = options.bufferLimit ?? 100_000;
  const probeIntervalMs = options.probeIntervalMs ?? 1_000;
  const flushBatch = options.flushBatch ?? 200;
  const queue: Pending[] = [];
  let up = true;
  let closed = false;
  let unsentAtClose = 0;
  let probe: NodeJS.Timeout | undefined;
  let flushing: Promise<boolean> | undefined;
  const outage = options.outage ?? createOutageLog(logger, store.kind);
  // Said once per outage, not per request: the outage log carries the count from then on.
  let failOpenWarned = false;
  let dropWarned = false;
  const detector = createFailureDetector(options.failureDetector ?? DEFAULT_FAILURE_DETECTOR);
  metrics.storeUp.set({ store: store.kind }, 1);
  metrics.meterBuffered.set(0);
  metrics.storeFailuresInARow.set(0);

  /** A call answered: evidence for the detector that the store is there. */
  function succeeded(): void {
    if (!up) return;
    // A call answered outside an outage: the next failure may say fail_open again.
    if (!outage.down) failOpenWarned = false;
    detector.success(performance.now());
    metrics.storeFailuresInARow.set(0);
  }

  /** A call failed: counted, and the store marked down if the detector says so. */
  function failed(operation: string, error: unknown): void {
    metrics.storeErrors.inc({ operation });
    if (!up) {
      outage.failed(error);
      return scheduleProbe();
    }
    const down = detector.failure(performance.now());
    metrics.storeFailuresInARow.set(detector.inARow());
    if (down) markDown(operation, error);
  }

  function markDown(operation: string, error: unknown): void {
    if (up) {
      up = false;
      metrics.storeUp.set({ store: store.kind }, 0);
      outage.failed(error);
      // Probe at once: a blip (one slow call) should not keep the store down for a whole interval.
      scheduleProbe(0);
    }
    scheduleProbe();
  }

  function markUp(): void {
    if (up) return;
    up = true;
    detector.reset();
    metrics.storeFailuresInARow.set(0);
    metrics.storeUp.set({ store: store.kind }, 1);
    // The recovery is logged by drain(), once what waited is delivered: a store that answers
    // PING but refuses writes (a read-only replica) would otherwise log "available again"
    // and "unavailable" on every probe.
  }

  function scheduleProbe(delayMs = probeIntervalMs): void {
    if (probe || closed) return;
    probe = setTimeout(async () => {
      probe = undefined;
      if (closed) return;
      if (await store.healthy()) {
        markUp();
        if (!(await flush())) scheduleProbe();
      } else if (up) {
        // Probing for buffered items while up: a failed probe is evidence like a failed call.
        failed('healthy', 'health check failed');
        scheduleProbe();
      } else {
        outage.failed('health check failed');
        scheduleProbe();
      }
    }, delayMs);
    probe.unref();
  }

  function enqueue(item: Pending): void {
    if (queue.length >= bufferLimit) {
      if (item.kind === 'record') metrics.meterDropped.inc();
      if (!dropWarned) {
        dropWarned = true;
        logger.error(
          { store: store.kind, kind: item.kind, tenant: tenantOf(item), bufferLimit },
          'meter buffer full: dropping; further drops are counted in lanekeeper_meter_events_dropped_total',
        );
      }
      return;
    }
    queue.push(item);
    metrics.meterBuffered.set(queue.length);
    scheduleProbe();
  }

  function send(item: Pending): Promise<void> {
    return item.kind === 'record' ? store.record(item.event) : store.settle(item.reservation, item.actual);
  }

  async function drain(): Promise<boolean> {
    let delivered = 0;
    while (queue.length > 0 && up) {
      const batch = queue.slice(0, flushBatch);
      const results = await Promise.allSettled(batch.map(send));
      const failed = batch.filter((_, i) => results[i]!.status === 'rejected');
      // Keep the failures, in their order, at the head; later items wait behind them.
      queue.splice(0, batch.length, ...failed);
      metrics.meterBuffered.set(queue.length);
      if (failed.length > 0) {
        const first = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        // A flush runs after the probe said yes: if it fails, the store is not really back.
        metrics.storeErrors.inc({ operation: 'flush' });
        markDown('flush', first.reason);
        return false;
      }
      delivered += batch.length;
    }
    if (queue.length > 0) return false;
    failOpenWarned = false;
    dropWarned = false;
    outage.succeeded({ store: store.kind, delivered });
    return true;
  }

  function flush(): Promise<boolean> {
    flushing ??= drain().finally(() => {
      flushing = undefined;
    });
    return flushing;
  }

  function admitWithoutStore(request: AdmitRequest, error: unknown): AdmitResult {
    if (onStoreError === 'fail_closed') {
      throw new StoreUnavailableError('the limit store is unavailable; try again shortly');
    }
    if (!failOpenWarned) {
      failOpenWarned = true;
      logger.warn(
        {
          store: store.kind,
          // The first request admitted so (the line is once per outage).
          request_id: request.requestId,
          tenant: request.tenant,
          err: error instanceof Error ? error.message : String(error),
        },
        'store unavailable: admitting without limits (on_store_error: fail_open)',
      );
    }
    const reservation: Reservation = {
      tenant: request.tenant,
      requestId: request.requestId,
      at: request.now,
      tokens: 0,
      usd: 0,
      slot: false,
      limits: request.limits,
    };
    return { ok: true, reservation, grantedOutput: request.maxOutput, state: {} };
  }

  async function read<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      const result = await call();
      succeeded();
      return result;
    } catch (error) {
      failed(operation, error);
      throw new StoreUnavailableError(`the usage store is unavailable (${operation})`);
    }
  }

  return {
    kind: store.kind,

    async admit(request: AdmitRequest): Promise<AdmitResult> {
      if (!up) {
        metrics.storeErrors.inc({ operation: 'admit' });
        return admitWithoutStore(request, 'store is down');
      }
      try {
        const result = await store.admit(request);
        succeeded();
        return result;
      } catch (error) {
        failed('admit', error);
        return admitWithoutStore(request, error);
      }
    },

    async settle(reservation: Reservation, actual: Settlement): Promise<void> {
      if (!up || queue.length > 0) return enqueue({ kind: 'settle', reservation, actual });
      try {
        await store.settle(reservation, actual);
        succeeded();
      } catch (error) {
        failed('settle', error);
        enqueue({ kind: 'settle', reservation, actual });
      }
    },

    async record(event: UsageEvent): Promise<void> {
      // While anything waits, new events queue behind it so the log keeps its order.
      if (!up || queue.length > 0) return enqueue({ kind: 'record', event });
      try {
        await store.record(event);
        succeeded();
      } catch (error) {
        failed('record', error);
        enqueue({ kind: 'record', event });
      }
    },

    currentHour(tenant: string, now: number): Promise<HourUsage> {
      return read('currentHour', () => store.currentHour(tenant, now));
    },

    allTime(tenant: string): Promise<UsageTotals> {
      return read('allTime', () => store.allTime(tenant));
    },

    async healthy(): Promise<boolean> {
      const healthy = await store.healthy();
      if (healthy) {
        markUp();
        if (queue.length > 0 || outage.down) void flush();
      } else if (up) {
        failed('healthy', 'health check failed');
      }
      return healthy;
    },

    async eraseTenant(tenant: string): Promise<number> {
      // Buffered items of an erased tenant must not bring its data back later. A flush in
      // flight owns the head of the queue: let it finish (the erasure below then removes
      // whatever it wrote) before taking items out.
      while (flushing) await flushing;
      let removed = 0;
      for (let i = queue.length - 1; i >= 0; i--) {
        if (tenantOf(queue[i]!) === tenant) {
          queue.splice(i, 1);
          removed++;
        }
      }
      metrics.meterBuffered.set(queue.length);
      return removed + (await read('eraseTenant', () => store.eraseTenant(tenant)));
    },

    // After close: what close could not deliver (the queue itself is emptied then).
    pending: () => (closed ? unsentAtClose : queue.length),
    flush,

    async close(): Promise<void> {
      closed = true;
      if (probe) clearTimeout(probe);
      probe = undefined;
      if (queue.length > 0 && (up || (await store.healthy()))) {
        markUp();
        await flush();
      }
      if (queue.length > 0) {
        const events = queue.filter((item) => item.kind === 'record').length;
        unsentAtClose = queue.length;
        metrics.meterDropped.inc(events);
        logger.error({ store: store.kind, pending: queue.length, events }, 'closing with undelivered usage');
        queue.length = 0;
        metrics.meterBuffered.set(0);
      }
      await store.close();
    },
  };
}
