/** What a refused proxy config says, for tests that feed it hostile values. */
import { expect } from 'vitest';
import { parseConfig } from '../../src/config/schema.js';
import { ConfigError, type ConfigProblem } from '../../src/errors.js';

/** The problems `load` was refused with; the test fails when it was accepted, or threw anything but a ConfigError. */
export async function problemsOf(load: () => unknown): Promise<ConfigProblem[]> {
  try {
    await load();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('the config was accepted');
}

/** The smallest config parseConfig takes, with `sections` set over it. */
export function smallestConfig(sections: Record<string, unknown>): Record<string, unknown> {
  return {
    upstream: { url: 'http://127.0.0.1:9' },
    pricing: {},
    plans: { free: { models: { default: 'm' } } },
    tenants: [{ id: 'acme', plan: 'free' }],
    ...sections,
  };
}

/** The paths of the problems the smallest config with `sections` is refused with. */
export async function refusedPaths(sections: Record<string, unknown>): Promise<string[]> {
  return (await problemsOf(() => parseConfig(smallestConfig(sections)))).map((p) => p.path);
}
