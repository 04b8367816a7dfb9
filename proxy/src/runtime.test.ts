import { describe, expect, it } from 'vitest';
import { parseConfig } from './config/schema.js';
import { sha256Hex } from './identity/credentials.js';
import { buildRuntime, buildRuntimeInSlices } from './runtime.js';

function config(tenants: unknown[]) {
  return parseConfig({
    upstream: { url: 'http://127.0.0.1:1' },
    plans: {
      basic: {
        models: { default: 'small-model' },
        rate_limits: { requests_per_minute: 60, tokens_per_hour: 1000 },
        custom_prompts: { system: 'basic' },
      },
      pro: { models: { default: 'big-model' }, rate_limits: { requests_per_minute: 600 } },
    },
    tenants,
  });
}

const plain = (id: string, plan = 'basic') => ({ id, plan, api_key_sha256: [sha256Hex(`key-${id}`)] });

describe('buildRuntime', () => {
  it('gives tenants without overrides on one plan the same merged plan object', () => {
    const runtime = buildRuntime(config([plain('a'), plain('b'), plain('c', 'pro')]));
    const a = runtime.tenants.get('a');
    const b = runtime.tenants.get('b');
    expect(a?.plan).toBe(b?.plan);
    expect(a?.plan.rate_limits).toEqual({ requests_per_minute: 60, tokens_per_hour: 1000 });
    expect(runtime.tenants.get('c')?.plan).not.toBe(a?.plan);
    expect(runtime.tenants.get('c')?.plan.rate_limits).toEqual({ requests_per_minute: 600 });
  });

  it('freezes the shared plan down to its maps, so no request can change another tenant’s limits', () => {
    const plan = buildRuntime(config([plain('a'), plain('b')])).tenants.get('a')?.plan;
    expect(Object.isFrozen(plan)).toBe(true);
    expect(Object.isFrozen(plan?.rate_limits)).toBe(true);
    expect(Object.isFrozen(plan?.models)).toBe(true);
    expect(Object.isFrozen(plan?.custom_prompts)).toBe(true);
    expect(() => {
      (plan?.rate_limits as { requests_per_minute?: number }).requests_per_minute = 1e9;
    }).toThrow(TypeError);
  });

  it('gives a tenant with overrides its own plan and leaves the shared one as the plan says', () => {
    const runtime = buildRuntime(
      config([
        plain('a'),
        {
          ...plain('big'),
          overrides: { rate_limits: { requests_per_minute: 10_000 }, models: { x: 'big-model' } },
        },
        plain('b'),
      ]),
    );
    const big = runtime.tenants.get('big');
    expect(big?.plan.rate_limits).toEqual({ requests_per_minute: 10_000, tokens_per_hour: 1000 });
    expect(big?.plan.models).toEqual({ default: 'small-model', x: 'big-model' });
    expect(Object.isFrozen(big?.plan.rate_limits)).toBe(true);
    expect(runtime.tenants.get('a')?.plan).toBe(runtime.tenants.get('b')?.plan);
    expect(runtime.tenants.get('a')?.plan.rate_limits).toEqual({
      requests_per_minute: 60,
      tokens_per_hour: 1000,
    });
    expect(runtime.tenants.get('a')?.plan.models).toEqual({ default: 'small-model' });
  });

  it('indexes each key to the tenant object itself, in both builds', async () => {
    const cfg = config([plain('a'), { ...plain('b'), api_key_sha256: [sha256Hex('b1'), sha256Hex('b2')] }]);
    for (const runtime of [buildRuntime(cfg), await buildRuntimeInSlices(cfg)]) {
      expect(runtime.keyIndex.get(sha256Hex('key-a'))).toBe(runtime.tenants.get('a'));
      expect(runtime.keyIndex.get(sha256Hex('b1'))).toBe(runtime.tenants.get('b'));
      expect(runtime.keyIndex.get(sha256Hex('b2'))).toBe(runtime.tenants.get('b'));
      expect(runtime.keyIndex.get(sha256Hex('key-b'))).toBeUndefined();
    }
  });

  it('shares plans within one build only: a reload’s plan change reaches its tenants', () => {
    const before = buildRuntime(config([plain('a')]));
    const changed = parseConfig({
      upstream: { url: 'http://127.0.0.1:1' },
      plans: { basic: { models: { default: 'small-model' }, rate_limits: { requests_per_minute: 5 } } },
      tenants: [plain('a')],
    });
    const after = buildRuntime(changed, before);
    expect(after.tenants.get('a')?.plan.rate_limits).toEqual({ requests_per_minute: 5 });
    expect(before.tenants.get('a')?.plan.rate_limits.requests_per_minute).toBe(60);
  });
});
