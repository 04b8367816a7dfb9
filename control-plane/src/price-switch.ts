/**
 * Makes a price version dated in the future reach the proxies when its time comes: a timer
 * fires at the next effective_from, bumps the config version (once across replicas, see
 * syncPricingVersion) and announces it. GET /v1/config performs the same check, so polling
 * proxies converge even if this timer never fires.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import type { ConfigPublisher } from './changes.js';
import { syncPricingVersion } from './stores/config-version.js';
import { msToNextPriceSwitch, priceVersionAt } from './stores/pricing.js';

/** Longest single wait: timers beyond ~24.8 days overflow, and a re-check is cheap. */
const MAX_WAIT_MS = 60 * 60 * 1000;

/** The running timer. */
export interface PriceSwitch {
  /** Re-reads the next switch time (after a new version was added). */
  rearm(): void;
  stop(): void;
}

export function startPriceSwitch(pool: pg.Pool, publisher: ConfigPublisher, logger: Logger): PriceSwitch {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const check = async () => {
    const inForce = await priceVersionAt(pool);
    const bumped = await syncPricingVersion(pool, inForce?.id ?? null);
    if (bumped !== undefined) await publisher.publish(bumped);
  };

  const arm = async () => {
    if (stopped) return;
    clearTimeout(timer);
    try {
      const next = await msToNextPriceSwitch(pool);
      if (stopped) return;
      const wait = next === undefined ? MAX_WAIT_MS : Math.min(Math.max(next, 0) + 5, MAX_WAIT_MS);
      timer = setTimeout(() => {
        check()
          .catch((error) => logger.warn({ err: error }, 'price switch check failed'))
          .finally(() => void arm());
      }, wait);
      timer.unref();
    } catch (error) {
      logger.warn({ err: error }, 'could not schedule the next price switch; retrying in a minute');
      timer = setTimeout(() => void arm(), 60_000);
      timer.unref();
    }
  };

  void arm();
  return {
    rearm: () => void arm(),
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
