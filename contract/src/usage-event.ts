/**
 * The usage event: one per metered request, XADDed by the proxies to the usage stream and
 * booked by the control plane's ledger (documented in docs/usage-events.md). The proxy
 * builds it from a finished request; the ledger parses every entry with this schema, and
 * an entry that does not parse is rejected, never guessed at. Version it on any change.
 */
import { z } from 'zod';
import { incarnationSchema, TENANT_ID_PATTERN } from './tenancy.js';

/** Where a usage figure came from; billing tells them apart (see the proxy's usage.ts). */
export const PROVENANCES = ['reported', 'estimated', 'partial', 'invalid'] as const;

/**
 * More tokens than any single answer has; the proxy clamps a larger reported figure to it
 * and books the event as `invalid`. The ledger holds events to the same bound: 2^53 was
 * let through, and 1,024 such events in one hour overflowed the tenant's bigint hourly
 * rollup, after which every real event of that hour was rejected, never billed.
 */
export const MAX_TOKENS = 1e12;

const tokens = z.number().int().nonnegative().max(MAX_TOKENS);

export const usageEventSchema = z.object({
  v: z.literal(1),
  /**
   * Unique per request; the ledger's idempotency key. Visible ASCII (the proxy's are UUIDs):
   * text PostgreSQL cannot store is booked escaped, and an escaped id could equal another
   * request's, which would then be taken for a duplicate and never billed.
   */
  request_id: z.string().regex(/^[\x21-\x7e]{1,200}$/, {
    message: 'expected 1 to 200 visible ASCII characters',
  }),
  /** ISO-8601 time the request arrived. */
  ts: z.iso.datetime({ offset: true }),
  tenant: z
    .string()
    .regex(TENANT_ID_PATTERN, { message: 'expected a tenant id (^[a-z0-9][a-z0-9-]{0,62}$)' }),
  plan: z.string(),
  dialect: z.string(),
  endpoint: z.string(),
  /** The model sent upstream (after the plan's rewrite). */
  model: z.string(),
  /** What the client asked for, or null when it named none. */
  model_requested: z.string().nullable(),
  /** What the upstream reported using, or null. */
  upstream_model: z.string().nullable(),
  input_tokens: tokens,
  output_tokens: tokens,
  cached_input_tokens: tokens,
  cache_write_tokens: tokens,
  reasoning_tokens: tokens,
  /** USD; null when the model has no price (never booked as 0). */
  cost_usd: z.number().nonnegative().nullable(),
  status: z.number().int().nonnegative(),
  stream: z.boolean(),
  provenance: z.enum(PROVENANCES),
  latency_ms: z.number().nonnegative(),
  ttfb_ms: z.number().nonnegative().nullable(),
  /** sha256 hex of the API key used, when a key identified the tenant (absent for JWT and others). */
  api_key_sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .nullish(),
  /**
   * The incarnation of `tenant` the request was admitted for, when the proxy's config gave
   * the tenant one (the control plane's always does). The ledger books such an event only to
   * the tenant row of that incarnation; without it the event is booked as before.
   */
  tenant_incarnation: incarnationSchema.optional(),
});

export type UsageEvent = z.infer<typeof usageEventSchema>;
