/**
 * What an erasure's second sweep may still take as the erased tenant's. The sweep runs a while
 * after the erasure (resweep.ts), and meanwhile the same id may have been created again
 * (POST /v1/tenants lifts the tombstone) or erased again, on any replica, so this is decided
 * from PostgreSQL when the sweep runs, never from what the erasing process remembers.
 *
 * The rule is one cut-off time, `before`: what reached a store under the id before it is the
 * erased incarnation's, what reached one later is not. Ledger rows count from when they were
 * booked, rejects from when they were recorded, stream events from when they were appended:
 * server clocks, never the proxies' (an event's `ts` may lag its tenant's creation, from a
 * proxy's clock or its precision, and judging by it could delete a live tenant's usage).
 *
 *   not created again     `before` is when the sweep looks: the id has had no tenant since the
 *                         erasure, so everything under it is the erased tenant's
 *   created again         `before` is the new tenant row's created_at: the new tenant's requests
 *                         are admitted only once it exists, so nothing of it reaches a store
 *                         earlier; late events of the erased tenant that arrived in between
 *                         are swept. One that arrives only after the creation names the erased
 *                         incarnation (tenants.incarnation, which proxies copy from the config
 *                         into each event), and the ledger books it to no one
 *                         (ledger/book-events.ts). Only an event without an incarnation (from
 *                         a proxy older than incarnations, or one on a hand-written config)
 *                         is still booked to the new tenant then.
 *   erased again, or being erased   nothing: that erasure sweeps everything and has its own
 *                         second sweep (this one would re-key rows to the wrong pseudonym)
 */
import type { Db } from '../stores/postgres.js';

/** How far a second sweep reaches. */
export type SweepScope = { kind: 'superseded' } | { kind: 'erased' | 'recreated'; before: Date };

/** The erasure a second sweep follows up. */
export interface SweptErasure {
  tenant: string;
  started_at: string;
  /** Where its usage rows went, when billing records are kept. */
  pseudonym?: string;
}

export async function sweepScope(db: Db, erasure: SweptErasure): Promise<SweepScope> {
  const { rows } = await db.query(
    `SELECT now() AS now,
            (SELECT created_at FROM tenants WHERE id = $1) AS recreated_at,
            EXISTS (SELECT 1 FROM erasure_jobs WHERE tenant_id = $1)
              OR EXISTS (SELECT 1 FROM audit_log WHERE action = 'tenant.erase' AND resource = 'tenants/' || $1
                            AND (after->>'started_at')::timestamptz > $2::timestamptz) AS superseded`,
    [erasure.tenant, erasure.started_at],
  );
  const row = rows[0] as { now: Date; recreated_at: Date | null; superseded: boolean };
  if (row.superseded) return { kind: 'superseded' };
  if (row.recreated_at) return { kind: 'recreated', before: row.recreated_at };
  return { kind: 'erased', before: row.now };
}
