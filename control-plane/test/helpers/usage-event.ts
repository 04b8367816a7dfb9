/**
 * A reported, unpriced chat usage event as a proxy sends it, for tests that book rows with
 * the real ledger code (bookEvents): only what a report groups by is a parameter.
 */
import { randomUUID } from 'node:crypto';
import type { UsageEvent } from '@lanekeeper/contract';

export function usageEvent(e: {
  tenant: string;
  ts: string;
  model: string;
  input: number;
  output: number;
}): UsageEvent {
  return {
    v: 1,
    request_id: randomUUID(),
    ts: e.ts,
    tenant: e.tenant,
    plan: 'free',
    dialect: 'openai',
    endpoint: 'chat',
    model: e.model,
    model_requested: null,
    upstream_model: e.model,
    input_tokens: e.input,
    output_tokens: e.output,
    cached_input_tokens: 0,
    cache_write_tokens: 0,
    reasoning_tokens: 0,
    cost_usd: null,
    status: 200,
    stream: false,
    provenance: 'reported',
    latency_ms: 10,
    ttfb_ms: 5,
  } as UsageEvent;
}
