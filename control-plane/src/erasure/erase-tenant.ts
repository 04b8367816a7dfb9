/**
 * Tenant erasure (DELETE /v1/tenants/{id}), as resumable steps recorded in erasure_jobs:
 *
 *   begin    hide the tenant from every proxy (next config version) and remember what it was
 *   redis    every `${prefix}{tenant}:*` key, and its events still in the usage stream
 *   vector   VectorStore.eraseTenant: its collections, and its points in shared collections
 *   postgres usage rows (deleted, or pseudonymised when billing records must be kept),
 *            API keys, the tenant row and its earlier audit records, in one transaction
 *   finish   drop the job, write the one audit record of the erasure, publish
 *
 * `begin` also sets the tenant's tombstone in Redis, which the proxies' scripts check: a
 * request still in flight anywhere writes nothing back after the sweep. `redis` waits the
 * propagation window first, and `vector` comes after it: Qdrant has no tombstone, and a
 * write a proxy still took in that window outlived an erasure that ran before it. A second
 * sweep (Qdrant included) runs by itself after
 * LANEKEEPER_ERASURE_RESWEEP_MS (erasure/resweep.ts) and writes its result to the audit log;
 * it sweeps only this incarnation of the id, should the tenant be created again by then.
 *
 * Each step is idempotent and marked done in the same breath as its effect where the store
 * allows, so a retry after any failure resumes where it stopped and ends with the same
 * report. Once finished, a repeated DELETE answers with the recorded report.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { AppDeps } from '../app.js';
import { ConflictError, NotFoundError, UpstreamStoreError } from '../errors.js';
import { recordAudit, findErasureRecord } from '../stores/audit.js';
import { bumpConfigVersion } from '../stores/config-version.js';
import { withTransaction } from '../stores/postgres.js';
import { getTenant } from '../stores/tenants.js';
import type { VectorErasureReport } from '../stores/vector-store.js';
import { eraseRedisData, markErased } from './erase-redis.js';
import { resweep, scheduleResweep, type ResweepReport } from './resweep.js';
import { erasePostgresData } from './erase-postgres.js';

/** What an erasure removed from each store. */
export interface ErasureReport {
  tenant: string;
  started_at: string;
  completed_at?: string;
  /** `deleted`, or `pseudonymised` when LANEKEEPER_ERASURE_RETAIN_BILLING keeps usage rows. */
  usage_retention: 'deleted' | 'pseudonymised';
  /** The id usage rows now carry, when pseudonymised. */
  pseudonym?: string;
  vector?: VectorErasureReport | { skipped: string };
  redis?: { keys_deleted: number; stream_events_deleted: number };
  postgres?: {
    usage_rows: number;
    hourly_rows: number;
    rejected_events: number;
    api_keys_deleted: number;
    audit_records_removed: number;
    tenant_deleted: boolean;
  };
  /** How many DELETE calls it took (more than 1 after a failure). */
  attempts: number;
}

const STEPS = ['begin', 'redis', 'vector', 'postgres', 'finish'] as const;
type Step = (typeof STEPS)[number];

/** Test seam: runs before each step; throwing simulates a failure at that point. */
export type StepHook = (step: Step) => void | Promise<void>;

interface Job {
  steps_done: Step[];
  report: ErasureReport;
}

async function loadJob(db: pg.Pool | pg.PoolClient, tenant: string): Promise<Job | undefined> {
  const { rows } = await db.query(`SELECT steps_done, report FROM erasure_jobs WHERE tenant_id = $1`, [
    tenant,
  ]);
  return rows[0] as Job | undefined;
}

async function saveStep(db: pg.Pool | pg.PoolClient, tenant: string, step: Step, report: ErasureReport) {
  await db.query(
    `UPDATE erasure_jobs SET steps_done = array_append(steps_done, $2), report = $3 WHERE tenant_id = $1`,
    [tenant, step, JSON.stringify(report)],
  );
}

/** Erases a tenant everywhere, or resumes an erasure that failed part way. */
export async function eraseTenant(
  deps: AppDeps,
  tenant: string,
  actor: string,
  hook?: StepHook,
): Promise<ErasureReport & { already_erased?: boolean; resweep?: ResweepReport }> {
  // One erasure of a tenant at a time: a session lock held on a dedicated client (across
  // replicas), and a set in this process, since on the embedded database every connection is
  // the same session and its advisory lock excludes nothing.
  if (erasing.has(tenant))
    throw new ConflictError(`tenant "${tenant}" is being erased by another request; retry shortly`);
  erasing.add(tenant);
  try {
    return await eraseUnderLock(deps, tenant, actor, hook);
  } finally {
    erasing.delete(tenant);
  }
}

/** Tenants this process is erasing now. */
const erasing = new Set<string>();

