/**
 * Tenant limits in embedded (memory) mode, driven through the proxy: requests per minute,
 * tokens per hour from metered usage, and concurrency under parallel requests. Each refusal
 * is a 429 with Retry-After and a body naming the limit.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { chatCompletion, chatStream } from './helpers/fake-upstream.js';
import { KEYS, metricValue, startHarness, type Harness } from './helpers/harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function withFreeLimits(limits: Record<string, number>) {
  return (base: Record<string, unknown>) => {
    const plans = base.plans as Record<string, Record<string, unknown>>;
    return { ...base, plans: { ...plans, free: { ...plans.free, rate_limits: limits } } };
  };
}

async function chat(harness: Harness, key: string, extra: Record<string, unknown> = {}) {
  const res = await request(`${harness.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'small-model', messages: [{ role: 'user', content: 'hi' }], ...extra }),
  });
  const text = await res.body.text();
  const body = text.startsWith('{')
    ? (JSON.parse(text) as { error?: { code: string; message: string; limit?: string } })
    : {};
  return { status: res.statusCode, headers: res.headers, body };
}

describe('requests per minute', () => {
  it('admits exactly the limit, then answers 429 with Retry-After and the limit named', async () => {
    h = await startHarness({
      reply: {
        kind: 'json',
        body: chatCompletion('small-model', 'ok', {
          prompt_tokens: 1,
          completion_tokens: 1,
          total_tokens: 2,
        }),
      },
      config: withFreeLimits({ requests_per_minute: 5 }),
    });
    const results = await Promise.all(Array.from({ length: 12 }, () => chat(h!, KEYS.free)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(5);
    const refused = results.filter((r) => r.status === 429);
    expect(refused).toHaveLength(7);
    for (const r of refused) {
      expect(r.body.error?.code).toBe('rate_limit_exceeded');
      expect(r.body.error?.limit).toBe('requests_per_minute');
      expect(r.body.error?.message).toContain('requests per minute');
      const retryAfter = Number(r.headers['retry-after']);
      expect(Number.isInteger(retryAfter)).toBe(true);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(r.headers['x-ratelimit-remaining-requests']).toBe('0');
    }
    expect(h.upstream.received).toHaveLength(5);
    // Another tenant is untouched by acme's limit.
    expect((await chat(h, KEYS.pro)).status).toBe(200);
    const metrics = await (await fetch(`${h.proxy.adminUrl}/metrics`)).text();
    expect(
      metricValue(metrics, 'lanekeeper_rate_limited_total', { tenant: 'acme', limit: 'requests_per_minute' }),
    ).toBe(7);
  });
});

describe('tokens per hour', () => {
  const sentCap = (h: Harness) => {
    const body = h.lastReceived().body as { max_tokens?: number; max_completion_tokens?: number };
    return body.max_completion_tokens ?? body.max_tokens ?? Number.POSITIVE_INFINITY;
  };

  it("reads x-ratelimit-remaining-tokens as OpenAI does: what is not yet used, the request's own hold left out", async () => {
    h = await startHarness({
      reply: {
        kind: 'json',
        body: chatCompletion('small-model', 'ok', {
          prompt_tokens: 300,
          completion_tokens: 400,
          total_tokens: 700,
        }),
      },
      config: withFreeLimits({ tokens_per_hour: 10_000 }),
    });
    const client = new OpenAI({ apiKey: KEYS.free, baseURL: `${h.proxy.url}/v1`, maxRetries: 0 });
    const ask = () =>
      client.chat.completions
        .create({ model: 'small-model', messages: [{ role: 'user', content: 'hi' }] })
        .withResponse();
    // Nothing used yet: the whole hour remains, though the request reserved its worst case (4096+).
    const first = await ask();
    expect(first.response.headers.get('x-ratelimit-limit-tokens')).toBe('10000');
    expect(first.response.headers.get('x-ratelimit-remaining-tokens')).toBe('10000');
    await h.settled(1);
    const second = await ask();
    expect(second.response.headers.get('x-ratelimit-remaining-tokens')).toBe(String(10_000 - 700));
  });

  it('clamps an uncapped request to what is left, refuses a client cap that no longer fits, and refuses all once spent', async () => {
    h = await startHarness({
      reply: {
        kind: 'json',
        body: chatCompletion('small-model', 'ok', {
          prompt_tokens: 300,
          completion_tokens: 400,
          total_tokens: 700,
        }),
      },
      config: withFreeLimits({ tokens_per_hour: 1000 }),
    });
    const first = await chat(h, KEYS.free);
    expect(first.status).toBe(200);
    expect(sentCap(h)).toBeLessThan(1000);
    expect(first.headers['x-ratelimit-limit-tokens']).toBe('1000');
    await h.settled(1);

    // 700 of 1000 tokens are spent. The client's own cap is its worst case: 500 does not fit.
    const capped = await chat(h, KEYS.free, { max_tokens: 500 });
    expect(capped.status).toBe(429);
    expect(capped.body.error?.limit).toBe('tokens_per_hour');
    expect(Number(capped.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(capped.headers['x-ratelimit-remaining-tokens'])).toBeLessThanOrEqual(300);

    // Without a cap of its own, the request is clamped to what remains.
    const uncapped = await chat(h, KEYS.free);
    expect(uncapped.status).toBe(200);
    expect(sentCap(h)).toBeLessThan(300);
    await h.settled(3);

    const spent = await chat(h, KEYS.free);
    expect(spent.status).toBe(429);
    expect(spent.body.error?.limit).toBe('tokens_per_hour');
    expect(h.upstream.received).toHaveLength(2);
  });
});

describe('concurrent requests', () => {
  it('never lets more than max_concurrent requests run at once, and frees slots when they end', async () => {
    h = await startHarness({
      reply: (req) => ({
        kind: 'stream',
        delayMs: 30,
        chunks: chatStream(
          (req.body as { model: string }).model,
          ['a', 'b', 'c'],
          { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 },
          true,
        ),
      }),
      config: withFreeLimits({ max_concurrent: 3 }),
    });
    const results = await Promise.all(
      Array.from({ length: 10 }, () => chat(h!, KEYS.free, { stream: true })),
    );
    expect(results.filter((r) => r.status === 200).length).toBeLessThanOrEqual(3);
    expect(results.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(1);
    const refused = results.filter((r) => r.status === 429);
    expect(refused.length).toBeGreaterThanOrEqual(7);
    expect(refused.every((r) => r.body.error?.limit === 'max_concurrent')).toBe(true);
    await h.settled(10);
    // All slots were released: the next request is admitted.
    expect((await chat(h, KEYS.free, { stream: true })).status).toBe(200);
  });
});

/** The free plan enforcing mid stream on 200 tokens an hour, optionally behind an OpenAI-dialect `upstreams:` entry. */
function enforcingMidStream(translated: boolean) {
  return (base: Record<string, unknown>) => {
    const { upstream, plans, ...rest } = base as { upstream: object; plans: Record<string, object> };
    return {
      ...rest,
      ...(translated
        ? { upstreams: { openai: { ...upstream, dialect: 'openai', models: ['*'] } } }
        : { upstream }),
      plans: {
        ...plans,
        free: { ...plans.free, rate_limits: { tokens_per_hour: 200 }, enforce_mid_stream: true },
      },
    };
  };
}

