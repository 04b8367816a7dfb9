/**
 * The usage event is the ledger's input: an entry that does not match the schema is
 * rejected (booked in ledger_rejects), never guessed at, so hostile or broken entries on
 * the stream cannot reach billing.
 */
import { describe, expect, it } from 'vitest';
import { usageEventSchema, type UsageEvent } from '../src/index.js';

const event: UsageEvent = {
  v: 1,
  request_id: '0f6a3c9e-1111-4c1d-9d51-000000000001',
  ts: '2026-11-29T14:30:00.000Z',
  tenant: 'acme',
  plan: 'pro',
  dialect: 'openai',
  endpoint: 'chat.completions',
  model: 'gpt-4o-mini',
  model_requested: 'fast',
  upstream_model: 'gpt-4o-mini-2024-07-18',
  input_tokens: 12,
  output_tokens: 5,
  cached_input_tokens: 0,
  cache_write_tokens: 0,
  reasoning_tokens: 0,
  cost_usd: 0.0000123,
  status: 200,
  stream: false,
  provenance: 'reported',
  latency_ms: 120,
  ttfb_ms: 80,
};

describe('usageEventSchema', () => {
  it('accepts what the proxy writes, with or without the key hash', () => {
    expect(usageEventSchema.parse(event)).toEqual(event);
    const keyed = { ...event, api_key_sha256: 'a'.repeat(64) };
    expect(usageEventSchema.parse(keyed)).toEqual(keyed);
  });

  it.each([
    ['a future version', { v: 2 }],
    ['negative tokens', { input_tokens: -1 }],
    ['fractional tokens', { output_tokens: 1.5 }],
    ['tokens as a string', { output_tokens: '5' }],
    ['a negative cost', { cost_usd: -0.01 }],
    ['an unknown provenance', { provenance: 'guessed' }],
    ['a timestamp without a zone', { ts: '2026-11-29T14:30:00' }],
    ['an empty request id', { request_id: '' }],
    ['a tenant id past 63 characters', { tenant: 'a'.repeat(64) }],
    ['a key hash that is not hex', { api_key_sha256: 'z'.repeat(64) }],
  ])('refuses %s', (_name, change) => {
    expect(usageEventSchema.safeParse({ ...event, ...change }).success).toBe(false);
  });

  it('keeps "no price" (null) apart from a price of 0', () => {
    expect(usageEventSchema.parse({ ...event, cost_usd: null }).cost_usd).toBeNull();
    expect(usageEventSchema.parse({ ...event, cost_usd: 0 }).cost_usd).toBe(0);
  });
});
