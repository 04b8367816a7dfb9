/**
 * Books one batch of usage events into PostgreSQL in one transaction: ledger rows keyed by
 * request_id (ON CONFLICT DO NOTHING, so redelivery never double-counts), hourly rollups
 * summed only from the rows that were actually inserted, and rejects for events that do
 * not parse (a string PostgreSQL cannot store is booked escaped, see storable-text.ts). The price version in force at each
 * event's ts is found, and the cost computed, in SQL over numeric columns, so the ledger's
 * cost is exact and explainable.
 *
 * An event that names its tenant's incarnation is booked only to the tenant row holding that
 * incarnation. After an erasure the id may belong to a tenant created again, and an event of
 * the erased tenant can still arrive (a proxy's backlog): it is dropped and counted as an
 * erased tenant's, neither booked nor kept as a reject under the new tenant's id.
 */
import type pg from 'pg';
import {
  INCARNATION_PATTERN,
  TENANT_ID_PATTERN,
  usageEventSchema as eventSchema,
  type UsageEvent,
} from '@lanekeeper/contract';
import { withTransaction, type Db } from '../stores/postgres.js';
import { isPlainText } from '../http/plain-text.js';
import { storableText } from './storable-text.js';

/** One stream entry as XREADGROUP returns it; fields is null when the entry was deleted. */
export interface StreamEntry {
  id: string;
  fields: string[] | null;
}

/** An entry kept in usage_rejects instead of the ledger. */
export interface Rejection {
  /** The entry's id as given (not escaped for storage). */
  id: string;
  reason: string;
}

/** What happened to a batch. */
export interface BookingResult {
  inserted: number;
  duplicates: number;
  rejected: number;
  /**
   * Events of tenants being erased or erased, and events naming an incarnation no current
   * tenant of their id has (an erased tenant's, the id since created again): dropped on purpose.
   */
  erased: number;
}

/** A BookingResult that also says which entries were rejected (`rejected` of them), and why. */
export interface BookingDetail extends BookingResult {
  rejects: Rejection[];
}

/** Held shared by every booking and exclusively by erasure, so no booking straddles an erasure. */
export const LEDGER_LOCK = 0x4c4b4c45; // "LKLE"

