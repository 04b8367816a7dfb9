/**
 * Fixtures shared by the store suite, the Redis tests and their child processes: a fixed
 * clock, fresh tenant ids, admission requests and usage events with sensible defaults, and
 * a full garbage collection on demand. Free of vitest, so a plain child process can import it.
 */
import { randomUUID } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { RateLimits } from '../config/schema.js';
import type { UsageEvent } from '../usage/usage-event.js';
import { MINUTE_MS, type AdmitRequest } from './store.js';

/** 2026-11-29T14:00:00Z: a fixed clock, so day and month boundaries are known. */
export const T0 = Date.UTC(2026, 10, 29, 14, 0, 0);

/** A tenant id no other test uses. */
export function freshTenant(): string {
  return `t-${randomUUID().slice(0, 12)}`;
}

/** An admission request with sensible defaults. */
export function admitRequest(
  tenant: string,
  limits: RateLimits,
  over: Partial<AdmitRequest> = {},
): AdmitRequest {
  return {
    tenant,
    requestId: randomUUID(),
    now: T0,
    limits,
    promptTokens: 100,
    maxOutput: 100,
    inputPrice: 0,
    outputPrice: 0,
    slotTtlMs: 10 * MINUTE_MS,
    ...over,
  };
}

/** A usage event for metering tests. */
export function usageEvent(tenant: string, over: Partial<UsageEvent> = {}): UsageEvent {
  return {
    v: 1,
    request_id: randomUUID(),
    ts: new Date(T0 + 5 * MINUTE_MS).toISOString(),
    tenant,
    plan: 'free',
    dialect: 'openai',
    endpoint: 'chat.completions',
    model: 'gpt-4o-mini',
    model_requested: null,
    upstream_model: 'gpt-4o-mini-2024-07-18',
    input_tokens: 10,
    output_tokens: 20,
    cached_input_tokens: 3,
    cache_write_tokens: 1,
    reasoning_tokens: 5,
    cost_usd: 0.001,
    status: 200,
    stream: false,
    provenance: 'reported',
    latency_ms: 120,
    ttfb_ms: 40,
    ...over,
  };
}

let gc: (() => void) | undefined;

/**
 * Runs a full garbage collection now, so a test can see what the process does once an object
 * is collected (the slot heartbeat holds reservations weakly). V8's `gc` is exposed at run
 * time: test workers are not started with --expose-gc.
 */
export function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}
