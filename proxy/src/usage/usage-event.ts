/**
 * The usage event of a finished request. Its shape is the contract with the control plane's
 * ledger (@lanekeeper/contract, documented in docs/usage-events.md).
 */
import type { UsageEvent } from '@lanekeeper/contract';
import type { RequestContext } from '../context.js';

export type { UsageEvent } from '@lanekeeper/contract';

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
    // The incarnation the request was admitted for, from the config in force at its arrival:
    // should the tenant be erased and its id created again before the event is booked, the
    // ledger can tell it is the erased tenant's.
    ...(ctx.tenant.config.incarnation ? { tenant_incarnation: ctx.tenant.config.incarnation } : {}),
  };
}
