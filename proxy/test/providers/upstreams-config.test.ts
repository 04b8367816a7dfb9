/**
 * The `upstreams` config as an operator (or an attacker with config access) might write it:
 * every plan model must be served by some upstream, with the path, plan, alias and id
 * named when one is not; hostile names, globs and retry settings are refused with their
 * path; `upstream:` keeps meaning one backend for every model.
 */
import { describe, expect, it } from 'vitest';
import { globMatches, routeModel } from '../../src/config/upstreams.js';
import { configWarnings, parseConfig } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';

const up = (models: string[], extra: Record<string, unknown> = {}) => ({
  url: 'http://127.0.0.1:9',
  dialect: 'openai',
  models,
  ...extra,
});

function config(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    pricing: {},
    plans: { free: { models: { default: 'gpt-5-mini', coding: ['claude-sonnet-4-6', 'gpt-5.5-instant'] } } },
    tenants: [{ id: 'acme', plan: 'free' }],
    ...extra,
  };
}

function problems(raw: Record<string, unknown>): { path: string; message: string }[] {
  try {
    parseConfig(raw);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('upstreams', () => {
  it('accepts a plan whose every model (fallbacks included) some upstream serves', () => {
    const parsed = parseConfig(
      config({ upstreams: { openai: up(['gpt-*']), anthropic: up(['claude-*'], { dialect: 'anthropic' }) } }),
    );
    expect(Object.keys(parsed.upstreams)).toEqual(['openai', 'anthropic']);
    expect(parsed.upstream.url).toBe('http://127.0.0.1:9');
  });

  it('refuses a plan model no upstream serves, naming the path, plan, alias and id', () => {
    const found = problems(config({ upstreams: { openai: up(['gpt-*']) } }));
    expect(found).toEqual([
      {
        path: 'plans.free.models.coding',
        message:
          'plan "free", alias "coding": no upstream serves model "claude-sonnet-4-6" (no upstreams.*.models matches it)',
      },
    ]);
  });

  it.each([
    ['a model twice', ['gpt-5-mini', 'gpt-5-mini'], 'plans.free.models.coding.1', 'already in this list'],
    [
      'a model back again',
      ['gpt-5-mini', 'gpt-4o', 'gpt-5-mini'],
      'plans.free.models.coding.2',
      'already in this list',
    ],
    [
      'nine models',
      Array.from({ length: 9 }, (_, i) => `gpt-${i}`),
      'plans.free.models.coding',
      'this list has 9',
    ],
    ['an empty list', [], 'plans.free.models.coding', 'this list has 0'],
    [
      'a number in the list',
      ['gpt-5-mini', 5],
      'plans.free.models.coding',
      'a model id, or a list of 1 to 8',
    ],
    ['an empty id', ['gpt-5-mini', ''], 'plans.free.models.coding.1', 'must be a model id'],
    ['an object', { primary: 'gpt-5-mini' }, 'plans.free.models.coding', 'a model id, or a list of 1 to 8'],
  ])('refuses a fallback list with %s, saying what is wrong', (_name, target, path, message) => {
    const raw = config({ upstreams: { openai: up(['gpt-*']) } });
    (raw.plans as { free: { models: Record<string, unknown> } }).free.models.coding = target;
    const found = problems(raw);
    expect(found).toEqual([{ path, message: expect.stringContaining(message) }]);
  });

  // Plans from a control plane, which knows nothing of this proxy's upstreams: refused
  // whole, every later snapshot (a revoked key, a suspended tenant) was refused with it.
  it('takes a model no upstream serves as a warning when plans come from a control plane', () => {
    const raw = {
      ...config({ upstreams: { openai: up(['gpt-*']) } }),
      control_plane: { url: 'http://127.0.0.1:9', token: 'proxy-token-0123456789' },
    };
    const parsed = parseConfig(raw);
    expect(configWarnings(parsed)).toContainEqual({
      path: 'plans.free.models.coding',
      message:
        'plan "free", alias "coding": no upstream serves model "claude-sonnet-4-6" (no upstreams.*.models matches it): requests for it are answered 400',
    });
  });

  it('warns of an Anthropic-served model priced without cache_write, and of no other', () => {
    const parsed = parseConfig(
      config({
        upstreams: {
          anthropic: up(['claude-*'], { dialect: 'anthropic' }),
          openai: up(['gpt-*']),
        },
        pricing: {
          'claude-sonnet-4-6': { input: 3, output: 15 },
          'claude-haiku-4-5': { input: 1, output: 5, cache_write: 1.25 },
          'gpt-5-mini': { input: 0.25, output: 2 },
        },
      }),
    );
    const warnings = configWarnings(parsed).filter((w) => w.path.startsWith('pricing.'));
    expect(warnings).toEqual([
      {
        path: 'pricing.claude-sonnet-4-6',
        message: expect.stringContaining(
          'no cache_write price: prompt-cache writes are booked at the input price',
        ),
      },
    ]);
  });

  it("refuses a tenant override's model no upstream serves", () => {
    const raw = config({ upstreams: { all: up(['gpt-*', 'claude-*']) } });
    (raw.tenants as Record<string, unknown>[])[0]!.overrides = { models: { fast: 'gemini-3-flash' } };
    expect(problems(raw).map((p) => p.path)).toEqual(['tenants.0.overrides.models.fast']);
  });

  it.each([
    ['neither upstream nor upstreams', {}, 'upstream'],
    ['both', { upstream: { url: 'http://x' }, upstreams: { a: up(['*']) } }, 'upstreams'],
    ['an empty map', { upstreams: {} }, 'upstreams'],
    ['an entry without models', { upstreams: { a: { url: 'http://x' } } }, 'upstreams.a.models'],
    ['empty models', { upstreams: { a: up([]) } }, 'upstreams.a.models'],
    ['a glob with a space', { upstreams: { a: up(['gpt *']) } }, 'upstreams.a.models.0'],
    [
      'a name starting with a digit (it would reorder the map)',
      { upstreams: { '1st': up(['*']) } },
      'upstreams.1st',
    ],
    ['an upper-case name', { upstreams: { OpenAI: up(['*']) } }, 'upstreams.OpenAI'],
    [
      'zero attempts',
      { upstreams: { a: up(['*'], { retries: { attempts: 0 } }) } },
      'upstreams.a.retries.attempts',
    ],
    [
      'eleven attempts',
      { upstreams: { a: up(['*'], { retries: { attempts: 11 } }) } },
      'upstreams.a.retries.attempts',
    ],
    [
      'a 2xx retry trigger',
      { upstreams: { a: up(['*'], { retries: { on: [200] } }) } },
      'upstreams.a.retries.on.0',
    ],
    [
      'an unknown trigger',
      { upstreams: { a: up(['*'], { retries: { on: ['always'] } }) } },
      'upstreams.a.retries.on.0',
    ],
    [
      'a zero ejection time',
      { upstreams: { a: up(['*'], { eject_for_ms: 0 }) } },
      'upstreams.a.eject_for_ms',
    ],
    ['a non-http url', { upstreams: { a: up(['*'], { url: 'file:///etc/passwd' }) } }, 'upstreams.a.url'],
    ['an unknown dialect', { upstreams: { a: up(['*'], { dialect: 'cobol' }) } }, 'upstreams.a.dialect'],
    ['a fallback list of nine', {}, 'plans.free.models.default'],
  ])('refuses %s', (name, extra, path) => {
    const raw = config(extra);
    if (name === 'a fallback list of nine') {
      raw.upstream = { url: 'http://x' };
      raw.plans = { free: { models: { default: Array.from({ length: 9 }, (_, i) => `m${i}`) } } };
    }
    expect(problems(raw).map((p) => p.path)).toContain(path);
  });

  it('says why an upstream name is refused, not "Invalid key in record"', () => {
    expect(problems(config({ upstreams: { 'Open AI': up(['*']) } }))).toContainEqual({
      path: 'upstreams.Open AI',
      message: 'upstream names are 1-63 characters of a-z, 0-9, "_" and "-", starting with a letter',
    });
  });

  it('keeps `upstream:` as one backend that serves every model', () => {
    const parsed = parseConfig(config({ upstream: { url: 'http://127.0.0.1:9' } }));
    expect(Object.keys(parsed.upstreams)).toEqual(['default']);
    expect(parsed.multiUpstream).toBe(false);
    expect(routeModel(parsed.upstreams, 'anything-at-all')).toBe('default');
  });
});

describe('model globs', () => {
  it.each([
    ['gpt-*', 'gpt-5', true],
    ['gpt-*', 'gpt-', true],
    ['gpt-*', 'xgpt-5', false],
    ['o3*', 'o3-mini', true],
    ['*-mini', 'gpt-5-mini', true],
    ['*-mini', 'gpt-5-mini-2', false],
    ['claude-*-4-*', 'claude-sonnet-4-6', true],
    ['claude-*-4-*', 'claude-4-6', false],
    ['a*a', 'a', false],
    ['a*a', 'aa', true],
    ['exact', 'exact', true],
    ['exact', 'exact2', false],
    ['*', '', true],
  ])('%s matches %j: %s', (glob, id, expected) => {
    expect(globMatches(glob, id)).toBe(expected);
  });

  it('takes the first upstream whose models match, in the order written', () => {
    const upstreams = parseConfig(
      config({ upstreams: { special: up(['gpt-5-mini']), openai: up(['gpt-*']), rest: up(['*']) } }),
    ).upstreams;
    expect(routeModel(upstreams, 'gpt-5-mini')).toBe('special');
    expect(routeModel(upstreams, 'gpt-5')).toBe('openai');
    expect(routeModel(upstreams, 'claude-sonnet-4-6')).toBe('rest');
  });
});
