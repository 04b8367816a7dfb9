/**
 * The usage event: one per metered request, the contract between the proxy and the
 * control plane's ledger (documented in docs/usage-events.md). Version it on any change.
 */
import type { RequestContext } from '../context.js';
import type { Provenance } from './usage.js';

export interface UsageEvent {
  v: 1;
  /** Unique per request; the ledger's idempotency key. */
  request_id: string;
  /** ISO-8601 time the request arrived. */
  ts: string;
  tenant: string;
  plan: string;
  dialect: string;
  endpoint: string;
  /** The model sent upstream (after the plan's rewrite). */
  model: string;
  /** What the client asked for, or null when it named none. */
  model_requested: string | null;
  /** What the upstream reported using, or null. */
  upstream_model: string | null;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  reasoning_tokens: number;
  /** USD; null when the model has no price (never booked as 0). */
  cost_usd: number | null;
  status: number;
  stream: boolean;
  provenance: Provenance;
  latency_ms: number;
  ttfb_ms: number | null;
  /** sha256 hex of the API key used, when a key identified the tenant (absent for JWT and others). */
  api_key_sha256?: string;
}

/** The event for a finished request; undefined when there is no tenant to charge. */
export function usageEventOf(ctx: RequestContext): UsageEvent | undefined {
  if (!ctx.tenant || !ctx.provenance) return undefined;
  const u = ctx.usage;
  return {
    v: 1,
    request_id: ctx.id,
    ts: new Date(ctx.receivedAt).toISOString(),
    tenant: ctx.tenant.id,
    plan: ctx.tenant.planName,
    dialect: ctx.dialect?.name ?? 'none',
    endpoint: ctx.route?.endpoint ?? 'unknown',
    model: ctx.model ?? ctx.upstreamModel ?? 'unknown',
    model_requested: ctx.modelRequested ?? null,
    upstream_model: ctx.upstreamModel ?? null,
    input_tokens: u.input ?? 0,
    output_tokens: u.output ?? 0,
    cached_input_tokens: u.cachedInput ?? 0,
    cache_write_tokens: u.cacheWrite ?? 0,
    reasoning_tokens: u.reasoning ?? 0,
    cost_usd: ctx.costUsd ?? null,
    status: ctx.status ?? 0,
    stream: ctx.stream,
    provenance: ctx.provenance,
    latency_ms: Math.round(ctx.durationMs ?? 0),
    ttfb_ms: ctx.ttfbMs === undefined ? null : Math.round(ctx.ttfbMs),
    ...(ctx.apiKeyHash ? { api_key_sha256: ctx.apiKeyHash } : {}),
  };
}
