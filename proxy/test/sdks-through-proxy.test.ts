/**
 * The official SDKs of each provider, pointed at the proxy, as a tenant's app would use
 * them: @anthropic-ai/sdk (messages, JSON and streamed), openai (responses and embeddings)
 * and @google/genai (generateContent, JSON and streamed). The upstream serves recorded
 * responses; metering must equal what they report.
 */
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from './dialects/fixture-cases.js';
import { KEYS, startHarness, type Harness } from './helpers/harness.js';

let h: Harness;
let file = '';

beforeAll(async () => {
  h = await startHarness({
    reply: () => ({
      kind: 'stream',
      contentType: file.endsWith('.sse') ? 'text/event-stream' : 'application/json',
      chunks: [fixture(file)],
    }),
    config: (base) => {
      const plans = base.plans as Record<string, Record<string, unknown>>;
      return {
        ...base,
        plans: {
          ...plans,
          pro: {
            ...plans.pro,
            models: { default: 'plan-default', flash: 'gemini-2.5-flash', pro: 'gemini-2.5-pro' },
          },
        },
      };
    },
  });
});
afterAll(() => h.close());

async function lastLine(before: number) {
  await h.settled(before + 1);
  return h.accessLogs().at(-1)!;
}

describe('@anthropic-ai/sdk through the proxy', () => {
  const client = () => new Anthropic({ baseURL: h.proxy.url, apiKey: KEYS.pro, maxRetries: 0 });

  it('creates a message and meters input, output and both cache kinds', async () => {
    file = 'anthropic/messages.json';
    const before = h.accessLogs().length;
    const message = await client().messages.create({
      model: 'plan-default',
      max_tokens: 200,
      messages: [{ role: 'user', content: 'Hello' }],
    });
    expect(message.usage.output_tokens).toBe(80);
    expect(h.lastReceived().headers['x-api-key']).toBeUndefined();
    expect(await lastLine(before)).toMatchObject({
      dialect: 'anthropic',
      input_tokens: 3312,
      output_tokens: 80,
      cached_input_tokens: 3000,
      cache_write_tokens: 300,
      provenance: 'reported',
    });
  });

  it('streams a message and meters the cumulative usage', async () => {
    file = 'anthropic/messages-stream.sse';
    const before = h.accessLogs().length;
    const stream = client().messages.stream({
      model: 'plan-default',
      max_tokens: 200,
      messages: [{ role: 'user', content: 'Hello' }],
    });
    const final = await stream.finalMessage();
    expect(final.usage.output_tokens).toBe(15);
    expect(await lastLine(before)).toMatchObject({
      input_tokens: 3312,
      output_tokens: 15,
      cached_input_tokens: 3000,
      cache_write_tokens: 300,
      stream: true,
    });
  });

  it('gets its errors as Anthropic errors', async () => {
    const err = await new Anthropic({ baseURL: h.proxy.url, apiKey: 'lk_wrong', maxRetries: 0 }).messages
      .create({ model: 'x', max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((err as InstanceType<typeof Anthropic.APIError>).status).toBe(401);
  });
});

describe('openai SDK: responses and embeddings', () => {
  const client = () => new OpenAI({ baseURL: `${h.proxy.url}/v1`, apiKey: KEYS.pro, maxRetries: 0 });

  it('creates a response and meters cached and reasoning tokens', async () => {
    file = 'openai/responses.json';
    const before = h.accessLogs().length;
    const response = await client().responses.create({ model: 'plan-default', input: 'Hello' });
    expect(response.usage?.output_tokens).toBe(52);
    expect(await lastLine(before)).toMatchObject({
      input_tokens: 328,
      output_tokens: 52,
      cached_input_tokens: 128,
      reasoning_tokens: 32,
    });
  });

  it('streams a response and meters the usage of response.completed', async () => {
    file = 'openai/responses-stream.sse';
    const before = h.accessLogs().length;
    const stream = await client().responses.create({ model: 'plan-default', input: 'Hello', stream: true });
    let completed: number | undefined;
    for await (const event of stream)
      if (event.type === 'response.completed') completed = event.response.usage?.output_tokens;
    expect(completed).toBe(11);
    expect(await lastLine(before)).toMatchObject({
      input_tokens: 37,
      output_tokens: 11,
      provenance: 'reported',
      stream: true,
    });
  });

  it('creates embeddings and meters their input', async () => {
    file = 'openai/embeddings.json';
    const before = h.accessLogs().length;
    const result = await client().embeddings.create({ model: 'plan-default', input: 'Hello' });
    expect(result.data.length).toBeGreaterThan(0);
    const line = await lastLine(before);
    expect(line.input_tokens).toBe(result.usage.prompt_tokens);
    expect(line.output_tokens).toBe(0);
  });
});

describe('@google/genai through the proxy', () => {
  const client = () => new GoogleGenAI({ apiKey: KEYS.pro, httpOptions: { baseUrl: h.proxy.url } });

  it('generates content with a plan alias rewritten in the path, and meters thinking as output', async () => {
    file = 'gemini/generate.json';
    const before = h.accessLogs().length;
    const result = await client().models.generateContent({ model: 'pro', contents: 'Hello' });
    expect(result.usageMetadata?.candidatesTokenCount).toBe(227);
    expect(h.lastReceived().path).toBe('/v1beta/models/gemini-2.5-pro:generateContent');
    expect(JSON.stringify(h.lastReceived().headers)).not.toContain(KEYS.pro);
    expect(await lastLine(before)).toMatchObject({
      dialect: 'gemini',
      input_tokens: 2048,
      output_tokens: 267,
      cached_input_tokens: 1024,
      reasoning_tokens: 40,
    });
  });

  it('streams content and keeps the last usageMetadata', async () => {
    file = 'gemini/stream.sse';
    const before = h.accessLogs().length;
    const stream = await client().models.generateContentStream({ model: 'flash', contents: 'Hello' });
    let chunks = 0;
    for await (const _chunk of stream) chunks++;
    expect(chunks).toBeGreaterThan(1);
    expect(h.lastReceived().path).toBe('/v1beta/models/gemini-2.5-flash:streamGenerateContent');
    expect(await lastLine(before)).toMatchObject({
      input_tokens: 11,
      output_tokens: 52,
      reasoning_tokens: 40,
      stream: true,
    });
  });
});
