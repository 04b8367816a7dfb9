import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseWithYamlPackage, stringify } from 'yaml';
import { manyTenantsYaml } from '../../test/helpers/many-tenants.js';
import { ConfigError } from '../errors.js';
import { OFF_THREAD_BYTES, parseYamlConfigInSlices } from './load.js';
import { parseYamlOffThread } from './yaml-off-thread.js';
import { assertExpansionBounded, parseYamlText } from './yaml-text.js';

/** The problems of the ConfigError `fn` throws (or rejects with). */
async function problemsOf(fn: () => unknown): Promise<{ path: string; message: string }[]> {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

/** Nine anchors, each a list of nine aliases of the one before: ~387 million values walked out. */
function aliasBomb(padding = 0): string {
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 9; i++)
    lines.push(
      `a${i}: &a${i} [${Array(9)
        .fill(`*a${i - 1}`)
        .join(', ')}]`,
    );
  return `${lines.join('\n')}\n${'#'.repeat(padding)}\n`;
}

describe('parseYamlText', () => {
  it('reads what the yaml package reads, for any JSON-like value it writes', () => {
    const scalar = fc.oneof(
      fc.string(),
      fc.integer(),
      // -0 is the one number the two parsers read apart (see the test below).
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => (Object.is(n, -0) ? 0 : n)),
      fc.boolean(),
      fc.constant(null),
    );
    const { tree } = fc.letrec((tie) => ({
      tree: fc.oneof({ depthSize: 'small' }, scalar, tie('list'), tie('map')),
      list: fc.array(tie('tree'), { maxLength: 4 }),
      map: fc.dictionary(fc.string(), tie('tree'), { maxKeys: 4 }),
    }));
    fc.assert(
      fc.property(fc.dictionary(fc.string(), tree, { maxKeys: 5 }), (value) => {
        const text = stringify(value);
        expect(parseYamlText(text)).toStrictEqual(parseWithYamlPackage(text));
      }),
      { numRuns: 300 },
    );
  });

  it('reads -0 as 0, where the yaml package keeps -0: no config value tells them apart', () => {
    expect(Object.is((parseYamlText('x: -0\n') as { x: number }).x, 0)).toBe(true);
    expect(Object.is(parseWithYamlPackage('x: -0\n').x, -0)).toBe(true);
  });

  it('reads a 10,000-tenant config as the yaml package does', () => {
    const text = manyTenantsYaml(10_000);
    expect(parseYamlText(text)).toStrictEqual(parseWithYamlPackage(text));
  });

  it('keeps the YAML 1.2 core schema: dates, yes/no and tags stay what the yaml package made them', () => {
    const text = 'day: 2024-01-01\nflag: yes\nhex: 0x10\noct: 0o10\nnull_: ~\nt: True\n';
    expect(parseYamlText(text)).toStrictEqual({
      day: '2024-01-01',
      flag: 'yes',
      hex: 16,
      oct: 8,
      null_: null,
      t: true,
    });
    expect(parseWithYamlPackage(text)).toStrictEqual(parseYamlText(text));
  });

  it('refuses duplicate keys, JavaScript tags and syntax errors with their line', async () => {
    const duplicate = await problemsOf(() => parseYamlText('plans:\n  free: {}\n  free: {}\n'));
    expect(duplicate[0]?.path).toBe('line 3, column 3');
    expect(duplicate[0]?.message).toMatch(/duplicated mapping key/);
    const tag = await problemsOf(() => parseYamlText('x: !!js/function "function () { return 1 }"\n'));
    expect(tag[0]?.message).toMatch(/unknown tag/);
    const broken = await problemsOf(() => parseYamlText('a: [1, 2\nb: 3\n'));
    expect(broken[0]?.path).toMatch(/^line \d+, column \d+$/);
  });

  it('keeps a "__proto__" key as a plain key and pollutes nothing', () => {
    const value = parseYamlText('__proto__:\n  polluted: true\nplain: 1\n') as Record<string, unknown>;
    expect(Object.keys(value)).toEqual(['__proto__', 'plain']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
  });

  it('takes a few aliases for shared settings', () => {
    const text =
      'limits: &limits {requests_per_minute: 60}\nplans:\n  a: {rate_limits: *limits}\n  b: {rate_limits: *limits}\n';
    const value = parseYamlText(text) as { plans: { b: { rate_limits: unknown } } };
    expect(value.plans.b.rate_limits).toEqual({ requests_per_minute: 60 });
  });

  it('refuses aliases of aliases that would expand past the budget, on the main thread and in the worker', async () => {
    const small = await problemsOf(() => parseYamlText(aliasBomb()));
    expect(small[0]?.message).toMatch(/expands to more than \d+ values/);
    const large = aliasBomb(OFF_THREAD_BYTES + 1);
    const offThread = await problemsOf(() => parseYamlOffThread(large));
    expect(offThread[0]?.message).toMatch(/expands to more than \d+ values/);
    const viaLoad = await problemsOf(() => parseYamlConfigInSlices(large, {}));
    expect(viaLoad[0]?.message).toMatch(/expands to more than \d+ values/);
  });

  it('counts every path to a shared value, not only distinct objects', () => {
    const shared = { a: 1, b: 2 };
    expect(() => assertExpansionBounded({ x: shared, y: shared }, 7)).not.toThrow();
    expect(() => assertExpansionBounded({ x: shared, y: shared }, 6)).toThrow(ConfigError);
  });

  it('reports a syntax error found in the worker with its line', async () => {
    const text = `${'# pad\n'.repeat(OFF_THREAD_BYTES / 6 + 1)}a: [1, 2\nb: 3\n`;
    const problems = await problemsOf(() => parseYamlOffThread(text));
    expect(problems[0]?.path).toMatch(/^line \d{5}, column \d+$/);
  });
});
