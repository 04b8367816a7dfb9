/**
 * The audit log: one row per change (who, what, which resource, before and after). Rows
 * are written in the same transaction as the change they describe, so the log can never
 * disagree with the data.
 */
import type { Db } from './postgres.js';

/** One change, as recorded. */
export interface AuditEntry {
  actor: string;
  /** Dotted verb, e.g. `tenant.update`, `key.revoke`, `tenant.erase`. */
  action: string;
  /** REST path of the resource, e.g. `tenants/acme` or `tenants/acme/keys/key_x`. */
  resource: string;
  before?: unknown;
  after?: unknown;
}

/** A stored audit record. */
export interface AuditRecord extends Required<AuditEntry> {
  id: number;
  at: string;
}

export async function recordAudit(db: Db, entry: AuditEntry): Promise<void> {
  await db.query(
    `INSERT INTO audit_log (actor, action, resource, before, after) VALUES ($1, $2, $3, $4, $5)`,
    [
      entry.actor,
      entry.action,
      entry.resource,
      entry.before === undefined ? null : JSON.stringify(entry.before),
      entry.after === undefined ? null : JSON.stringify(entry.after),
    ],
  );
}

/**
 * Newest first; `before` is the id cursor of the previous page's last row. `tenant` matches
 * the tenant's own record and everything under it (its keys); `actor` is the whole actor
 * (`admin:alice`) or the name a caller declared (`alice`), as the audit page shows it.
 */
export async function listAudit(
  db: Db,
  opts: {
    limit: number;
    before?: number;
    resource?: string;
    action?: string;
    tenant?: string;
    actor?: string;
  },
): Promise<AuditRecord[]> {
  const { rows } = await db.query(
    `SELECT id, actor, action, resource, before, after, at FROM audit_log
      WHERE ($1::bigint IS NULL OR id < $1) AND ($2::text IS NULL OR resource = $2) AND ($3::text IS NULL OR action = $3)
        AND ($5::text IS NULL OR resource = 'tenants/' || $5 OR starts_with(resource, 'tenants/' || $5 || '/'))
        AND ($6::text IS NULL OR actor = $6 OR actor = 'admin:' || $6)
      ORDER BY id DESC LIMIT $4`,
    [
      opts.before ?? null,
      opts.resource ?? null,
      opts.action ?? null,
      opts.limit,
      opts.tenant ?? null,
      opts.actor ?? null,
    ],
  );
  return rows.map((r) => ({ ...r, at: (r.at as Date).toISOString() }));
}

/** The completed erasure record of a tenant, if it was erased (makes DELETE idempotent). */
export async function findErasureRecord(db: Db, tenant: string): Promise<AuditRecord | undefined> {
  const { rows } = await db.query(
    `SELECT id, actor, action, resource, before, after, at FROM audit_log
      WHERE action = 'tenant.erase' AND resource = $1 ORDER BY id DESC LIMIT 1`,
    [`tenants/${tenant}`],
  );
  const r = rows[0];
  return r ? { ...r, at: (r.at as Date).toISOString() } : undefined;
}
