/**
 * The usage event is the ledger's input: an entry that does not match the schema is
 * rejected (booked in ledger_rejects), never guessed at, so hostile or broken entries on
 * the stream cannot reach billing.
 */
import { describe, expect, it } from 'vitest';
import { usageEventSchema, type UsageEvent } from '../src/index.js';

const INCARNATION = '6f1c2b9e-4d7a-4f0e-9b1a-3c5d7e9f1a2b';

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
  it('accepts what the proxy writes, with or without the key hash and the incarnation', () => {
    expect(usageEventSchema.parse(event)).toEqual(event);
    const keyed = { ...event, api_key_sha256: 'a'.repeat(64) };
    expect(usageEventSchema.parse(keyed)).toEqual(keyed);
    const incarnated = { ...event, tenant_incarnation: INCARNATION };
    expect(usageEventSchema.parse(incarnated)).toEqual(incarnated);
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
    ['an incarnation that is a number', { tenant_incarnation: 7 }],
    ['an incarnation that is null', { tenant_incarnation: null }],
    ['an empty incarnation', { tenant_incarnation: '' }],
    ['a 10 KB incarnation', { tenant_incarnation: 'a'.repeat(10_240) }],
    ['an incarnation with a NUL', { tenant_incarnation: `${INCARNATION.slice(0, -1)}\u0000` }],
    ['an upper-case incarnation', { tenant_incarnation: INCARNATION.toUpperCase() }],
  ])('refuses %s', (_name, change) => {
    expect(usageEventSchema.safeParse({ ...event, ...change }).success).toBe(false);
  });

  it('keeps "no price" (null) apart from a price of 0', () => {
    expect(usageEventSchema.parse({ ...event, cost_usd: null }).cost_usd).toBeNull();
    expect(usageEventSchema.parse({ ...event, cost_usd: 0 }).cost_usd).toBe(0);
  });
});
