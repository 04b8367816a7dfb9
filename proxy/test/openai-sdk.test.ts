/**
 * The official openai SDK, pointed at the proxy with baseURL, as a tenant's app would use
 * it: JSON and streamed chat completions, what the upstream received, what was metered,
 * and how errors surface in the SDK.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatCompletion, chatStream } from './helpers/fake-upstream.js';
import { KEYS, metricValue, startHarness, type Harness } from './helpers/harness.js';

const USAGE = {
  prompt_tokens: 120,
  completion_tokens: 40,
  total_tokens: 160,
  prompt_tokens_details: { cached_tokens: 64, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 12, audio_tokens: 0 },
};

let h: Harness;
const client = (key: string) => new OpenAI({ baseURL: `${h.proxy.url}/v1`, apiKey: key, maxRetries: 0 });

beforeAll(async () => {
  h = await startHarness({
    reply: (req) => {
      const body = req.body as {
        model: string;
        stream?: boolean;
        stream_options?: { include_usage?: boolean };
      };
      if (body.stream) {
        const include = body.stream_options?.include_usage === true;
        return { kind: 'stream', chunks: chatStream(body.model, ['Hel', 'lo', ' there'], USAGE, include) };
      }
      return {
        kind: 'json',
        body: chatCompletion(body.model, 'Hello there', USAGE),
        headers: { 'x-ratelimit-remaining-requests': '9999' },
      };
    },
  });
});
afterAll(() => h.close());

describe('the openai SDK through the proxy', () => {
  it('gets a JSON chat completion, with the plan model and system prompt sent upstream and no client credential', async () => {
    const completion = await client(KEYS.free).chat.completions.create({
      model: 'small-model',
      messages: [{ role: 'user', content: 'Say hello' }],
    });
    expect(completion.choices[0]?.message.content).toBe('Hello there');
    expect(completion.usage?.total_tokens).toBe(160);

    const got = h.lastReceived();
    const body = got.body as { model: string; messages: { role: string; content: string }[] };
    expect(got.path).toBe('/v1/chat/completions');
    expect(body.model).toBe('small-model');
    expect(body.messages[0]).toEqual({ role: 'system', content: 'You are the ACME free-tier assistant.' });
    expect(body.messages.filter((m) => m.role === 'system')).toHaveLength(1);
    expect(body.messages[1]).toEqual({ role: 'user', content: 'Say hello' });
    expect(got.headers.authorization).toBe('Bearer sk-upstream-secret');
    expect(JSON.stringify(got.headers)).not.toContain(KEYS.free);
    expect(got.headers['x-tenant-id']).toBe('acme');
    expect(got.headers['x-tenant-plan']).toBe('free');
  });

  it('rewrites a missing model to the plan default and an alias to its upstream id', async () => {
    await client(KEYS.pro).chat.completions.create({
      model: 'smart',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect((h.lastReceived().body as { model: string }).model).toBe('big-model');
    const res = await fetch(`${h.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(200);
    expect((h.lastReceived().body as { model: string }).model).toBe('small-model');
  });

  it('meters every token kind and the cost of a JSON completion', async () => {
    const before = h.accessLogs().length;
    const read = async () => await (await fetch(`${h.proxy.adminUrl}/metrics`)).text();
    const kind = (text: string, k: string) =>
      metricValue(text, 'lanekeeper_tokens_total', { tenant: 'globex', model: 'big-model', kind: k }) ?? 0;
    const cost = (text: string) =>
      metricValue(text, 'lanekeeper_cost_usd_total', { tenant: 'globex', model: 'big-model' }) ?? 0;
    const metricsBefore = await read();
    await client(KEYS.pro).chat.completions.create({
      model: 'big-model',
      messages: [{ role: 'user', content: 'x' }],
    });
    await h.settled(before + 1);
    const line = h.accessLogs().at(-1)!;
    expect(line).toMatchObject({
      tenant: 'globex',
      plan: 'pro',
      model: 'big-model',
      status: 200,
      input_tokens: 120,
      output_tokens: 40,
      cached_input_tokens: 64,
      reasoning_tokens: 12,
      provenance: 'reported',
    });
    // (120-64) fresh input at $10, 64 cached at $5, 40 output at $30, per 1M tokens.
    expect(line.cost_usd).toBeCloseTo((56 * 10 + 64 * 5 + 40 * 30) / 1e6, 12);
    const metrics = await read();
    expect(kind(metrics, 'cached_input') - kind(metricsBefore, 'cached_input')).toBe(64);
    expect(kind(metrics, 'reasoning') - kind(metricsBefore, 'reasoning')).toBe(12);
    expect(kind(metrics, 'input') - kind(metricsBefore, 'input')).toBe(120);
    expect(cost(metrics) - cost(metricsBefore)).toBeCloseTo(0.00208, 10);
  });

  it('streams a chat completion without usage when the client did not ask, yet meters it', async () => {
    const before = h.accessLogs().length;
    const stream = await client(KEYS.free).chat.completions.create({
      model: 'small-model',
      messages: [{ role: 'user', content: 'stream please' }],
      stream: true,
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('Hello there');
    expect(chunks.every((c) => c.choices.length === 1)).toBe(true);
    expect(chunks.some((c) => 'usage' in c)).toBe(false);
    const sent = h.lastReceived().body as { stream_options?: { include_usage?: boolean } };
    expect(sent.stream_options?.include_usage).toBe(true);
    await h.settled(before + 1);
    expect(h.accessLogs().at(-1)).toMatchObject({
      tenant: 'acme',
      input_tokens: 120,
      output_tokens: 40,
      provenance: 'reported',
      stream: true,
    });
  });

  it('passes the usage chunk through when the client asked for it', async () => {
    const stream = await client(KEYS.free).chat.completions.create({
      model: 'small-model',
      messages: [{ role: 'user', content: 'stream please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) usage = chunk.usage ?? usage;
    expect(usage?.completion_tokens).toBe(40);
  });

  it('surfaces proxy refusals as the SDK error classes with an actionable message', async () => {
    const bad = client('lk_not_a_real_key');
    await expect(bad.chat.completions.create({ model: 'small-model', messages: [] })).rejects.toMatchObject({
      status: 401,
      code: 'invalid_api_key',
    });
    await expect(bad.chat.completions.create({ model: 'small-model', messages: [] })).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    const err = await client(KEYS.free)
      .chat.completions.create({ model: 'big-model', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('model_not_allowed');
    expect((err as Error).message).toContain('free plan');
    await expect(
      client(KEYS.suspended).chat.completions.create({ model: 'small-model', messages: [] }),
    ).rejects.toMatchObject({
      status: 403,
      code: 'tenant_inactive',
    });
  });

  it('replaces the upstream account rate-limit headers with the tenant ones', async () => {
    const { response } = await client(KEYS.free)
      .chat.completions.create({ model: 'small-model', messages: [{ role: 'user', content: 'x' }] })
      .withResponse();
    expect(response.headers.get('x-ratelimit-limit-requests')).toBe('100');
    expect(Number(response.headers.get('x-ratelimit-remaining-requests'))).toBeLessThan(100);
    expect(response.headers.get('x-ratelimit-remaining-requests')).not.toBe('9999');
  });
});
