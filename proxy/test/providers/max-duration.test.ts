/**
 * `max_duration_ms` on an upstream, as a tenant whose stream never ends (or an upstream that
 * never answers) would meet it, through the official SDKs and raw HTTP: a stream is cut at
 * the bound, metered as partial, the upstream call aborted and the tenant's slot freed; an
 * answer that never started is a 504 in the client's own dialect; no retry or fallback runs
 * past the bound. Hostile values of the key are refused with their path.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/schema.js';
import { refusedPaths } from '../helpers/config-problems.js';
import {
  chatCompletion,
  chatStream,
  startFakeUpstream,
  type FakeUpstream,
  type Reply,
} from '../helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';

let h: Harness | undefined;
let b: FakeUpstream | undefined;
afterEach(async () => {
  await h?.close();
  await b?.close();
  h = undefined;
  b = undefined;
});

const BOUND_MS = 400;

const ok: Reply = {
  kind: 'json',
  body: chatCompletion('small-model', 'ok', { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 }),
};

/** The harness's upstream with `extra` settings, serving the free plan (one request at a time). */
function bounded(extra: Record<string, unknown>, plan: Record<string, unknown> = {}) {
  return (base: Record<string, unknown>) => {
    const plans = base.plans as Record<string, Record<string, unknown>>;
    return {
      ...base,
      upstream: { ...(base.upstream as object), ...extra },
      plans: { ...plans, free: { ...plans.free, rate_limits: { max_concurrent: 1 }, ...plan } },
    };
  };
}

