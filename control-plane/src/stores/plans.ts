/**
 * Plans in PostgreSQL. The body column holds a plan exactly as the proxy's planSchema
 * parses it, so GET /v1/config can hand it to proxies unchanged.
 */
import type { PlanConfig } from '@lanekeeper/contract';
import type { Db } from './postgres.js';

/** A plan as the admin API shows it: the proxy shape plus its id and timestamps. */
export type PlanView = { id: string; created_at: string; updated_at: string } & PlanConfig;

function view(row: { id: string; body: PlanConfig; created_at: Date; updated_at: Date }): PlanView {
  return {
    id: row.id,
    ...row.body,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/** Inserts a plan; returns undefined when the id is taken. */
export async function insertPlan(db: Db, id: string, body: PlanConfig): Promise<PlanView | undefined> {
  const { rows } = await db.query(
    `INSERT INTO plans (id, body) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING *`,
    [id, JSON.stringify(body)],
  );
  return rows[0] ? view(rows[0]) : undefined;
}

/** Reads a plan; `lock` takes a row lock for a read-modify-write in a transaction. */
export async function getPlan(db: Db, id: string, lock = false): Promise<PlanView | undefined> {
  const { rows } = await db.query(`SELECT * FROM plans WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
  return rows[0] ? view(rows[0]) : undefined;
}

export async function listPlans(db: Db, opts: { limit: number; after?: string }): Promise<PlanView[]> {
  const { rows } = await db.query(
    `SELECT * FROM plans WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2`,
    [opts.after ?? null, opts.limit],
  );
  return rows.map(view);
}

export async function updatePlan(db: Db, id: string, body: PlanConfig): Promise<PlanView> {
  const { rows } = await db.query(
    `UPDATE plans SET body = $2, updated_at = now() WHERE id = $1 RETURNING *`,
    [id, JSON.stringify(body)],
  );
  return view(rows[0]);
}

/** How many tenants use the plan (a plan in use cannot be deleted). */
export async function tenantsOnPlan(db: Db, id: string): Promise<number> {
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM tenants WHERE plan = $1`, [id]);
  return rows[0].n as number;
}

export async function deletePlan(db: Db, id: string): Promise<void> {
  await db.query(`DELETE FROM plans WHERE id = $1`, [id]);
}

/** Every plan keyed by id, in the proxy's `plans:` shape. */
export async function allPlans(db: Db): Promise<Record<string, PlanConfig>> {
  const { rows } = await db.query(`SELECT id, body FROM plans ORDER BY id`);
  return Object.fromEntries(rows.map((r) => [r.id, r.body]));
}