function fieldOf(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

const INSERT = `
WITH input AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(
    request_id text, tenant text, ts timestamptz, plan text, dialect text, endpoint text, model text,
    model_requested text, upstream_model text, input_tokens bigint, output_tokens bigint,
    cached_input_tokens bigint, cache_write_tokens bigint, reasoning_tokens bigint, cost_usd numeric,
    status integer, stream boolean, provenance text, latency_ms integer, ttfb_ms integer, stream_id text,
    api_key_sha256 text, tenant_incarnation uuid)
  -- Drop events of a tenant being erased, or erased and not re-created (a request that was in
  -- flight during its erasure): they must not bring the tenant back into the ledger. An event
  -- that names its incarnation must find that very row: once the id is created again, the
  -- erased tenant's late events name an incarnation the new row does not have.
  WHERE x.tenant NOT IN (SELECT tenant_id FROM erasure_jobs)
    AND CASE WHEN x.tenant_incarnation IS NULL THEN
          EXISTS (SELECT 1 FROM tenants t WHERE t.id = x.tenant)
          OR NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.action = 'tenant.erase' AND a.resource = 'tenants/' || x.tenant)
        ELSE EXISTS (SELECT 1 FROM tenants t WHERE t.id = x.tenant AND t.incarnation = x.tenant_incarnation)
        END
), used AS (
  UPDATE api_keys k SET last_used_at = greatest(k.last_used_at, u.ts)
    FROM (SELECT api_key_sha256, max(ts) AS ts FROM input WHERE api_key_sha256 IS NOT NULL GROUP BY 1) u
   WHERE k.sha256 = u.api_key_sha256
), priced AS (
  SELECT i.*, pv.id AS price_version, pe.input AS p_in, pe.output AS p_out,
         coalesce(pe.cached_input, pe.input) AS p_cached, coalesce(pe.cache_write, pe.input) AS p_write,
         least(i.cached_input_tokens, i.input_tokens) AS n_cached
    FROM input i
    LEFT JOIN LATERAL (SELECT id FROM price_versions WHERE effective_from <= i.ts
                        ORDER BY effective_from DESC, id DESC LIMIT 1) pv ON true
    LEFT JOIN price_entries pe ON pe.version_id = pv.id AND pe.model = i.model
), costed AS (
  SELECT p.*, least(p.cache_write_tokens, p.input_tokens - p.n_cached) AS n_write FROM priced p
), ins AS (
  INSERT INTO usage_ledger (request_id, tenant_id, ts, plan, dialect, endpoint, model, model_requested,
    upstream_model, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens,
    price_version, cost_usd, reported_cost_usd, status, stream, provenance, latency_ms, ttfb_ms, stream_id)
  SELECT request_id, tenant, ts, plan, dialect, endpoint, model, model_requested, upstream_model,
    input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, price_version,
    CASE WHEN p_in IS NULL THEN NULL ELSE
      ((input_tokens - n_cached - n_write) * p_in + n_cached * p_cached + n_write * p_write
        + output_tokens * p_out) / 1000000 END,
    cost_usd, status, stream, provenance, latency_ms, ttfb_ms, stream_id
  FROM costed
  -- In one order whatever the batch's: two posts of overlapping batches in other orders
  -- each held a row the other waited on (a deadlock, answered 500).
  ORDER BY request_id
  ON CONFLICT (request_id) DO NOTHING
  RETURNING tenant_id, ts, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens,
            reasoning_tokens, cost_usd
), rollup AS (
  INSERT INTO usage_hourly AS h (tenant_id, hour, requests, input_tokens, output_tokens, cached_input_tokens,
    cache_write_tokens, reasoning_tokens, cost_usd, unpriced_requests)
  SELECT tenant_id, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', count(*), sum(input_tokens),
    sum(output_tokens), sum(cached_input_tokens), sum(cache_write_tokens), sum(reasoning_tokens),
    coalesce(sum(cost_usd), 0), count(*) FILTER (WHERE cost_usd IS NULL)
  FROM ins GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (tenant_id, hour) DO UPDATE SET
    requests = h.requests + EXCLUDED.requests,
    input_tokens = h.input_tokens + EXCLUDED.input_tokens,
    output_tokens = h.output_tokens + EXCLUDED.output_tokens,
    cached_input_tokens = h.cached_input_tokens + EXCLUDED.cached_input_tokens,
    cache_write_tokens = h.cache_write_tokens + EXCLUDED.cache_write_tokens,
    reasoning_tokens = h.reasoning_tokens + EXCLUDED.reasoning_tokens,
    cost_usd = h.cost_usd + EXCLUDED.cost_usd,
    unpriced_requests = h.unpriced_requests + EXCLUDED.unpriced_requests
  RETURNING 1
)
SELECT (SELECT count(*) FROM input)::int AS eligible, (SELECT count(*) FROM ins)::int AS inserted,
       (SELECT count(*) FROM rollup)::int AS rollups`;

/**
 * True when the batch's content is at fault, not the database: PostgreSQL's data and
 * integrity errors (classes 22, 23), its program limits (class 54: a batch whose events
 * together pass jsonb's 256 MB), and a batch too big to serialise at all (RangeError). Each
 * of those is booked event by event (bookOrIsolate); taken for an outage, it was read again
 * and again, and nothing behind it was ever booked.
 */
export function isDataError(error: unknown): boolean {
  if (error instanceof RangeError) return true;
  const code = (error as { code?: unknown } | undefined)?.code;
  return (
    typeof code === 'string' && (code.startsWith('22') || code.startsWith('23') || code.startsWith('54'))
  );
}

/**
 * Keeps an entry the ledger cannot book (so it is acknowledged without being lost); false
 * when it was dropped instead, as an erased incarnation's (see insertReject).
 */
export async function rejectEntry(pool: pg.Pool, entry: StreamEntry, reason: string): Promise<boolean> {
  return insertReject(
    pool,
    { id: entry.id, reason },
    entry.fields ? fieldOf(entry.fields, 'event') : undefined,
  );
}

/** A rejected payload's top-level fields, read leniently since it is no valid event. */
function payloadFields(payload: string | undefined): Record<string, unknown> | undefined {
  let json: unknown;
  try {
    json = JSON.parse(payload ?? 'null');
  } catch {
    return undefined;
  }
  return typeof json === 'object' && json !== null && !Array.isArray(json)
    ? (json as Record<string, unknown>)
    : undefined;
}

/**
 * The tenant and incarnation a rejected payload names: undefined (the reject is kept, as
 * before) unless both are well formed in a version 1 event, so an event of a version this
 * ledger does not know is parked, never dropped.
 */
function claimedIncarnation(
  fields: Record<string, unknown> | undefined,
): { tenant: string; incarnation: string } | undefined {
  if (!fields) return undefined;
  const { v, tenant, tenant_incarnation: incarnation } = fields;
  if (v !== 1) return undefined;
  if (typeof tenant !== 'string' || !TENANT_ID_PATTERN.test(tenant)) return undefined;
  if (typeof incarnation !== 'string' || !INCARNATION_PATTERN.test(incarnation)) return undefined;
  return { tenant, incarnation };
}

// A reject holds the whole event, so one of an erased incarnation would keep the erased
// tenant's data under the id's new tenant, past the erasure's second sweep: it is dropped, as
// the ledger drops such an event. One statement decides and inserts, on one snapshot. The
// tenant the payload names, whatever its version, is kept beside it for erasure to find.
const INSERT_REJECT = `
WITH claim AS (
  SELECT $4::text IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM tenants WHERE id = $4 AND incarnation = $5::uuid) AS erased
), kept AS (
  INSERT INTO usage_rejects (stream_id, payload, reason, tenant_id)
  SELECT $1, $2, $3, $6 FROM claim WHERE NOT erased
  ON CONFLICT (stream_id) DO NOTHING
)
SELECT erased FROM claim`;

/**
 * Keeps a rejected entry, escaped, because a payload or request id that PostgreSQL refused
 * must still be recordable; false when it named an incarnation no tenant of its id has now.
 */
async function insertReject(db: Db, rejection: Rejection, payload: string | undefined): Promise<boolean> {
  const fields = payloadFields(payload);
  const claim = claimedIncarnation(fields);
  const tenant = typeof fields?.tenant === 'string' ? storableText(fields.tenant) : null;
  const { rows } = await db.query(INSERT_REJECT, [
    storableText(rejection.id),
    payload === undefined ? null : storableText(payload),
    storableText(rejection.reason),
    claim?.tenant ?? null,
    claim?.incarnation ?? null,
    tenant,
  ]);
  return !(rows[0] as { erased: boolean }).erased;
}

type Parsed = { event: UsageEvent } | { reason: string };

/** The event with every string field escaped where PostgreSQL cannot store it (storableText). */
function storableEvent<T extends Record<string, unknown>>(event: T): T {
  if (Object.values(event).every((value) => typeof value !== 'string' || isPlainText(value))) return event;
  const out: Record<string, unknown> = { ...event };
  for (const [name, value] of Object.entries(out))
    if (typeof value === 'string') out[name] = storableText(value);
  return out as T;
}

function parseEntry(payload: string | undefined): Parsed {
  let json: unknown;
  try {
    json = JSON.parse(payload ?? 'null');
  } catch {
    return { reason: 'the event field is not JSON' };
  }
  const result = eventSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    return { reason: `${issue?.path.join('.')}: ${issue?.message}` };
  }
  // Relayed text (a model name an upstream reported) may hold what PostgreSQL cannot store.
  // The usage it records is real and billable, so it is booked with that text escaped, not
  // set aside (which would leave the request unbilled).
  return { event: storableEvent(result.data) };
}

