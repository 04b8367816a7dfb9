/**
 * Output caps that cannot be dodged, attacked through the real proxy with a recording fake
 * upstream. A tenant tries to make the proxy reserve a small answer while the upstream is
 * allowed a large one: several cap fields with different values (each upstream honours a
 * different one), caps that parse differently per server (strings, floats, zero, negatives),
 * many completions per request, and uncapped requests that used to reserve the whole hour.
 * What is reserved is read from x-ratelimit-remaining-tokens of a probe sent while the
 * upstream holds the request: a request's own reservation is not subtracted from its own
 * header (it is a hold, not use), but another's in flight is.
 */
import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { dialectByName } from '../../src/dialects/index.js';
import { chatCompletion, chatStream, type Received } from '../helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';

const HOUR = 1_000_000;
const CAP_KEY = /^(max_?(completion_?)?tokens|max_?output_?tokens|num_?predict|max_len)$/i;

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Where limits are kept: the memory store, or the shared Redis under a key prefix of its own. */
type StoreKind = 'memory' | 'redis';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const prefixes: string[] = [];

function newPrefix(): string {
  const prefix = `lk-caps-${randomUUID().slice(0, 8)}:`;
  prefixes.push(prefix);
  return prefix;
}

afterAll(async () => {
  if (prefixes.length === 0) return;
  const redis = new Redis(REDIS_URL);
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  redis.disconnect();
});

/** Gives the free plan (tenant acme) these settings, without a system prompt or context bound. */
function freePlan(settings: Record<string, unknown>, store: StoreKind = 'memory') {
  return (base: Record<string, unknown>) => {
    const plans = base.plans as Record<string, Record<string, unknown>>;
    const { custom_prompts: _prompt, max_context: _context, ...free } = plans.free!;
    return {
      ...base,
      ...(store === 'redis'
        ? {
            store: { redis: REDIS_URL, key_prefix: newPrefix(), timeout_ms: 2000 },
          }
        : {}),
      dialects: [
        { name: 'acme', match: { method: 'POST', path: '/infer/{model}' }, max_output: 'options.max_len' },
      ],
      plans: { ...plans, free: { ...free, ...settings } },
    };
  };
}

async function start(settings: Record<string, unknown>, store: StoreKind = 'memory'): Promise<Harness> {
  return startHarness({
    reply: {
      kind: 'json',
      body: chatCompletion('small-model', 'ok', { prompt_tokens: 1, completion_tokens: 1 }),
    },
    config: freePlan(settings, store),
  });
}

