/**
 * Issue 16: a 10,000-tenant config loads and reloads in bounded slices. Speed lives in
 * bench/config-load.ts; here the slice policy is injected and its yields are counted.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { parseConfigInSlices } from '../src/config/parse-in-slices.js';
import { parseYamlConfigInSlices } from '../src/config/load.js';
import { parseConfig } from '../src/config/schema.js';
import { buildRuntime, buildRuntimeInSlices } from '../src/runtime.js';
import { startProxy } from '../src/main.js';
import { createLogger } from '../src/log.js';
import { keyHashOf, manyTenantsConfig, manyTenantsYaml } from './helpers/many-tenants.js';

const N = 10_000;
const MAX_ITEMS = 250;

describe('config in slices, 10,000 tenants', () => {
  it('validates in slices and yields the same config as parseConfig', async () => {
    const raw = manyTenantsConfig(N);
    let yields = 0;
    const config = await parseConfigInSlices(raw, {
      maxItems: MAX_ITEMS,
      budgetMs: Number.POSITIVE_INFINITY,
      yieldNow: async () => {
        yields++;
      },
    });
    // Validation and freezing each take N / MAX_ITEMS slices.
    expect(yields).toBeGreaterThanOrEqual((2 * N) / MAX_ITEMS);
    expect(config).toEqual(parseConfig(raw));
    expect(Object.isFrozen(config.tenants[N - 1]?.overrides)).toBe(true);
  });

  it('never handles more than maxItems tenants between two yields while building the runtime', async () => {
    const config = parseConfig(manyTenantsConfig(N));
    let sinceYield = 0;
    let most = 0;
    let yields = 0;
    const plans = config.plans;
    // Count tenants indexed between yields through a getter on each tenant's plan lookup.
    const counted = {
      ...config,
      plans: new Proxy(plans, {
        get(target, key) {
          if (typeof key === 'string' && key in target) {
            sinceYield++;
            most = Math.max(most, sinceYield);
          }
          return Reflect.get(target, key) as unknown;
        },
      }),
    };
    const runtime = await buildRuntimeInSlices(counted, undefined, {
      slices: {
        maxItems: MAX_ITEMS,
        budgetMs: Number.POSITIVE_INFINITY,
        yieldNow: async () => {
          yields++;
          sinceYield = 0;
        },
      },
    });
    expect(most).toBe(MAX_ITEMS);
    expect(yields).toBe(N / MAX_ITEMS);
    expect(runtime.keyIndex.get(keyHashOf(N - 2, 1))?.id).toBe(`tenant-${N - 2}`);
    expect(runtime.tenants.size).toBe(buildRuntime(config).tenants.size);
  });

  it('parses a large YAML file off the main thread and interpolates its tenants in slices', async () => {
    let yields = 0;
    const raw = await parseYamlConfigInSlices(
      manyTenantsYaml(N),
      {},
      {
        maxItems: MAX_ITEMS,
        budgetMs: Number.POSITIVE_INFINITY,
        yieldNow: async () => {
          yields++;
        },
      },
    );
    expect(yields).toBeGreaterThanOrEqual(N / MAX_ITEMS);
    expect(raw).toEqual(manyTenantsConfig(N));
  });

  it('reports a YAML syntax error of a large file with its line, from the worker', async () => {
    const text = `${manyTenantsYaml(2_000)}\nplans: [unclosed\n`;
    const error = await parseYamlConfigInSlices(text, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems[0]?.path).toMatch(/^line \d+, column \d+$/);
  });

  it('names the path of a bad tenant deep in the list', async () => {
    const raw = manyTenantsConfig(N);
    (raw.tenants[9_876] as Record<string, unknown>).api_key_sha256 = ['NOT-HEX'];
    const error = await parseConfigInSlices(raw).catch((e: unknown) => e);
    expect((error as ConfigError).problems).toEqual([
      { path: 'tenants.9876.api_key_sha256.0', message: expect.stringContaining('64 lowercase hex') },
    ]);
  });

  it('a rejected reload keeps the old config; a good one swaps it whole', async () => {
    const proxy = await startProxy({ config: manyTenantsConfig(N), logger: createLogger('silent') });
    try {
      const before = proxy.config();
      const bad = manyTenantsConfig(N, undefined, 'v2');
      (bad.tenants[N - 1] as Record<string, unknown>).plan = 'no-such-plan';
      await expect(proxy.reload(bad)).rejects.toThrow(/tenants\.9999\.plan/);
      expect(proxy.config()).toBe(before);
      await proxy.reload(manyTenantsConfig(N, undefined, 'v3'));
      const after = proxy.config();
      expect(after.tenants[1]?.overrides.features).toEqual(['streaming', 'v3']);
      expect(after.tenants[N - 3]?.overrides.features).toEqual(['streaming', 'v3']);
    } finally {
      await proxy.close(0);
    }
  });
});
