/**
 * Every dialect's recorded responses, served by a fake upstream and read back through the
 * real proxy: the client gets the upstream's bytes unchanged, and what is metered equals
 * what the upstream reported, field by field. One table (proxy/test/dialects/fixture-cases)
 * drives both these tests and the dialect unit tests.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Received } from './helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from './helpers/harness.js';
import { fixture, JSON_CASES, STREAM_CASES, type FixtureCase } from './dialects/fixture-cases.js';

/** The made-up in-house service of the fixtures, declared in YAML as a team would. */
const ACME_DIALECT = {
  name: 'acme',
  match: { method: 'POST', path: '/infer/{model}/complete' },
  usage: { input: 'meter.in', output: 'meter.out', cached_input: 'meter.cache_hit' },
  stream: { flag: 'options.stream', format: 'sse', event: 'meter', text: 't', model: 'engine' },
  system_prompt: 'context.system',
  max_output: 'options.max_len',
};

const PATH_MODELS = ['gemini-2.5-flash', 'gemini-2.5-pro', 'acme-large'];

let h: Harness;
let serving: FixtureCase | undefined;

function contentType(file: string): string {
  if (file.endsWith('.sse')) return 'text/event-stream';
  if (file.endsWith('.ndjson')) return 'application/x-ndjson';
  return 'application/json';
}

beforeAll(async () => {
  h = await startHarness({
    reply: (_req: Received) => {
      const c = serving!;
      const status = c.file.includes('error.json') ? 400 : 200;
      return { kind: 'stream', status, contentType: contentType(c.file), chunks: [fixture(c.file)] };
    },
    config: (base) => {
      const plans = base.plans as Record<string, Record<string, unknown>>;
      const models: Record<string, string> = { default: 'plan-default' };
      PATH_MODELS.forEach((m, i) => (models[`m${i}`] = m));
      return {
        ...base,
        dialects: [ACME_DIALECT],
        plans: { ...plans, pro: { ...plans.pro, models, custom_prompts: { system: 'PLAN PROMPT' } } },
      };
    },
  });
});
afterAll(() => h.close());

function requestFor(
  c: FixtureCase,
  stream: boolean,
): { path: string; body: Record<string, unknown>; headers: Record<string, string> } {
  const user = [{ role: 'user', content: 'hi' }];
  const key = { authorization: `Bearer ${KEYS.pro}` };
  switch (c.dialect.name) {
    case 'openai':
      if (c.path.endsWith('/responses')) return { path: c.path, body: { input: 'hi', stream }, headers: key };
      if (c.path.endsWith('/embeddings')) return { path: c.path, body: { input: 'hi' }, headers: key };
      return {
        path: c.path,
        headers: key,
        body: {
          ...(c.path.endsWith('/completions') && !c.path.includes('chat')
            ? { prompt: 'hi' }
            : { messages: user }),
          ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
        },
      };
    case 'anthropic':
      return {
        path: c.path,
        body: { max_tokens: 1000, messages: user, stream },
        headers: { 'x-api-key': KEYS.pro, 'anthropic-version': '2023-06-01' },
      };
    case 'gemini':
      return {
        path: c.file.endsWith('.sse') ? `${c.path}?alt=sse` : c.path,
        body: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
        headers: { 'x-goog-api-key': KEYS.pro },
      };
    case 'ollama':
      if (c.path === '/api/generate') return { path: c.path, body: { prompt: 'hi', stream }, headers: key };
      if (c.path.startsWith('/api/embed')) return { path: c.path, body: { input: 'hi' }, headers: key };
      return { path: c.path, body: { messages: user, stream }, headers: key };
    default:
      return { path: c.path, body: { prompt: 'hi', options: { stream } }, headers: key };
  }
}

const reported = (cases: FixtureCase[]) => cases.filter((c) => c.usage.input !== undefined && !c.error);

