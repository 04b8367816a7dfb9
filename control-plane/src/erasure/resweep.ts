/**
 * The second sweep of an erasure, run by itself once the propagation window has passed:
 * anything a request still in flight managed to leave (a usage event read by the ledger
 * before the first sweep and booked after it, or a rejected event) is removed, and the
 * result is written to the audit log as `tenant.erase.resweep`, so the erasure's record
 * says what the second pass found. The timer does not outlive the process: after a restart
 * an erasure is swept again by a repeated DELETE, which does the same.
 */
import type { AppDeps } from '../app.js';
import { recordAudit } from '../stores/audit.js';
import { withTransaction } from '../stores/postgres.js';
import { eraseRedisData } from './erase-redis.js';

/** What the second sweep removed. */
export interface ResweepReport {
  tenant: string;
  swept_at: string;
  keys_deleted: number;
  stream_events_deleted: number;
  usage_rows: number;
  rejected_events: number;
}

/** Sweeps once more now; also what the timer runs. */
export async function resweep(
  deps: AppDeps,
  tenant: string,
  pseudonym: string | undefined,
): Promise<ResweepReport> {
  const redis = await eraseRedisData(deps.redis, deps.config.keyPrefix, deps.config.usageStream, tenant);
  return withTransaction(deps.pool, async (db) => {
    const usage = pseudonym
      ? await db.query(`UPDATE usage_ledger SET tenant_id = $2 WHERE tenant_id = $1`, [tenant, pseudonym])
      : await db.query(`DELETE FROM usage_ledger WHERE tenant_id = $1`, [tenant]);
    if (!pseudonym) await db.query(`DELETE FROM usage_hourly WHERE tenant_id = $1`, [tenant]);
    const rejects = await db.query(`DELETE FROM usage_rejects WHERE payload LIKE $1`, [
      `%"tenant":${JSON.stringify(tenant)}%`,
    ]);
    const report: ResweepReport = {
      tenant,
      swept_at: new Date().toISOString(),
      ...redis,
      usage_rows: usage.rowCount ?? 0,
      rejected_events: rejects.rowCount ?? 0,
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

/** Runs `resweep` after LANEKEEPER_ERASURE_RESWEEP_MS, off the request; failures are logged. */
export function scheduleResweep(deps: AppDeps, tenant: string, pseudonym: string | undefined): void {
  const timer = setTimeout(() => {
    resweep(deps, tenant, pseudonym).then(
      (report) => deps.logger.info({ ...report }, 'erasure second sweep done'),
      (error: unknown) =>
        deps.logger.warn(
          { tenant, err: (error as Error).message },
          'erasure second sweep failed; DELETE again to sweep',
        ),
    );
  }, deps.config.erasure.resweepMs);
  timer.unref();
}
