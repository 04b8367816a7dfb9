/**
 * A YAML config naming a model alias, a priced model or a plan `__proto__`: the loader keeps
 * it as an ordinary key, and the contract's schemas refuse it with its path. zod alone
 * dropped it without a word, so the proxy ran without that entry and no one was told. And
 * names Object's prototype already has (`toString`, `constructor`) are no plan or price.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile, OFF_THREAD_BYTES, parseYamlConfig } from '../../src/config/load.js';
import { parseConfig } from '../../src/config/schema.js';
import { problemsOf } from '../helpers/config-problems.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lanekeeper-reserved-keys-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const yaml = (plan: string, tenant: string) => `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstream:
  url: http://127.0.0.1:9
pricing:
  small-model: { input: 1, output: 2 }
  big-model: { input: 10, output: 30 }
plans:
  free:
    models:
${plan}
tenants:
  - id: acme
    plan: free
${tenant}
`;

const CASES = [
  [
    'a priced model',
    yaml('      default: small-model', '').replace(
      'pricing:\n',
      'pricing:\n  __proto__: { input: 0, output: 0 }\n',
    ),
    'pricing.__proto__',
  ],
  [
    'a plan',
    yaml('      default: small-model', '').replace(
      'plans:\n',
      'plans:\n  __proto__:\n    models: { default: small-model }\n',
    ),
    'plans.__proto__',
  ],
  [
    'a plan alias',
    yaml('      default: small-model\n      __proto__: big-model', ''),
    'plans.free.models.__proto__',
  ],
  [
    "a tenant's override alias",
    yaml(
      '      default: small-model',
      '    overrides:\n      models:\n        __proto__: [big-model, small-model]',
    ),
    'tenants.0.overrides.models.__proto__',
  ],
] as const;

describe('__proto__ as a name in the YAML config', () => {
  it.each(CASES)('is refused as %s, naming it', async (_name, text, path) => {
    const problems = await problemsOf(() => parseConfig(parseYamlConfig(text, {})));
    expect(problems).toEqual([{ path, message: expect.stringContaining('__proto__') }]);
  });

  it.each(CASES)(
    'is refused as %s when the file is loaded, in slices and off the thread',
    async (_name, text, path) => {
      const small = join(dir, 'small.yaml');
      await writeFile(small, text);
      expect(await problemsOf(() => loadConfigFile(small, {}))).toEqual([
        { path, message: expect.any(String) },
      ]);
      // A comment makes the file big enough to be parsed in a worker, whose copy keeps the key too.
      const big = join(dir, 'big.yaml');
      await writeFile(big, `# ${'x'.repeat(OFF_THREAD_BYTES)}\n${text}`);
      expect(await problemsOf(() => loadConfigFile(big, {}))).toEqual([
        { path, message: expect.any(String) },
      ]);
    },
  );

  it('loads the same file without that alias', async () => {
    const config = parseConfig(
      parseYamlConfig(yaml('      default: small-model\n      smart: big-model', ''), {}),
    );
    expect(config.plans.free?.models).toEqual({ default: 'small-model', smart: 'big-model' });
  });
});

describe("names Object's prototype already has", () => {
  it('are no plan a tenant can be on', async () => {
    const text = yaml('      default: small-model', '').replace('    plan: free', '    plan: toString');
    const problems = await problemsOf(() => parseConfig(parseYamlConfig(text, {})));
    expect(problems).toEqual([
      { path: 'tenants.0.plan', message: expect.stringContaining('unknown plan "toString"') },
    ]);
  });
});