/** 900 characters of output, far past what 200 tokens an hour allows, from an upstream that ignores the cap. */
const ENDLESS = Array.from({ length: 100 }, () => 'abcdefgh ');

describe('mid-stream enforcement', () => {
  it('tells an Anthropic client served by an OpenAI upstream the tokens it is charged for, not zero', async () => {
    h = await startHarness({
      reply: { kind: 'stream', chunks: chatStream('small-model', ENDLESS, undefined, false), delayMs: 3 },
      config: enforcingMidStream(true),
    });
    const client = new Anthropic({ apiKey: KEYS.free, baseURL: h.proxy.url, maxRetries: 0 });
    const stream = client.messages.stream({
      model: 'small-model',
      // Under the hour's 200, or admission refuses it; the upstream ignores it anyway.
      max_tokens: 150,
      messages: [{ role: 'user', content: 'go on forever' }],
    });
    const message = await stream.finalMessage();
    expect(message.stop_reason).toBe('max_tokens');
    await h.settled(1);
    const line = h.accessLogs()[0]!;
    expect(line).toMatchObject({ outcome: 'cut_off', provenance: 'partial' });
    expect(message.usage.output_tokens).toBeGreaterThan(0);
    expect(message.usage.output_tokens).toBe(line.output_tokens);
    expect(message.usage.input_tokens).toBe(line.input_tokens);
  });

  it('gives an OpenAI client that asked for usage a usage chunk with the figures it is charged', async () => {
    h = await startHarness({
      reply: { kind: 'stream', chunks: chatStream('small-model', ENDLESS, undefined, false), delayMs: 3 },
      config: enforcingMidStream(false),
    });
    const client = new OpenAI({ apiKey: KEYS.free, baseURL: `${h.proxy.url}/v1`, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: 'small-model',
      messages: [{ role: 'user', content: 'go on forever' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('length');
    const usage = chunks.at(-1)?.usage;
    await h.settled(1);
    const line = h.accessLogs()[0]!;
    expect(line.outcome).toBe('cut_off');
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    expect(usage).toMatchObject({ prompt_tokens: line.input_tokens, completion_tokens: line.output_tokens });
  });

  it('ends a stream that outruns the allowance at an event boundary, tells the client why, and meters it', async () => {
    const pieces = Array.from({ length: 100 }, () => 'abcdefgh ');
    h = await startHarness({
      // This upstream ignores max_tokens, which is what mid-stream enforcement is for.
      reply: { kind: 'stream', chunks: chatStream('small-model', pieces, undefined, false), delayMs: 3 },
      config: (base) => {
        const plans = base.plans as Record<string, Record<string, unknown>>;
        return {
          ...base,
          plans: {
            ...plans,
            free: { ...plans.free, rate_limits: { tokens_per_hour: 200 }, enforce_mid_stream: true },
          },
        };
      },
    });
    const res = await request(`${h.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'small-model',
        messages: [{ role: 'user', content: 'go on forever' }],
        stream: true,
      }),
    });
    const text = await res.body.text();
    const events = text.split('\n\n').filter(Boolean);
    const last = JSON.parse(events.at(-2)!.slice('data: '.length)) as {
      choices: { finish_reason: string }[];
    };
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(last.choices[0]?.finish_reason).toBe('length');
    const streamedChars = events.filter((e) => e.includes('abcdefgh')).length * 9;
    expect(streamedChars).toBeLessThan(900);
    expect(streamedChars).toBeGreaterThan(400);
    await h.settled(1);
    const line = h.accessLogs()[0]!;
    expect(line.outcome).toBe('cut_off');
    expect(line.provenance).toBe('partial');
    expect(line.output_tokens as number).toBeLessThanOrEqual(200);
    for (let i = 0; i < 100 && h.upstream.aborted === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(h.upstream.aborted).toBe(1);
  });
});