describe.each([
  ['streamed', reported(STREAM_CASES), true],
  ['JSON', reported(JSON_CASES), false],
] as const)('%s responses of every dialect through the proxy', (_kind, cases, stream) => {
  it.each(cases.map((c) => [c.file, c] as const))(
    '%s: bytes unchanged, usage metered field by field',
    async (_file, c) => {
      serving = c;
      const r = requestFor(c, stream);
      const lines = h.accessLogs().length;
      const res = await request(`${h.proxy.url}${r.path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...r.headers },
        body: JSON.stringify(r.body),
      });
      const bytes = Buffer.from(await res.body.arrayBuffer());
      expect(res.statusCode).toBe(200);
      expect(bytes.equals(fixture(c.file))).toBe(true);
      await h.settled(lines + 1);
      const line = h.accessLogs().at(-1)!;
      expect(line.dialect).toBe(c.dialect.name);
      expect(line.provenance).toBe('reported');
      expect({
        input: line.input_tokens,
        output: line.output_tokens,
        cachedInput: line.cached_input_tokens,
        cacheWrite: line.cache_write_tokens,
        reasoning: line.reasoning_tokens,
      }).toEqual({
        input: c.usage.input ?? null,
        output: c.usage.output ?? (c.usage.input !== undefined ? 0 : null),
        cachedInput: c.usage.cachedInput ?? null,
        cacheWrite: c.usage.cacheWrite ?? null,
        reasoning: c.usage.reasoning ?? null,
      });
      if (c.model) expect(line.upstream_model).toBe(c.model);
    },
  );
});

describe('rewriting in each dialect', () => {
  it.each(
    [...new Map(reported(JSON_CASES).map((c) => [c.dialect.name, c])).values()].map(
      (c) => [c.dialect.name, c] as const,
    ),
  )(
    '%s: the upstream gets the plan model and exactly one injected system instruction, in the dialect place',
    async (_name, c) => {
      serving = c;
      const r = requestFor(c, false);
      const res = await request(`${h.proxy.url}${r.path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...r.headers },
        body: JSON.stringify(r.body),
      });
      await res.body.text();
      const got = h.lastReceived();
      const body = got.body as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- probed per dialect
      const text = JSON.stringify(body);
      expect(text.split('PLAN PROMPT').length - 1).toBe(c.path.includes('embed') ? 0 : 1);
      switch (c.dialect.name) {
        case 'openai':
          expect(body.model).toBe('plan-default');
          if (body.messages) expect(body.messages[0]).toEqual({ role: 'system', content: 'PLAN PROMPT' });
          if (body.instructions !== undefined) expect(body.instructions).toContain('PLAN PROMPT');
          break;
        case 'anthropic':
          expect(body.model).toBe('plan-default');
          if (typeof body.system === 'string') expect(body.system.startsWith('PLAN PROMPT')).toBe(true);
          else expect(body.system[0]).toMatchObject({ type: 'text', text: 'PLAN PROMPT' });
          break;
        case 'gemini':
          expect(got.path).toBe(c.path);
          expect(body.systemInstruction.parts[0].text).toBe('PLAN PROMPT');
          break;
        case 'ollama':
          expect(body.model).toBe('plan-default');
          break;
        default:
          expect(body.context.system).toContain('PLAN PROMPT');
      }
      expect(JSON.stringify(got.headers)).not.toContain(KEYS.pro);
    },
  );

  it('rewrites a Gemini alias in the path to the plan model id', async () => {
    serving = JSON_CASES.find((c) => c.file === 'gemini/generate.json')!;
    const res = await request(`${h.proxy.url}/v1beta/models/m1:generateContent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-goog-api-key': KEYS.pro },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
    });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(h.lastReceived().path).toBe('/v1beta/models/gemini-2.5-pro:generateContent');
  });

  it('refuses a Gemini model outside the plan in Gemini error form', async () => {
    const res = await request(`${h.proxy.url}/v1beta/models/gemini-ultra-9:generateContent?key=${KEYS.pro}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
    });
    const body = (await res.body.json()) as { error: { code: number; status: string } };
    expect(res.statusCode).toBe(403);
    expect(body.error).toMatchObject({ code: 403, status: 'PERMISSION_DENIED' });
  });
});