/** Books a batch in one transaction; the caller acknowledges the entries only after this resolves. */
export async function bookEvents(pool: pg.Pool, entries: StreamEntry[]): Promise<BookingDetail> {
  const rows: Record<string, unknown>[] = [];
  const rejects: (Rejection & { payload: string | undefined })[] = [];
  const seen = new Set<string>();
  let batchDuplicates = 0;
  for (const entry of entries) {
    if (entry.fields === null) continue; // deleted from the stream (erasure) while pending
    const payload = fieldOf(entry.fields, 'event');
    const parsed = parseEntry(payload);
    if ('reason' in parsed) {
      rejects.push({ id: entry.id, reason: parsed.reason, payload });
      continue;
    }
    if (seen.has(parsed.event.request_id)) {
      batchDuplicates++;
      continue;
    }
    seen.add(parsed.event.request_id);
    const { request_id, v: _v, ...rest } = parsed.event;
    rows.push({
      ...rest,
      request_id,
      latency_ms: Math.round(rest.latency_ms),
      ttfb_ms: rest.ttfb_ms === null ? null : Math.round(rest.ttfb_ms),
      stream_id: storableText(entry.id),
    });
  }
  return withTransaction(pool, async (db) => {
    await db.query(`SELECT pg_advisory_xact_lock_shared($1)`, [LEDGER_LOCK]);
    const kept: Rejection[] = [];
    for (const r of rejects)
      if (await insertReject(db, r, r.payload)) kept.push({ id: r.id, reason: r.reason });
    const rejected = { rejected: kept.length, rejects: kept };
    const erasedRejects = rejects.length - kept.length;
    if (rows.length === 0)
      return { inserted: 0, duplicates: batchDuplicates, erased: erasedRejects, ...rejected };
    const { rows: out } = await db.query(INSERT, [JSON.stringify(rows)]);
    const { eligible, inserted } = out[0] as { eligible: number; inserted: number };
    return {
      inserted,
      duplicates: batchDuplicates + (eligible - inserted),
      erased: erasedRejects + rows.length - eligible,
      ...rejected,
    };
  });
}
