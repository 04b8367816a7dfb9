/**
 * The plan, tenant and price schemas both sides validate with. Hostile values an admin API
 * caller or a YAML author could send are refused with the path named, never coerced.
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_OUTPUT_TOKENS,
  TENANT_ID_PATTERN,
  allowed,
  allowPathSchema,
  overridesSchema,
  planSchema,
  priceSchema,
  priceTableSchema,
  tenantSchema,
} from '../src/index.js';

const problems = (result: { success: boolean; error?: { issues: { path: PropertyKey[] }[] } }) =>
  result.success ? [] : (result.error?.issues.map((i) => i.path.join('.')) ?? []);

describe('planSchema', () => {
  it('fills defaults: output cap 4096, no limits, no features', () => {
    const plan = planSchema.parse({ models: { default: 'gpt-4o-mini' } });
    expect(plan.max_output_tokens).toBe(DEFAULT_MAX_OUTPUT_TOKENS);
    expect(plan.rate_limits).toEqual({});
    expect(plan.features).toEqual([]);
    expect(plan.allow_paths).toEqual([]);
  });

  it('needs models.default', () => {
    const result = planSchema.safeParse({ models: { fast: 'gpt-4o-mini' } });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toMatch(/models\.default/);
  });

  it.each([
    ['a negative limit', { rate_limits: { requests_per_minute: -1 } }, 'rate_limits.requests_per_minute'],
    ['a fractional limit', { rate_limits: { tokens_per_hour: 1.5 } }, 'rate_limits.tokens_per_hour'],
    ['a string limit', { rate_limits: { max_concurrent: '10' } }, 'rate_limits.max_concurrent'],
    ['a zero budget', { rate_limits: { budget_usd_per_day: 0 } }, 'rate_limits.budget_usd_per_day'],
    ['an unknown key', { rate_limit: {} }, ''],
    ['an empty model id', { models: { default: '' } }, 'models.default'],
    ['a zero output cap', { max_output_tokens: 0 }, 'max_output_tokens'],
    ['a relative allow path', { allow_paths: [{ method: 'GET', path: 'v1/files' }] }, 'allow_paths.0.path'],
  ])('refuses %s', (_name, extra, path) => {
    const result = planSchema.safeParse({ models: { default: 'm' }, ...extra });
    expect(result.success).toBe(false);
    expect(problems(result)).toContain(path);
  });
});

describe('tenantSchema', () => {
  it.each([
    'Acme',
    '-acme',
    'acme_corp',
    'a'.repeat(64),
    'acme\n',
    'acme:{x}',
    'ａcme', // fullwidth a
    '',
  ])('refuses the tenant id %j', (id) => {
    expect(tenantSchema.safeParse({ id, plan: 'free' }).success).toBe(false);
    expect(TENANT_ID_PATTERN.test(id)).toBe(false);
  });

  it('accepts a 63-character id and defaults to active with no keys', () => {
    const tenant = tenantSchema.parse({ id: 'a'.repeat(63), plan: 'free' });
    expect(tenant.status).toBe('active');
    expect(tenant.api_key_sha256).toEqual([]);
  });

  it('takes key hashes only as 64 lowercase hex characters', () => {
    const upper = tenantSchema.safeParse({ id: 'acme', plan: 'free', api_key_sha256: ['A'.repeat(64)] });
    expect(problems(upper)).toContain('api_key_sha256.0');
    expect(
      tenantSchema.safeParse({ id: 'acme', plan: 'free', api_key_sha256: ['a'.repeat(64)] }).success,
    ).toBe(true);
  });

  it('refuses a status other than active or suspended', () => {
    expect(tenantSchema.safeParse({ id: 'acme', plan: 'free', status: 'deleted' }).success).toBe(false);
  });

  it('takes an incarnation only as the lowercase UUID the control plane issues, and none at all', () => {
    const incarnation = '6f1c2b9e-4d7a-4f0e-9b1a-3c5d7e9f1a2b';
    expect(tenantSchema.parse({ id: 'acme', plan: 'free', incarnation }).incarnation).toBe(incarnation);
    expect(tenantSchema.parse({ id: 'acme', plan: 'free' })).not.toHaveProperty('incarnation');
    for (const hostile of [
      1,
      null,
      '',
      'x'.repeat(10_240),
      `${incarnation}\u0000`,
      incarnation.toUpperCase(),
    ])
      expect(problems(tenantSchema.safeParse({ id: 'acme', plan: 'free', incarnation: hostile }))).toEqual([
        'incarnation',
      ]);
  });
});

describe('overridesSchema and priceSchema', () => {
  it('refuses override keys a plan does not have', () => {
    expect(overridesSchema.safeParse({ status: 'active' }).success).toBe(false);
  });

  it('refuses negative and non-numeric prices', () => {
    expect(problems(priceSchema.safeParse({ input: -0.1, output: 1 }))).toContain('input');
    expect(problems(priceSchema.safeParse({ input: 1, output: '1' }))).toContain('output');
    expect(priceSchema.safeParse({ input: 0, output: 0 }).success).toBe(true);
  });
});

describe('a key named __proto__', () => {
  // As JSON.parse and the YAML loader deliver it: an own key, which an object literal cannot write.
  const withProto = (json: string): unknown => JSON.parse(json);

  it.each([
    ['a plan alias', planSchema, '{"models":{"default":"m","__proto__":"m"}}', 'models.__proto__'],
    ['an override alias', overridesSchema, '{"models":{"__proto__":["m","n"]}}', 'models.__proto__'],
    [
      "a tenant's override alias",
      tenantSchema,
      '{"id":"acme","plan":"free","overrides":{"models":{"__proto__":"m"}}}',
      'overrides.models.__proto__',
    ],
    ['a priced model', priceTableSchema, '{"__proto__":{"input":1,"output":1}}', '__proto__'],
  ])('is refused as %s with its path, never dropped', (_name, schema, json, path) => {
    const result = schema.safeParse(withProto(json));
    expect(result.success).toBe(false);
    expect(problems(result)).toEqual([path]);
  });

  it('leaves other Object.prototype names as own keys with their values', () => {
    const plan = planSchema.parse(withProto('{"models":{"default":"m","constructor":"c","toString":"t"}}'));
    expect(Object.entries(plan.models)).toEqual([
      ['default', 'm'],
      ['constructor', 'c'],
      ['toString', 't'],
    ]);
    expect(Object.getPrototypeOf(plan.models)).toBe(Object.prototype);
    const prices = priceTableSchema.parse({ constructor: { input: 1, output: 2 } });
    expect(Object.hasOwn(prices, 'constructor')).toBe(true);
    expect(prices.constructor).toEqual({ input: 1, output: 2 });
  });
});

describe('allow paths', () => {
  it.each(['/v1/files/../admin', '/v1//files', '/v1/files/%2e%2e', '/v1/**/x', '/v1/fi les', 'v1/files'])(
    'refuses the pattern %j',
    (path) => {
      expect(allowPathSchema.safeParse({ method: 'GET', path }).success).toBe(false);
    },
  );

  it('matches segment by segment, * one segment, a final ** the rest', () => {
    const entries = [
      allowPathSchema.parse({ method: 'get', path: '/v1/files/*' }),
      allowPathSchema.parse({ method: '*', path: '/v1/batches/**' }),
    ];
    expect(allowed(entries, 'GET', '/v1/files/f1')).toBe(true);
    expect(allowed(entries, 'HEAD', '/v1/files/f1')).toBe(true);
    expect(allowed(entries, 'DELETE', '/v1/files/f1')).toBe(false);
    expect(allowed(entries, 'GET', '/v1/files/f1/content')).toBe(false);
    expect(allowed(entries, 'GET', '/v1/files')).toBe(false);
    expect(allowed(entries, 'POST', '/v1/batches')).toBe(true);
    expect(allowed(entries, 'POST', '/v1/batches/b1/cancel')).toBe(true);
  });
});