async function send(path: string, body: unknown, raw?: string) {
  const res = await request(`${h!.proxy.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
    body: raw ?? JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, message: errorMessage(text) };
}

/** The error message in any dialect's error body (Ollama's is a bare string). */
function errorMessage(text: string): string {
  try {
    const error = (JSON.parse(text) as { error?: unknown }).error;
    if (typeof error === 'string') return error;
    return String((error as { message?: unknown } | undefined)?.message ?? '');
  } catch {
    return '';
  }
}

/** Every cap-like field anywhere in a body, as [dotted path, value]. */
function capFields(value: unknown, at = ''): [string, unknown][] {
  if (typeof value !== 'object' || value === null) return [];
  const found: [string, unknown][] = [];
  for (const [key, inner] of Object.entries(value)) {
    const path = at ? `${at}.${key}` : key;
    if (CAP_KEY.test(key)) found.push([path, inner]);
    found.push(...capFields(inner, path));
  }
  return found;
}

/** The proxy's estimate of a forwarded request's prompt, as it reserved it. */
function promptEstimate(dialect: string, received: Received): number {
  const d = dialectByName(dialect)!;
  const route = d.match('POST', received.path)!;
  const req = {
    method: 'POST',
    path: received.path,
    query: '',
    body: received.body as Record<string, unknown>,
  };
  return d.estimatePromptTokens(req, route);
}

const PROBE = 'reservation probe';

/**
 * Sends a request the upstream holds, and meanwhile a probe (an embeddings request, which
 * reserves no output): what the probe sees remaining is the hour less the held request's
 * reservation. Returns the held request's answer and the output tokens it reserved: that
 * reservation less the proxy's prompt estimate.
 */
async function sendHeld(dialect: string, path: string, body: unknown) {
  const harness = h!;
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const answer = chatCompletion('small-model', 'ok', { prompt_tokens: 1, completion_tokens: 1 });
  harness.upstream.reply((req) =>
    (req.body as { input?: unknown } | undefined)?.input === PROBE
      ? { kind: 'json', body: answer }
      : { kind: 'json', body: answer, until: held },
  );
  const before = harness.upstream.received.length;
  const pending = send(path, body);
  try {
    await expect.poll(() => harness.upstream.received.length, { timeout: 5_000 }).toBe(before + 1);
    const received = harness.upstream.received[before]!;
    const probe = await send('/v1/embeddings', { model: 'small-model', input: PROBE });
    expect(probe.status).toBe(200);
    const reserved =
      HOUR - Number(probe.headers['x-ratelimit-remaining-tokens']) - promptEstimate(dialect, received);
    release();
    return { ...(await pending), reserved, received };
  } finally {
    release();
  }
}

const user = [{ role: 'user', content: 'hi' }];
const geminiPath = '/v1beta/models/small-model:generateContent';

/** [name, dialect, path, body with every cap field at a different value, the smallest]. */
const EVERY_FIELD: [string, string, string, Record<string, unknown>, number][] = [
  [
    'OpenAI chat',
    'openai',
    '/v1/chat/completions',
    { messages: user, max_completion_tokens: 300, max_tokens: 100_000, max_output_tokens: 90_000 },
    300,
  ],
  [
    'OpenAI chat, the small cap in max_tokens',
    'openai',
    '/v1/chat/completions',
    { messages: user, max_completion_tokens: 100_000, max_tokens: 300 },
    300,
  ],
  [
    'OpenAI completions',
    'openai',
    '/v1/completions',
    { prompt: 'hi', max_tokens: 250, max_completion_tokens: 100_000, max_output_tokens: 100_000 },
    250,
  ],
  [
    'OpenAI responses',
    'openai',
    '/v1/responses',
    { input: 'hi', max_output_tokens: 200, max_tokens: 100_000, max_completion_tokens: 100_000 },
    200,
  ],
  ['Anthropic messages', 'anthropic', '/v1/messages', { messages: user, max_tokens: 150 }, 150],
  [
    'Ollama chat',
    'ollama',
    '/api/chat',
    { messages: user, stream: false, options: { num_predict: 120 }, num_predict: 100_000 },
    120,
  ],
  [
    'Gemini, the snake_case spelling of the field and of its parent',
    'gemini',
    geminiPath,
    {
      contents: [{ role: 'user', parts: [{ text: 'hi' }] }],
      generation_config: { max_output_tokens: 110 },
    },
    110,
  ],
];

describe('both spellings of a Gemini cap', () => {
  it('are refused with 400 before the upstream (protobuf JSON reads them as one field)', async () => {
    h = await start({ rate_limits: { tokens_per_hour: HOUR } });
    const before = h.upstream.received.length;
    const r = await send(geminiPath, {
      model: 'small-model',
      contents: [{ role: 'user', parts: [{ text: 'hi' }] }],
      generationConfig: { maxOutputTokens: 100_000, max_output_tokens: 110 },
      generation_config: { maxOutputTokens: 90_000, max_output_tokens: 80_000 },
    });
    expect(r.status).toBe(400);
    expect(h.upstream.received.length).toBe(before);
  });
});

describe('one output cap reaches the upstream', () => {
  it.each(EVERY_FIELD)(
    '%s: exactly one cap field arrives, equal to what was reserved',
    async (_name, dialect, path, body, smallest) => {
      h = await start({ rate_limits: { tokens_per_hour: HOUR } });
      const r = await sendHeld(dialect, path, { model: 'small-model', ...body });
      expect(r.status).toBe(200);
      const fields = capFields(r.received.body);
      expect(fields).toHaveLength(1);
      expect(fields[0]![1]).toBe(smallest);
      expect(r.reserved).toBe(smallest);
    },
  );

  it.each([
    ['OpenAI chat', 'openai', '/v1/chat/completions', { messages: user }],
    [
      'Ollama generate asking for unlimited output',
      'ollama',
      '/api/generate',
      { prompt: 'hi', options: { num_predict: -1 } },
    ],
    ['Gemini', 'gemini', geminiPath, { contents: [{ parts: [{ text: 'hi' }] }] }],
  ])(
    '%s without a cap gets the plan max_output_tokens, and reserves only that',
    async (_n, dialect, path, body) => {
      h = await start({ rate_limits: { tokens_per_hour: HOUR }, max_output_tokens: 777 });
      const r = await sendHeld(dialect, path, { model: 'small-model', stream: false, ...body });
      expect(r.status).toBe(200);
      const fields = capFields(r.received.body);
      expect(fields).toHaveLength(1);
      expect(fields[0]![1]).toBe(777);
      expect(r.reserved).toBe(777);
    },
  );

  it('lowers a client cap above max_output_tokens, on a custom dialect too', async () => {
    h = await start({ max_output_tokens: 500 });
    expect((await send('/v1/chat/completions', { messages: user, max_tokens: 1e15 })).status).toBe(200);
    expect(capFields(h.lastReceived().body)).toEqual([['max_tokens', 500]]);
    expect((await send('/infer/small-model', { prompt: 'hi', options: { max_len: 100_000 } })).status).toBe(
      200,
    );
    expect(capFields(h.lastReceived().body)).toEqual([['options.max_len', 500]]);
  });

  it('takes max_output_tokens and max_choices from a tenant override', async () => {
    h = await startHarness({
      config: (base) => {
        const config = freePlan({ rate_limits: { tokens_per_hour: HOUR } })(base);
        const tenants = (base.tenants as Record<string, unknown>[]).map((t) =>
          t.id === 'acme' ? { ...t, overrides: { max_output_tokens: 99, max_choices: 2 } } : t,
        );
        return { ...config, tenants };
      },
    });
    const r = await sendHeld('openai', '/v1/chat/completions', {
      model: 'small-model',
      messages: user,
      n: 2,
    });
    expect(r.status).toBe(200);
    expect(capFields(r.received.body)).toEqual([['max_completion_tokens', 99]]);
    expect(r.reserved).toBe(198);
    expect((await send('/v1/chat/completions', { model: 'small-model', messages: user, n: 3 })).status).toBe(
      400,
    );
  });

  it("writes max_tokens, the only name Ollama's OpenAI API reads, when the upstream is Ollama", async () => {
    h = await startHarness({
      config: (base) => ({
        ...freePlan({})(base),
        upstream: { ...(base.upstream as object), dialect: 'ollama' },
      }),
    });
    const r = await send('/v1/chat/completions', {
      model: 'small-model',
      messages: user,
      max_completion_tokens: 10,
    });
    expect(r.status).toBe(200);
    expect(capFields(h.lastReceived().body)).toEqual([['max_tokens', 10]]);
  });

  it('bounds the cap by max_context less the prompt, below the client cap and max_output_tokens', async () => {
    h = await start({ max_context: 1000, max_output_tokens: 5000 });
    const r = await send('/v1/chat/completions', { model: 'small-model', messages: user, max_tokens: 4000 });
    expect(r.status).toBe(200);
    const [[, cap]] = capFields(h.lastReceived().body) as [[string, number]];
    expect(cap).toBeLessThan(1000);
    expect(cap).toBeGreaterThan(900);
  });

  it('sets no cap on embeddings and reserves no output for them', async () => {
    h = await start({ rate_limits: { tokens_per_hour: HOUR } });
    const r = await sendHeld('openai', '/v1/embeddings', {
      model: 'small-model',
      input: 'hi',
      max_tokens: 100_000,
    });
    expect(r.status).toBe(200);
    expect(capFields(r.received.body)).toEqual([['max_tokens', 100_000]]);
    expect(r.reserved).toBe(0);
  });
});

describe('hostile cap values', () => {
  const HOSTILE: [string, unknown][] = [
    ['negative', -5],
    ['zero', 0],
    ['a float', 10.5],
    ['a numeric string', '100'],
    ['a boolean', true],
    ['an object', { value: 10 }],
    ['an array', [10]],
  ];

  it.each(HOSTILE)(
    'a cap that is %s is 400 invalid_request naming the field, never forwarded',
    async (_n, value) => {
      h = await start({ rate_limits: { tokens_per_hour: HOUR } });
      const cases: [string, Record<string, unknown>, string][] = [
        ['/v1/chat/completions', { messages: user, max_completion_tokens: value }, 'max_completion_tokens'],
        [
          '/v1/chat/completions',
          { messages: user, max_tokens: 10, max_output_tokens: value },
          'max_output_tokens',
        ],
        ['/v1/messages', { messages: user, max_tokens: value }, 'max_tokens'],
        ['/api/chat', { messages: user, options: { num_predict: value } }, 'options.num_predict'],
        [
          geminiPath,
          { contents: [], generationConfig: { maxOutputTokens: value } },
          'generationConfig.maxOutputTokens',
        ],
        ['/infer/small-model', { options: { max_len: value } }, 'options.max_len'],
      ];
      for (const [path, body, field] of cases) {
        const r = await send(path, { model: 'small-model', ...body });
        expect(r.status, `${path} ${field}`).toBe(400);
        expect(r.text).toContain('invalid_request');
        expect(r.message).toContain(`"${field}"`);
      }
      expect(h.upstream.received).toHaveLength(0);
    },
  );

  it('refuses an infinite cap written as 1e400, and reads null as no cap', async () => {
    h = await start({ max_output_tokens: 64 });
    const infinite = await send(
      '/v1/chat/completions',
      undefined,
      '{"model":"small-model","messages":[],"max_tokens":1e400}',
    );
    expect(infinite.status).toBe(400);
    expect(infinite.text).toContain('max_tokens');
    const nulled = await send('/v1/chat/completions', {
      messages: user,
      max_tokens: null,
      max_completion_tokens: null,
    });
    expect(nulled.status).toBe(200);
    expect(capFields(h.lastReceived().body)).toEqual([['max_completion_tokens', 64]]);
    expect(h.upstream.received).toHaveLength(1);
  });

  it.each([
    ['n', '/v1/chat/completions', { messages: user }],
    ['best_of', '/v1/completions', { prompt: 'hi' }],
    ['candidateCount', geminiPath, { contents: [] }],
  ])('a choice count %s that is not a positive integer is 400 naming it', async (field, path, body) => {
    h = await start({ max_choices: 100 });
    for (const value of [0, -1, 2.5, '2', 'x', true]) {
      const withChoices =
        field === 'candidateCount'
          ? { ...body, generationConfig: { candidateCount: value } }
          : { ...body, [field]: value };
      const r = await send(path, { model: 'small-model', ...withChoices });
      expect(r.status).toBe(400);
      expect(r.message).toContain(`${field}" must be a positive integer`);
    }
    expect(h.upstream.received).toHaveLength(0);
  });
});

