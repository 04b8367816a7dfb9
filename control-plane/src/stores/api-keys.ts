/**
 * Tenant API keys. A key is `lk_` plus 32 random bytes in base64url, shown once at
 * creation; only its sha256 (what the proxy compares) and a short display prefix are kept.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from './postgres.js';

const KEY_BYTES = 32;
/** Characters of the key kept for display: "lk_" and 8 more, far too few to guess the rest. */
const DISPLAY_PREFIX = 11;

/** A key as listed: never the key itself. */
export interface KeyView {
  id: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

interface KeyRow {
  id: string;
  prefix: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

function view(r: KeyRow): KeyView {
  return {
    id: r.id,
    prefix: r.prefix,
    created_at: r.created_at.toISOString(),
    last_used_at: r.last_used_at?.toISOString() ?? null,
    revoked_at: r.revoked_at?.toISOString() ?? null,
  };
}

/** sha256 hex of a key, as the proxy's api_key_sha256 holds it. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** A fresh key and its id. */
export function generateKey(): { id: string; key: string } {
  return {
    id: `key_${randomBytes(12).toString('base64url')}`,
    key: `lk_${randomBytes(KEY_BYTES).toString('base64url')}`,
  };
}

/** Stores a new key's hash; returns the listing view. */
export async function insertKey(db: Db, tenant: string, id: string, key: string): Promise<KeyView> {
  const { rows } = await db.query(
    `INSERT INTO api_keys (id, tenant_id, sha256, prefix) VALUES ($1, $2, $3, $4) RETURNING *`,
    [id, tenant, hashKey(key), key.slice(0, DISPLAY_PREFIX)],
  );
  return view(rows[0]);
}

export async function listKeys(db: Db, tenant: string): Promise<KeyView[]> {
  const { rows } = await db.query(`SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id`, [
    tenant,
  ]);
  return rows.map(view);
}

export async function getKey(db: Db, tenant: string, id: string): Promise<KeyView | undefined> {
  const { rows } = await db.query(`SELECT * FROM api_keys WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, [
    tenant,
    id,
  ]);
  return rows[0] ? view(rows[0]) : undefined;
}

/** Marks a key revoked (keeps an earlier revocation time). */
export async function revokeKey(db: Db, tenant: string, id: string): Promise<KeyView> {
  const { rows } = await db.query(
    `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE tenant_id = $1 AND id = $2 RETURNING *`,
    [tenant, id],
  );
  return view(rows[0]);
}

/** Deletes every key of a tenant (erasure); returns how many. */
export async function deleteTenantKeys(db: Db, tenant: string): Promise<number> {
  const { rowCount } = await db.query(`DELETE FROM api_keys WHERE tenant_id = $1`, [tenant]);
  return rowCount ?? 0;
}
