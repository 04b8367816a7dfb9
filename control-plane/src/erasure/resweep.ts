/**
 * The second sweep of an erasure, run by itself once the propagation window has passed:
 * anything a request still in flight managed to leave (a usage event read by the ledger
 * before the first sweep and booked after it, or a rejected event) is removed, and the
 * result is written to the audit log as `tenant.erase.resweep`, so the erasure's record
 * says what the second pass found.
 *
 * It touches only the erased incarnation of the id. By the time it runs the id may belong to
 * a tenant created again, so what it may take is decided then, from PostgreSQL (sweep-scope.ts):
 * ledger rows and rejects recorded before the id was created again, and nothing in Redis, whose
 * keys and stream events the tombstone (lifted by that creation) kept clean until then.
 * Qdrant is swept again too while the id has no tenant.
 * Deciding at sweep time, rather than cancelling the timer on creation, is what makes this hold
 * when the creation happens on another replica. The timer does not outlive the process: after a
 * restart an erasure is swept again by a repeated DELETE, which runs this same sweep.
 */
import type { AppDeps } from '../app.js';
import { recordAudit } from '../stores/audit.js';
import type { VectorErasureReport } from '../stores/vector-store.js';
import { withTransaction } from '../stores/postgres.js';
import { eraseStreamEvents, eraseTenantKeys, type RedisErasure } from './erase-redis.js';
import { resweepPostgres, type PostgresResweep } from './resweep-postgres.js';
import { sweepScope, type SweepScope, type SweptErasure } from './sweep-scope.js';

/** What the second sweep removed. */
export interface ResweepReport extends RedisErasure, PostgresResweep {
  /** Qdrant, swept again when the id has no tenant (a creation since sweeps it itself). */
  vector?: VectorErasureReport;
  tenant: string;
  swept_at: string;
  /**
   * `erased`: the id had no tenant, so everything under it went; `recreated`: only what the
   * erased tenant left before `recreated_at`; `superseded`: the id was erased again since, and
   * that erasure sweeps instead (nothing was touched).
   */
  scope: SweepScope['kind'];
  recreated_at?: string;
}

/** Sweeps once more now; also what the timer and a repeated DELETE run. */
export async function resweep(deps: AppDeps, erasure: SweptErasure): Promise<ResweepReport> {
  const { tenant } = erasure;
  // One decision for both stores: its cut-off keeps it right even if the id is created again
  // while the sweep runs (nothing of a tenant created later can be before it).
  const scope = await sweepScope(deps.pool, erasure);
  const redis = await resweepRedis(deps, tenant, scope);
  // Qdrant has no tombstone: a write a proxy still took after the first sweep stays until
  // this one. Once the id is created again, its creation swept what was left (routes/tenants.ts).
  const vector = scope.kind === 'erased' && deps.vectors ? await deps.vectors.eraseTenant(tenant) : undefined;
  return withTransaction(deps.pool, async (db) => {
    const postgres =
      scope.kind === 'superseded'
        ? { usage_rows: 0, rejected_events: 0 }
        : await resweepPostgres(db, tenant, erasure.pseudonym, scope.before);
    const report: ResweepReport = {
      tenant,
      swept_at: new Date().toISOString(),
      scope: scope.kind,
      ...(scope.kind === 'recreated' ? { recreated_at: scope.before.toISOString() } : {}),
      ...redis,
      ...postgres,
      ...(vector ? { vector } : {}),
    };
    await recordAudit(db, {
      actor: 'lanekeeper',
      action: 'tenant.erase.resweep',
      resource: `tenants/${tenant}`,
      after: report,
    });
    return report;
  });
}

async function resweepRedis(deps: AppDeps, tenant: string, scope: SweepScope): Promise<RedisErasure> {
  // Once the id is created again every key and stream event under it is the new tenant's: the
  // tombstone kept the erased tenant's requests from writing either from the first sweep until
  // then (and eraseTenantKeys checks it again, should the creation come while this runs).
  if (!deps.redis || scope.kind !== 'erased') return { keys_deleted: 0, stream_events_deleted: 0 };
  const { keyPrefix, usageStream } = deps.config;
  return {
    keys_deleted: await eraseTenantKeys(deps.redis, keyPrefix, tenant),
    stream_events_deleted: await eraseStreamEvents(deps.redis, keyPrefix, usageStream, tenant, scope.before),
  };
}

/** Runs `resweep` after LANEKEEPER_ERASURE_RESWEEP_MS, off the request; failures are logged. */
export function scheduleResweep(deps: AppDeps, erasure: SweptErasure): void {
  const timer = setTimeout(() => {
    resweep(deps, erasure).then(
      (report) => deps.logger.info({ ...report }, 'erasure second sweep done'),
      (error: unknown) =>
        deps.logger.warn(
          { tenant: erasure.tenant, err: (error as Error).message },
          'erasure second sweep failed; DELETE again to sweep',
        ),
    );
  }, deps.config.erasure.resweepMs);
  timer.unref();
}
