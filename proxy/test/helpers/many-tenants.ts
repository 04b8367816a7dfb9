/**
 * A config the size issue 16 asks the proxy to carry: `count` tenants, each with one or two
 * API keys and an override or so, as a raw file config and as a control-plane snapshot.
 * Shared by the slicing tests and bench/config-load.ts so both measure the same thing.
 */
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';

const PLANS = {
  free: { models: { default: 'small-model' }, rate_limits: { requests_per_minute: 60 } },
  pro: {
    models: { default: 'big-model', fast: 'small-model' },
    rate_limits: { requests_per_minute: 600, tokens_per_hour: 1_000_000 },
    features: ['streaming'],
  },
};
const PRICING = { 'small-model': { input: 0.1, output: 0.2 }, 'big-model': { input: 1, output: 2 } };

/** The sha256 hex of tenant `i`'s `k`-th key, `sk-tenant-<i>-<k>`. */
export function keyHashOf(i: number, k: number): string {
  return createHash('sha256').update(`sk-tenant-${i}-${k}`).digest('hex');
}

export function manyTenants(count: number, tag = 'v1'): Record<string, unknown>[] {
  const tenants: Record<string, unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const keys = i % 2 === 0 ? [keyHashOf(i, 0), keyHashOf(i, 1)] : [keyHashOf(i, 0)];
    const overrides =
      i % 3 === 0
        ? { rate_limits: { requests_per_minute: 100 + (i % 50) } }
        : i % 3 === 1
          ? { max_output_tokens: 1024, features: ['streaming', tag] }
          : {};
    tenants.push({ id: `tenant-${i}`, plan: i % 2 === 0 ? 'pro' : 'free', api_key_sha256: keys, overrides });
  }
  return tenants;
}

/** The file-mode raw config (plans and tenants in the file). */
export function manyTenantsConfig(count: number, upstreamUrl = 'http://127.0.0.1:1', tag = 'v1') {
  return {
    listen: '127.0.0.1:0',
    admin_listen: '127.0.0.1:0',
    upstream: { url: upstreamUrl },
    pricing: PRICING,
    plans: PLANS,
    tenants: manyTenants(count, tag),
  };
}

export function manyTenantsYaml(count: number, upstreamUrl?: string, tag?: string): string {
  return stringify(manyTenantsConfig(count, upstreamUrl, tag));
}

/** The same plans, tenants and prices as GET /v1/config serves them. */
export function manyTenantsSnapshot(count: number, version = 1, tag = 'v1') {
  return { version, plans: PLANS, tenants: manyTenants(count, tag), pricing: PRICING };
}