async function chat(harness: Harness, body: Record<string, unknown> = {}) {
  return request(`${harness.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'small-model', messages: [{ role: 'user', content: 'hi' }], ...body }),
  });
}

describe('max_duration_ms', () => {
  it('cuts a stream that outlives it, aborts the upstream, meters what was sent and frees the slot', async () => {
    // Twenty seconds of output, never silent for long enough to meet timeout_ms.
    const pieces = Array.from({ length: 1_000 }, () => 'abcdefgh ');
    h = await startHarness({
      reply: { kind: 'stream', chunks: chatStream('small-model', pieces, undefined, false), delayMs: 20 },
      config: bounded({ max_duration_ms: BOUND_MS, timeout_ms: 5_000 }),
    });
    const started = performance.now();
    const res = await chat(h, { stream: true });
    expect(res.statusCode).toBe(200);
    let received = '';
    const ended = await new Promise<'end' | 'error'>((resolve) => {
      res.body.on('data', (chunk: Buffer) => (received += chunk.toString()));
      res.body.on('end', () => resolve('end'));
      res.body.on('error', () => resolve('error'));
    });
    const elapsed = performance.now() - started;
    // Cut as any upstream failure after the first byte is: no clean [DONE] to mistake for an end.
    expect(ended).toBe('error');
    expect(received).toContain('abcdefgh');
    expect(received).not.toContain('[DONE]');
    expect(elapsed).toBeGreaterThanOrEqual(BOUND_MS - 5);
    expect(elapsed).toBeLessThan(BOUND_MS + 3_000);

    await h.settled(1);
    const line = h.accessLogs()[0]!;
    expect(line).toMatchObject({ outcome: 'upstream_error', provenance: 'partial', status: 200 });
    expect(line.output_tokens as number).toBeGreaterThan(0);
    for (let i = 0; i < 100 && h.upstream.aborted === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(h.upstream.aborted).toBe(1);
    expect(h.logs.some((l) => l.msg === 'request passed its upstream max_duration_ms')).toBe(true);

    // max_concurrent is 1: the cut request no longer holds it.
    h.upstream.reply(ok);
    expect((await chat(h)).statusCode).toBe(200);
  });

  it('answers 504 upstream_timeout in the OpenAI and Anthropic shapes when no answer started in time', async () => {
    h = await startHarness({ reply: { kind: 'hang' }, config: bounded({ max_duration_ms: BOUND_MS }) });
    const openai = new OpenAI({ apiKey: KEYS.free, baseURL: `${h.proxy.url}/v1`, maxRetries: 0 });
    const openaiError = await openai.chat.completions
      .create({ model: 'small-model', messages: [{ role: 'user', content: 'hi' }] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(openaiError).toBeInstanceOf(OpenAI.APIError);
    expect((openaiError as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
    expect((openaiError as InstanceType<typeof OpenAI.APIError>).code).toBe('upstream_timeout');
    expect((openaiError as Error).message).toContain('max_duration_ms');

    const anthropic = new Anthropic({ apiKey: KEYS.free, baseURL: h.proxy.url, maxRetries: 0 });
    const anthropicError = await anthropic.messages
      .create({ model: 'small-model', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(anthropicError).toBeInstanceOf(Anthropic.APIError);
    expect((anthropicError as InstanceType<typeof Anthropic.APIError>).status).toBe(504);
    expect((anthropicError as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({
      type: 'error',
      error: { message: expect.stringContaining('max_duration_ms') },
    });

    await h.settled(2);
    expect(h.accessLogs().map((l) => l.status)).toEqual([504, 504]);
    // Both hung calls were given up, and the slot with them.
    for (let i = 0; i < 100 && h.upstream.aborted < 2; i++) await new Promise((r) => setTimeout(r, 10));
    h.upstream.reply(ok);
    expect((await chat(h)).statusCode).toBe(200);
  });

  it("answers a 504 in the client's shape, not a cut connection, when a translated JSON answer outlives it", async () => {
    // A translated JSON answer is held until whole, so the client has had no byte of it yet.
    const slowBody = ['{"id":"chatcmpl-slow","object":"chat.completion","choices":[', ...Array(40).fill(' ')];
    h = await startHarness({
      reply: { kind: 'stream', contentType: 'application/json', chunks: slowBody, delayMs: 50 },
      config: (base) => {
        const { upstream, ...rest } = bounded({ max_duration_ms: BOUND_MS })(base);
        return {
          ...rest,
          upstreams: { openai: { ...(upstream as object), dialect: 'openai', models: ['*'] } },
        };
      },
    });
    const anthropic = new Anthropic({ apiKey: KEYS.free, baseURL: h.proxy.url, maxRetries: 0 });
    const error = await anthropic.messages
      .create({ model: 'small-model', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(504);
    expect((error as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({
      type: 'error',
      error: { code: 'upstream_timeout', message: expect.stringContaining('max_duration_ms') },
    });

    await h.settled(1);
    expect(h.accessLogs()[0]).toMatchObject({
      status: 504,
      outcome: 'upstream_error',
      provenance: 'partial',
    });
    h.upstream.reply(ok);
    expect((await chat(h)).statusCode).toBe(200);
  });

  describe('with a fallback upstream', () => {
    /** Upstream "a" (the harness's) serves a-model with `aExtra`; "b" serves b-model; the alias falls back a → b. */
    async function start(aReply: Reply, aExtra: Record<string, unknown>): Promise<Harness> {
      b = await startFakeUpstream(ok);
      const second = b;
      h = await startHarness({
        reply: aReply,
        config: (base) => {
          const { upstream, ...rest } = base;
          const plans = base.plans as Record<string, Record<string, unknown>>;
          return {
            ...rest,
            upstreams: {
              a: {
                ...(upstream as object),
                dialect: 'openai',
                models: ['a-*', 'small-model', 'big-model'],
                ...aExtra,
              },
              b: { url: second.url, dialect: 'openai', models: ['b-*'] },
            },
            pricing: { 'a-model': { input: 1, output: 2 }, 'b-model': { input: 1, output: 2 } },
            plans: { ...plans, free: { ...plans.free, models: { default: ['a-model', 'b-model'] } } },
          };
        },
      });
      return h;
    }

    it('does not fall back once the bound has passed', async () => {
      const harness = await start({ kind: 'hang' }, { max_duration_ms: BOUND_MS, timeout_ms: 5_000 });
      const res = await chat(harness, { model: 'default' });
      expect(res.statusCode).toBe(504);
      expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('upstream_timeout');
      expect(b!.received).toHaveLength(0);
    });

    it('makes no retry whose wait would pass the bound; the next fallback serves instead', async () => {
      const harness = await start(
        { kind: 'json', status: 503, headers: { 'retry-after': '2' }, body: { error: { message: 'busy' } } },
        { max_duration_ms: 1_000, retries: { attempts: 3, max_backoff_ms: 5_000 } },
      );
      const res = await chat(harness, { model: 'default' });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      // Without the bound, a would have been called again after Retry-After's two seconds.
      expect(harness.upstream.received).toHaveLength(1);
      expect(b!.received).toHaveLength(1);
    });
  });

  it.each([
    ['zero', 0],
    ['negative', -1],
    ['fractional', 1.5],
    ['a string', '1000'],
    ['over a day', 86_400_001],
    ['not a number', { ms: 5 }],
    ['null', null],
  ])('refuses a value that is %s, naming its path', async (_name, value) => {
    expect(await refusedPaths({ upstream: { url: 'http://127.0.0.1:9', max_duration_ms: value } })).toContain(
      'upstream.max_duration_ms',
    );
  });

  it('accepts a day, and no bound at all when absent', () => {
    const raw = (extra: Record<string, unknown>) => ({
      upstream: { url: 'http://127.0.0.1:9', ...extra },
      pricing: {},
      plans: { free: { models: { default: 'm' } } },
      tenants: [{ id: 'acme', plan: 'free' }],
    });
    const upstreamOf = (config: ReturnType<typeof parseConfig>) =>
      Object.values(config.upstreams)[0] as { max_duration_ms?: number };
    expect(upstreamOf(parseConfig(raw({ max_duration_ms: 86_400_000 }))).max_duration_ms).toBe(86_400_000);
    expect(upstreamOf(parseConfig(raw({}))).max_duration_ms).toBeUndefined();
  });
});
