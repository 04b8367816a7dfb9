/**
 * OpenAI clients (the official openai SDK) whose plan models are served by a Gemini-dialect
 * and an Ollama-dialect upstream, through the real proxy, against fake upstreams replaying
 * recorded wire bytes (proxy/test/fixtures): text, tools, images, JSON and streamed. The
 * tokens metered are exactly what each upstream reported in its own format, priced at the
 * served model; the client gets OpenAI's shapes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream, type Reply } from '../helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const GEMINI_STREAM = readFileSync(join(FIXTURES, 'gemini', 'stream-tools.sse'), 'utf8');
const OLLAMA_STREAM = readFileSync(join(FIXTURES, 'ollama', 'chat-stream-tools.ndjson'), 'utf8');

let h: Harness | undefined;
let other: FakeUpstream | undefined;
afterEach(async () => {
  await h?.close();
  await other?.close();
  h = undefined;
  other = undefined;
});

async function start(dialect: 'gemini' | 'ollama', reply: Reply): Promise<OpenAI> {
  other = await startFakeUpstream(reply);
  h = await startHarness({
    config: (base) => {
      const { upstream, ...rest } = base;
      return {
        ...rest,
        upstreams: {
          openai: { ...(upstream as object), dialect: 'openai', models: ['small-model', 'big-model'] },
          [dialect]: {
            url: other!.url,
            dialect,
            headers: dialect === 'gemini' ? { 'x-goog-api-key': 'g-secret' } : {},
            models: ['gemini-*', 'qwen*'],
          },
        },
        pricing: {
          ...(rest.pricing as object),
          'gemini-3-flash-preview': { input: 0.5, output: 3, cached_input: 0.05 },
          qwen3: { input: 0.1, output: 0.2 },
        },
        plans: {
          ...(rest.plans as object),
          pro: {
            models: { default: 'small-model', flash: 'gemini-3-flash-preview', local: 'qwen3' },
            features: ['image_analysis'],
          },
        },
      };
    },
  });
  return new OpenAI({ apiKey: KEYS.pro, baseURL: `${h.proxy.url}/v1`, maxRetries: 0 });
}

const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      parameters: { type: 'object', properties: { city: { type: 'string' } } },
    },
  },
];

describe('an OpenAI client served by a Gemini upstream', () => {
  it('gets a completion; Gemini gets generateContent with the image inline and its own key', async () => {
    const client = await start('gemini', {
      kind: 'json',
      body: {
        candidates: [
          { content: { role: 'model', parts: [{ text: 'A cat.' }] }, finishReason: 'STOP', index: 0 },
        ],
        usageMetadata: {
          promptTokenCount: 300,
          candidatesTokenCount: 3,
          thoughtsTokenCount: 5,
          totalTokenCount: 308,
        },
        modelVersion: 'gemini-3-flash-preview',
      },
    });
    const completion = await client.chat.completions.create({
      model: 'flash',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is this?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          ],
        },
      ],
    });
    expect(completion.choices[0]?.message.content).toBe('A cat.');
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    expect(completion.usage).toMatchObject({ prompt_tokens: 300, completion_tokens: 8 });
    const sent = other!.received.at(-1)!;
    expect(sent.path).toBe('/v1beta/models/gemini-3-flash-preview:generateContent');
    expect(sent.headers['x-goog-api-key']).toBe('g-secret');
    expect(sent.headers.authorization).toBeUndefined();
    expect(JSON.stringify(sent.body)).toContain(
      '"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}',
    );
    await h!.settled(1);
    expect(h!.accessLogs()[0]).toMatchObject({
      upstream: 'gemini',
      input_tokens: 300,
      output_tokens: 8,
      reasoning_tokens: 5,
      provenance: 'reported',
    });
  });

  it("streams tool calls and usage from recorded Gemini SSE, metered from Gemini's last usageMetadata", async () => {
    const client = await start('gemini', { kind: 'stream', chunks: [GEMINI_STREAM] });
    const stream = await client.chat.completions.create({
      model: 'flash',
      messages: [{ role: 'user', content: 'Weather in Paris and Zürich?' }],
      tools,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    const calls = new Map<number, { name: string; args: string }>();
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      for (const call of chunk.choices[0]?.delta.tool_calls ?? []) {
        const seen = calls.get(call.index) ?? { name: '', args: '' };
        seen.name += call.function?.name ?? '';
        seen.args += call.function?.arguments ?? '';
        calls.set(call.index, seen);
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe('Let me check the weather in both cities.');
    expect([...calls.values()].map((c) => [c.name, JSON.parse(c.args)])).toEqual([
      ['get_weather', { city: 'Paris', unit: 'celsius' }],
      ['get_weather', { city: 'Zürich' }],
    ]);
    expect(finish).toBe('tool_calls');
    expect(usage).toMatchObject({ prompt_tokens: 52, completion_tokens: 43 });
    expect(other!.received.at(-1)!.path).toBe('/v1beta/models/gemini-3-flash-preview:streamGenerateContent');
    expect(other!.received.at(-1)!.query).toBe('alt=sse');
    await h!.settled(1);
    const [line] = h!.accessLogs();
    expect(line).toMatchObject({
      input_tokens: 52,
      cached_input_tokens: 16,
      output_tokens: 43,
      provenance: 'reported',
    });
    expect(line!.cost_usd).toBeCloseTo(((52 - 16) * 0.5 + 16 * 0.05 + 43 * 3) / 1e6, 12);
  });
});

describe('an OpenAI client served by an Ollama upstream', () => {
  it('streams tool calls from recorded Ollama NDJSON, metered from its done object', async () => {
    const client = await start('ollama', {
      kind: 'stream',
      contentType: 'application/x-ndjson',
      chunks: [OLLAMA_STREAM],
    });
    const stream = await client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'Weather?' }],
      tools,
      stream: true,
      stream_options: { include_usage: true },
    });
    const names: string[] = [];
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      for (const call of chunk.choices[0]?.delta.tool_calls ?? [])
        if (call.function?.name) names.push(call.function.name);
      usage = chunk.usage ?? usage;
    }
    expect(names).toEqual(['get_weather', 'get_weather']);
    expect(usage).toMatchObject({ prompt_tokens: 140, completion_tokens: 35 });
    const sent = other!.received.at(-1)!;
    expect(sent.path).toBe('/api/chat');
    expect((sent.body as { stream?: boolean }).stream).toBe(true);
    await h!.settled(1);
    const [line] = h!.accessLogs();
    expect(line).toMatchObject({ upstream: 'ollama', model: 'qwen3', input_tokens: 140, output_tokens: 35 });
    expect(line!.cost_usd).toBeCloseTo((140 * 0.1 + 35 * 0.2) / 1e6, 12);
  });

  it('gets a JSON completion with the cap in options.num_predict', async () => {
    const client = await start('ollama', {
      kind: 'json',
      body: {
        model: 'qwen3',
        created_at: '2025-11-29T14:00:00Z',
        message: { role: 'assistant', content: 'Sunny.' },
        done: true,
        done_reason: 'stop',
        prompt_eval_count: 20,
        eval_count: 3,
      },
    });
    const completion = await client.chat.completions.create({
      model: 'local',
      messages: [{ role: 'user', content: 'Weather?' }],
      max_tokens: 64,
    });
    expect(completion.choices[0]?.message.content).toBe('Sunny.');
    expect(completion.usage).toMatchObject({ prompt_tokens: 20, completion_tokens: 3 });
    const body = other!.received.at(-1)!.body as { stream: boolean; options: { num_predict: number } };
    expect(body.stream).toBe(false);
    expect(body.options.num_predict).toBe(64);
  });
});
