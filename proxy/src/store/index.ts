/**
 * The one way the proxy gets its store: memory or Redis as the config says, always wrapped
 * in the on_store_error policy (guarded.ts), so callers never handle backend failures.
 */
import { createOutageLog } from '@lanekeeper/contract';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { FailureDetectorOptions } from './failure-detector.js';
import { guardStore, type GuardedStore } from './guarded.js';
import { createMemoryStore } from './memory.js';
import { createRedisStore } from './redis.js';
import type { StoreLogger } from './store-logger.js';

/** What createStore needs besides the config. */
export interface StoreDeps {
  readonly metrics: Pick<
    Metrics,
    'storeUp' | 'storeErrors' | 'storeFailuresInARow' | 'meterBuffered' | 'meterDropped'
  >;
  readonly logger: StoreLogger;
  /** Least time between two "still unavailable" lines of an outage (default a minute; tests shorten it). */
  readonly outageSummaryMs?: number;
}

/** Creates the configured store (Redis connects in the background) behind the failure policy. */
export function createStore(config: Config, deps: StoreDeps): GuardedStore {
  // Three beats per slot TTL: a slot survives two lost or late refreshes. A request is kept
  // alive for as long as it runs, with no time limit (timeout_ms is an idle timeout, not a
  // bound on a stream); slot-heartbeat.ts says what frees one that never settles.
  const slotHeartbeatMs = Math.max(50, Math.floor(config.slot_ttl_ms / 3));
  // One outage log for the Redis client's reconnects and the guard's failed calls: one story per outage.
  const outage = createOutageLog(deps.logger, config.store === 'memory' ? 'memory' : 'redis', {
    summaryMs: deps.outageSummaryMs,
  });
  const store =
    config.store === 'memory'
      ? createMemoryStore({ slotHeartbeatMs, logger: deps.logger })
      : createRedisStore(config.store, { logger: deps.logger, slotHeartbeatMs, outage });
  return guardStore(store, {
    onStoreError: config.on_store_error,
    metrics: deps.metrics,
    logger: deps.logger,
    failureDetector: failureDetectorOf(config),
    outage,
  });
}

/** The configured thresholds, in the detector's terms; undefined means its defaults. */
function failureDetectorOf(config: Config): FailureDetectorOptions | undefined {
  const fd = config.store === 'memory' ? undefined : config.store.failure_detector;
  if (!fd) return undefined;
  return {
    consecutiveFailures: fd.consecutive_failures,
    failureRatio: fd.failure_ratio,
    windowMs: fd.window_ms,
    minCalls: fd.min_calls,
  };
}

export type { GuardedStore } from './guarded.js';
export type { StoreLogger } from './store-logger.js';
