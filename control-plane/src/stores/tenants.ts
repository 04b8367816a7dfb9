/**
 * Tenants in PostgreSQL: id, plan, status and overrides in the proxy's shapes, and the
 * incarnation PostgreSQL gives each row (new when an erased id is created again). A tenant
 * whose erasure has begun is hidden from proxies (see `configTenants`) even before its row
 * is gone, so the proxies refuse it at once.
 */
import type { TenantConfig } from '@lanekeeper/contract';
import type { Db } from './postgres.js';

type Overrides = TenantConfig['overrides'];

/** A tenant as the admin API shows it. */
export interface TenantView {
  id: string;
  plan: string;
  status: 'active' | 'suspended';
  overrides: Overrides;
  created_at: string;
  updated_at: string;
}

interface TenantRow {
  id: string;
  plan: string;
  status: 'active' | 'suspended';
  overrides: Overrides;
  created_at: Date;
  updated_at: Date;
}

function view(row: TenantRow): TenantView {
  return {
    id: row.id,
    plan: row.plan,
    status: row.status,
    overrides: row.overrides,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/** Inserts a tenant; undefined when the id is taken. */
export async function insertTenant(
  db: Db,
  t: { id: string; plan: string; status: 'active' | 'suspended'; overrides: Overrides },
): Promise<TenantView | undefined> {
  const { rows } = await db.query(
    `INSERT INTO tenants (id, plan, status, overrides) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO NOTHING RETURNING *`,
    [t.id, t.plan, t.status, JSON.stringify(t.overrides)],
  );
  return rows[0] ? view(rows[0]) : undefined;
}

/** A tenant, unless it does not exist or is being erased. */
export async function getTenant(db: Db, id: string, lock = false): Promise<TenantView | undefined> {
  const { rows } = await db.query(
    `SELECT * FROM tenants WHERE id = $1 AND id NOT IN (SELECT tenant_id FROM erasure_jobs)${lock ? ' FOR UPDATE' : ''}`,
    [id],
  );
  return rows[0] ? view(rows[0]) : undefined;
}

export async function listTenants(db: Db, opts: { limit: number; after?: string }): Promise<TenantView[]> {
  const { rows } = await db.query(
    `SELECT * FROM tenants WHERE ($1::text IS NULL OR id > $1) AND id NOT IN (SELECT tenant_id FROM erasure_jobs)
      ORDER BY id LIMIT $2`,
    [opts.after ?? null, opts.limit],
  );
  return rows.map(view);
}

export async function updateTenant(
  db: Db,
  id: string,
  t: { plan: string; status: 'active' | 'suspended'; overrides: Overrides },
): Promise<TenantView> {
  const { rows } = await db.query(
    `UPDATE tenants SET plan = $2, status = $3, overrides = $4, updated_at = now() WHERE id = $1 RETURNING *`,
    [id, t.plan, t.status, JSON.stringify(t.overrides)],
  );
  return view(rows[0]);
}

/**
 * Every tenant a proxy should know, with the sha256 of its active keys and its incarnation
 * (which the proxy puts in its usage events), in the proxy's `tenants:` shape.
 */
export async function configTenants(db: Db): Promise<TenantConfig[]> {
  const { rows } = await db.query(
    `SELECT t.id, t.plan, t.status, t.overrides, t.incarnation,
            coalesce(array_agg(k.sha256 ORDER BY k.created_at, k.id) FILTER (WHERE k.sha256 IS NOT NULL), '{}') AS keys
       FROM tenants t
       LEFT JOIN api_keys k ON k.tenant_id = t.id AND k.revoked_at IS NULL
      WHERE t.id NOT IN (SELECT tenant_id FROM erasure_jobs)
      GROUP BY t.id ORDER BY t.id`,
  );
  return rows.map((r) => ({
    id: r.id,
    plan: r.plan,
    status: r.status,
    api_key_sha256: r.keys,
    overrides: r.overrides,
    incarnation: r.incarnation,
  }));
}
