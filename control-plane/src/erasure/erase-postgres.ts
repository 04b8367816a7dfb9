/**
 * The PostgreSQL part of an erasure, run in the caller's transaction: usage rows deleted or
 * pseudonymised (a retention policy that keeps billing records), then API keys, the tenant
 * row and the tenant's earlier audit records. It first takes the ledger lock exclusively,
 * so no booking in flight can add a row for the tenant after its rows are gone.
 */
import type pg from 'pg';
import { LEDGER_LOCK } from '../ledger/book-events.js';

/**
 * A tenant's rejected events ($1 the tenant, $2 rejectPattern's): by the tenant read from the
 * payload when it was kept, or, for a payload that was not JSON, by a `"tenant": "<id>"` in
 * its text, whatever the spacing.
 */
export const REJECTS_OF_TENANT = `tenant_id = $1 OR payload ~ $2`;

/** The text match of REJECTS_OF_TENANT: tenant ids are [a-z0-9-], nothing special in a regex. */
export function rejectPattern(tenant: string): string {
  return `"tenant"\\s*:\\s*"${tenant}"`;
}

/** Counts of what was removed (or pseudonymised, for usage rows). */
export interface PostgresErasure {
  usage_rows: number;
  hourly_rows: number;
  rejected_events: number;
  api_keys_deleted: number;
  audit_records_removed: number;
  tenant_deleted: boolean;
}

export async function erasePostgresData(
  db: pg.PoolClient,
  tenant: string,
  pseudonym: string | undefined,
): Promise<PostgresErasure> {
  await db.query(`SELECT pg_advisory_xact_lock($1)`, [LEDGER_LOCK]);
  const usage = pseudonym
    ? await db.query(`UPDATE usage_ledger SET tenant_id = $2 WHERE tenant_id = $1`, [tenant, pseudonym])
    : await db.query(`DELETE FROM usage_ledger WHERE tenant_id = $1`, [tenant]);
  const hourly = pseudonym
    ? await db.query(`UPDATE usage_hourly SET tenant_id = $2 WHERE tenant_id = $1`, [tenant, pseudonym])
    : await db.query(`DELETE FROM usage_hourly WHERE tenant_id = $1`, [tenant]);
  const rejects = await db.query(`DELETE FROM usage_rejects WHERE ${REJECTS_OF_TENANT}`, [
    tenant,
    rejectPattern(tenant),
  ]);
  const keys = await db.query(`DELETE FROM api_keys WHERE tenant_id = $1`, [tenant]);
  const row = await db.query(`DELETE FROM tenants WHERE id = $1`, [tenant]);
  // Tenant ids are [a-z0-9-], so they carry no LIKE wildcards.
  const audit = await db.query(
    `DELETE FROM audit_log WHERE (resource = $1 OR resource LIKE $2) AND action <> 'tenant.erase'`,
    [`tenants/${tenant}`, `tenants/${tenant}/%`],
  );
  return {
    usage_rows: usage.rowCount ?? 0,
    hourly_rows: hourly.rowCount ?? 0,
    rejected_events: rejects.rowCount ?? 0,
    api_keys_deleted: keys.rowCount ?? 0,
    audit_records_removed: audit.rowCount ?? 0,
    tenant_deleted: (row.rowCount ?? 0) > 0,
  };
}