async function eraseUnderLock(
  deps: AppDeps,
  tenant: string,
  actor: string,
  hook?: StepHook,
): Promise<ErasureReport & { already_erased?: boolean; resweep?: ResweepReport }> {
  const lockClient = await deps.pool.connect();
  try {
    const { rows } = await lockClient.query(`SELECT pg_try_advisory_lock(hashtext('erase:' || $1)) AS ok`, [
      tenant,
    ]);
    if (!rows[0].ok)
      throw new ConflictError(`tenant "${tenant}" is being erased by another request; retry shortly`);
    try {
      return await runErasure(deps, tenant, actor, hook);
    } finally {
      await lockClient.query(`SELECT pg_advisory_unlock(hashtext('erase:' || $1))`, [tenant]);
    }
  } finally {
    lockClient.release();
  }
}

async function runErasure(deps: AppDeps, tenant: string, actor: string, hook?: StepHook) {
  const job = await loadJob(deps.pool, tenant);
  if (!job) {
    const existing = await getTenant(deps.pool, tenant);
    if (!existing) {
      const done = await findErasureRecord(deps.pool, tenant);
      if (done) {
        // Requests in flight during the erasure may have left something since: sweep again, as
        // the timer would have (it does not survive a restart).
        const report = done.after as ErasureReport;
        return { ...report, already_erased: true, resweep: await resweep(deps, report) };
      }
      throw new NotFoundError(`tenant "${tenant}" does not exist`);
    }
  }
  const report: ErasureReport = job?.report ?? {
    tenant,
    started_at: new Date().toISOString(),
    usage_retention: deps.config.retainBillingOnErasure ? 'pseudonymised' : 'deleted',
    ...(deps.config.retainBillingOnErasure ? { pseudonym: `erased-${randomUUID()}` } : {}),
    attempts: 0,
  };
  report.attempts += 1;
  const done = new Set<Step>(job?.steps_done ?? []);
  let current: Step = 'begin';
  try {
    for (const step of STEPS) {
      if (done.has(step)) continue;
      current = step;
      await hook?.(step);
      await runStep(deps, step, tenant, actor, report);
    }
    deps.metrics.erasures.inc({ result: 'completed' });
    scheduleResweep(deps, report);
    return report;
  } catch (error) {
    deps.metrics.erasures.inc({ result: 'failed' });
    // Keep the attempt count even though the step failed.
    await deps.pool
      .query(`UPDATE erasure_jobs SET report = jsonb_set(report, '{attempts}', $2) WHERE tenant_id = $1`, [
        tenant,
        JSON.stringify(report.attempts),
      ])
      .catch(() => {});
    if (error instanceof NotFoundError || error instanceof ConflictError) throw error;
    throw new UpstreamStoreError(
      `erasure of "${tenant}" stopped at step "${current}": ${(error as Error).message}. ` +
        'The tenant is already refused by every proxy; repeat DELETE to resume.',
      report,
    );
  }
}

async function runStep(deps: AppDeps, step: Step, tenant: string, actor: string, report: ErasureReport) {
  switch (step) {
    case 'begin': {
      let version = 0;
      await withTransaction(deps.pool, async (db) => {
        await db.query(
          `INSERT INTO erasure_jobs (tenant_id, steps_done, report, pseudonym) VALUES ($1, '{begin}', $2, $3)
             ON CONFLICT (tenant_id) DO NOTHING`,
          [tenant, JSON.stringify(report), report.pseudonym ?? null],
        );
        version = await bumpConfigVersion(db);
      });
      await deps.publisher.publish(version);
      // From here every proxy's Redis scripts refuse the tenant's admissions and drop what
      // its requests in flight settle or record, whether or not that proxy has reloaded.
      await markErased(deps.redis, deps.config.keyPrefix, tenant);
      return;
    }
    case 'vector':
      report.vector = deps.vectors
        ? await deps.vectors.eraseTenant(tenant)
        : { skipped: 'no vector store configured (QDRANT_URL unset)' };
      await saveStep(deps.pool, tenant, step, report);
      return;
    case 'redis':
      await markErased(deps.redis, deps.config.keyPrefix, tenant);
      // Let every proxy apply the config without the tenant (within a second), so no new
      // request starts; what is still in flight can no longer write (the tombstone).
      await new Promise((resolve) => setTimeout(resolve, deps.config.erasure.propagationMs));
      report.redis = await eraseRedisData(deps.redis, deps.config.keyPrefix, deps.config.usageStream, tenant);
      await saveStep(deps.pool, tenant, step, report);
      return;
    case 'postgres':
      await withTransaction(deps.pool, async (db) => {
        report.postgres = await erasePostgresData(db, tenant, report.pseudonym);
        await saveStep(db, tenant, step, report);
      });
      return;
    case 'finish': {
      report.completed_at = new Date().toISOString();
      let version = 0;
      await withTransaction(deps.pool, async (db) => {
        await db.query(`DELETE FROM erasure_jobs WHERE tenant_id = $1`, [tenant]);
        await recordAudit(db, {
          actor,
          action: 'tenant.erase',
          resource: `tenants/${tenant}`,
          after: report,
        });
        version = await bumpConfigVersion(db);
      });
      await deps.publisher.publish(version);
      return;
    }
  }
}
