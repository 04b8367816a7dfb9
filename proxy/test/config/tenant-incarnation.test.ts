/**
 * A tenant's `incarnation`, which the control plane sets in its snapshot and the proxy copies
 * into usage events: optional, so a hand-written config without it loads as before, and
 * accepted only as the lowercase UUID the control plane issues. Anything else is refused with
 * the field's path, by the YAML loader and by the sliced parse that applies snapshots, without
 * echoing the value back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError } from '../../src/errors.js';
import { loadConfigFile, parseYamlConfig } from '../../src/config/load.js';
import { parseConfigInSlices } from '../../src/config/parse-in-slices.js';
import { parseConfig } from '../../src/config/schema.js';
import { problemsOf } from '../helpers/config-problems.js';

const INCARNATION = '6f1c2b9e-4d7a-4f0e-9b1a-3c5d7e9f1a2b';

function config(tenant: Record<string, unknown>): Record<string, unknown> {
  return {
    listen: '127.0.0.1:0',
    admin_listen: '127.0.0.1:0',
    upstream: { url: 'http://127.0.0.1:9' },
    plans: { free: { models: { default: 'small-model' } } },
    tenants: [
      { id: 'globex', plan: 'free' },
      { id: 'acme', plan: 'free', ...tenant },
    ],
  };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lanekeeper-incarnation-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("a tenant's incarnation in the config", () => {
  it('is optional: a tenant without one loads, and has none', async () => {
    const parsed = parseConfig(config({}));
    expect(parsed.tenants.map((t) => t.incarnation)).toEqual([undefined, undefined]);
    expect((await parseConfigInSlices(config({}))).tenants[1]).not.toHaveProperty('incarnation');
  });

  it('is kept as the control plane wrote it', async () => {
    expect(parseConfig(config({ incarnation: INCARNATION })).tenants[1]?.incarnation).toBe(INCARNATION);
    const sliced = await parseConfigInSlices(config({ incarnation: INCARNATION }));
    expect(sliced.tenants[1]?.incarnation).toBe(INCARNATION);
  });

  const HOSTILE: [string, unknown][] = [
    ['a number', 42],
    ['null', null],
    ['a list', [INCARNATION]],
    ['an object', { uuid: INCARNATION }],
    ['an empty string', ''],
    ['a 10 KB string', 'a'.repeat(10_240)],
    ['a UUID followed by a NUL', `${INCARNATION}\u0000`],
    ['a UUID followed by a newline', `${INCARNATION}\n`],
    ['a UUID with an escape sequence', `${INCARNATION.slice(0, -1)}\u001b`],
    ['an upper-case UUID', INCARNATION.toUpperCase()],
    ['a UUID without dashes', INCARNATION.replaceAll('-', '')],
    ['a UUID in braces', `{${INCARNATION}}`],
  ];

  it.each(HOSTILE)('refuses %s, naming tenants.1.incarnation', async (_name, value) => {
    for (const load of [
      () => parseConfig(config({ incarnation: value })),
      () => parseConfigInSlices(config({ incarnation: value })),
    ]) {
      const problems = await problemsOf(load);
      expect(problems).toEqual([{ path: 'tenants.1.incarnation', message: expect.any(String) }]);
      // The error is for an operator's terminal: it names the field, never repeats the value.
      expect(problems[0]!.message.length).toBeLessThan(120);
      if (typeof value === 'string' && value.length > 0) expect(problems[0]!.message).not.toContain(value);
    }
  });

  it('refuses one in a YAML file, with its path in the error', async () => {
    const file = join(dir, 'config.yaml');
    await writeFile(file, stringify(config({ incarnation: 'not-a-uuid' })));
    const error = await loadConfigFile(file, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('tenants.1.incarnation: expected a lowercase UUID');
    expect(
      await problemsOf(() => parseConfig(parseYamlConfig(stringify(config({ incarnation: 7 })), {}))),
    ).toEqual([{ path: 'tenants.1.incarnation', message: expect.stringContaining('expected string') }]);
  });
});