const STORES: StoreKind[] = ['memory', 'redis'];

describe.each(STORES)('choices multiply the reservation (%s store)', (store) => {
  it.each([
    ['n on chat', 'openai', '/v1/chat/completions', { messages: user, n: 3, max_tokens: 100 }, 300],
    [
      'best_of on completions',
      'openai',
      '/v1/completions',
      { prompt: 'hi', n: 2, best_of: 4, max_tokens: 50 },
      200,
    ],
    [
      'candidateCount on Gemini',
      'gemini',
      geminiPath,
      { contents: [], generationConfig: { candidateCount: 3, maxOutputTokens: 70 } },
      210,
    ],
  ])('%s reserves the cap once per generated completion', async (_n, dialect, path, body, reserved) => {
    h = await start({ rate_limits: { tokens_per_hour: HOUR }, max_choices: 8 }, store);
    const r = await sendHeld(dialect, path, { model: 'small-model', ...body });
    expect(r.status).toBe(200);
    expect(r.reserved).toBe(reserved);
  });

  it.each([
    ['n', '/v1/chat/completions', { messages: user, n: 2 }],
    ['best_of', '/v1/completions', { prompt: 'hi', best_of: 2 }],
    [
      'generationConfig.candidateCount',
      geminiPath,
      { contents: [], generationConfig: { candidateCount: 2 } },
    ],
  ])(
    '%s above max_choices (default 1 on a plan with tokens_per_hour) is refused',
    async (field, path, body) => {
      h = await start({ rate_limits: { tokens_per_hour: HOUR } });
      const r = await send(path, { model: 'small-model', ...body });
      expect(r.status).toBe(400);
      expect(r.text).toContain('invalid_request');
      expect(r.message).toContain(`"${field}"`);
      expect(r.text).toContain('at most 1');
      expect(h.upstream.received).toHaveLength(0);
    },
  );

  it('refuses a client cap whose choices together do not fit the hour', async () => {
    h = await start({ rate_limits: { tokens_per_hour: 1000 }, max_choices: 4 }, store);
    const r = await send('/v1/chat/completions', {
      model: 'small-model',
      messages: user,
      n: 3,
      max_tokens: 400,
    });
    expect(r.status).toBe(429);
    expect(r.text).toContain('tokens_per_hour');
    expect(h.upstream.received).toHaveLength(0);
  });

  it('splits what the hour has left between the choices of an uncapped request', async () => {
    h = await start({ rate_limits: { tokens_per_hour: 3000 }, max_choices: 4 }, store);
    const r = await send('/v1/chat/completions', { model: 'small-model', messages: user, n: 3 });
    expect(r.status).toBe(200);
    const prompt = promptEstimate('openai', h.lastReceived());
    const [[, cap]] = capFields(h.lastReceived().body) as [[string, number]];
    expect(cap).toBe(Math.floor((3000 - prompt) / 3));
  });

  it('defaults max_choices to 1 on a budget plan and leaves plans without token limits unlimited', async () => {
    h = await start({ rate_limits: { budget_usd_per_day: 100 } });
    expect((await send('/v1/chat/completions', { messages: user, n: 2 })).status).toBe(400);
    await h.close();
    h = await start({ rate_limits: { requests_per_minute: 100 } });
    expect((await send('/v1/chat/completions', { messages: user, n: 16 })).status).toBe(200);
    expect((h.lastReceived().body as { n: number }).n).toBe(16);
  });
});

