/**
 * One way to change anything: `commitChange` runs the change, its audit record and (when
 * proxies can see it) the config-version bump in one transaction, then announces the new
 * version on Redis pub/sub after COMMIT, so a proxy that refetches always sees the change.
 */
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';
import { configChannel } from './redis-layout.js';
import { recordAudit, type AuditEntry } from './stores/audit.js';
import { bumpConfigVersion } from './stores/config-version.js';
import { withTransaction } from './stores/postgres.js';

/** Announces config versions to every proxy. */
export interface ConfigPublisher {
  publish(version: number): Promise<void>;
}

/** A publisher on `${prefix}config`. A failure is logged and counted, never thrown: proxies also poll. */
export function createConfigPublisher(
  redis: Redis,
  prefix: string,
  logger: Logger,
  metrics: Metrics,
): ConfigPublisher {
  const channel = configChannel(prefix);
  return {
    async publish(version) {
      try {
        await redis.publish(channel, String(version));
      } catch (error) {
        metrics.configPublishFailures.inc();
        logger.warn(
          { err: error, version },
          'could not publish the config change; proxies will pick it up by polling',
        );
      }
    },
  };
}

/** What a change returns to `commitChange`. */
export interface ChangeOutcome<T> {
  result: T;
  audit: Omit<AuditEntry, 'actor'>;
  /** True when proxies see the change (plans, tenants, keys, prices). */
  affectsConfig: boolean;
}

/** What `commitChange` needs. */
export interface ChangeDeps {
  pool: pg.Pool;
  publisher: ConfigPublisher;
}

/** Runs `change` with its audit record and version bump in one transaction, then publishes. */
export async function commitChange<T>(
  deps: ChangeDeps,
  actor: string,
  change: (db: pg.PoolClient) => Promise<ChangeOutcome<T>>,
): Promise<T> {
  let version: number | undefined;
  const result = await withTransaction(deps.pool, async (db) => {
    const outcome = await change(db);
    await recordAudit(db, { actor, ...outcome.audit });
    if (outcome.affectsConfig) version = await bumpConfigVersion(db);
    return outcome.result;
  });
  if (version !== undefined) await deps.publisher.publish(version);
  return result;
}
