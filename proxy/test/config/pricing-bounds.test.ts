/**
 * Prices in the proxy's config as an operator might mistype them: each refused at load with
 * its path, since a cost past a double's range became Infinity in spend budgets and metrics.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/schema.js';
import { problemsOf, smallestConfig } from '../helpers/config-problems.js';

describe('pricing', () => {
  it.each([
    ['input', { input: 1e300, output: 1 }],
    ['output', { input: 1, output: 1_000_001 }],
    ['cached_input', { input: 1, output: 1, cached_input: 2e6 }],
    ['input', { input: -0.5, output: 1 }],
  ])('refuses %s out of range, naming it', async (field, price) => {
    const problems = await problemsOf(() => parseConfig(smallestConfig({ pricing: { m: price } })));
    expect(problems.map((p) => p.path)).toEqual([`pricing.m.${field}`]);
  });

  it('takes a million USD per million tokens, and the prices of real models', () => {
    const config = parseConfig(
      smallestConfig({ pricing: { m: { input: 1_000_000, output: 600 }, n: { input: 0.075, output: 0 } } }),
    );
    expect(config.pricing.m).toEqual({ input: 1_000_000, output: 600 });
  });
});