describe.each(STORES)('a prompt priced dearer to cache (%s store)', (store) => {
  // A prompt the client marks for caching is billed at cache_write, up to twice input:
  // reserved at input, budgets were overshot by that ratio.
  it.each([
    [undefined, 200],
    [1_000, 429],
  ])(
    'with cache_write %s, answers %s under a budget its input price alone fits',
    async (cacheWrite, status) => {
      h = await startHarness({
        reply: {
          kind: 'json',
          body: chatCompletion('small-model', 'ok', { prompt_tokens: 1, completion_tokens: 1 }),
        },
        config: (base) => ({
          ...freePlan({ rate_limits: { budget_usd_per_day: 0.0001 } }, store)(base),
          pricing: {
            'small-model': { input: 1, output: 0, ...(cacheWrite ? { cache_write: cacheWrite } : {}) },
          },
        }),
      });
      const r = await send('/v1/chat/completions', { model: 'small-model', messages: user, max_tokens: 1 });
      expect(r.status, r.text).toBe(status);
      if (status === 429) expect(r.message).toContain('budget');
    },
  );
});

describe.each(STORES)('uncapped requests share the hour (%s store)', (store) => {
  it('admits three parallel uncapped requests while the hour has room, each capped at max_output_tokens', async () => {
    h = await startHarness({
      reply: (req) => ({
        kind: 'stream',
        delayMs: 50,
        chunks: chatStream(
          (req.body as { model: string }).model,
          ['a', 'b', 'c', 'd'],
          {
            prompt_tokens: 5,
            completion_tokens: 4,
            total_tokens: 9,
          },
          true,
        ),
      }),
      config: freePlan({ rate_limits: { tokens_per_hour: 20_000 } }, store),
    });
    const results = await Promise.all(
      [1, 2, 3].map(() =>
        send('/v1/chat/completions', { model: 'small-model', messages: user, stream: true }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(h.upstream.received.map((r) => capFields(r.body))).toEqual([
      [['max_completion_tokens', 4096]],
      [['max_completion_tokens', 4096]],
      [['max_completion_tokens', 4096]],
    ]);
  });
});
