/**
 * An Anthropic Messages client (the official @anthropic-ai/sdk, as a coding agent would use
 * it) whose plan model an OpenAI-dialect upstream serves: the proxy sends chat completions
 * and answers in Anthropic's shapes, JSON and streamed, with tools. Metering reads the
 * OpenAI upstream's own usage, before translation.
 */
import Anthropic from '@anthropic-ai/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { chatCompletion, chatStream, type Received, type Reply } from '../helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function start(
  reply: Reply | ((req: Received) => Reply),
  extra: Record<string, unknown> = {},
): Promise<Anthropic> {
  h = await startHarness({
    reply,
    config: (base) => {
      const { upstream, ...rest } = base;
      return {
        ...rest,
        ...extra,
        upstreams: { openai: { ...(upstream as object), dialect: 'openai', models: ['*'] } },
      };
    },
  });
  return new Anthropic({ apiKey: KEYS.pro, baseURL: h.proxy.url, maxRetries: 0 });
}

describe('an Anthropic client served by an OpenAI upstream', () => {
  it('gets a 502 in its own error shape for an answer over max_json_response_bytes, not an empty 200', async () => {
    const big = 'x'.repeat(400_000);
    const client = await start(
      {
        kind: 'json',
        body: chatCompletion('big-model', big, { prompt_tokens: 3, completion_tokens: 9, total_tokens: 12 }),
      },
      { max_json_response_bytes: 64 * 1024 },
    );
    const error = await client.messages
      .create({ model: 'smart', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(502);
    expect((error as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({
      type: 'error',
      error: { type: 'api_error', message: expect.stringContaining('max_json_response_bytes') },
    });
    await h!.settled(1);
    const [line] = h!.accessLogs();
    // Still metered from the upstream's own bytes, and logged with the status the client got.
    expect(line).toMatchObject({ status: 502, output_tokens: 9 });

    // Under the limit, the same upstream's answer is translated whole.
    h!.upstream.reply({
      kind: 'json',
      body: chatCompletion('big-model', 'y'.repeat(60_000), {
        prompt_tokens: 3,
        completion_tokens: 9,
        total_tokens: 12,
      }),
    });
    const ok = await client.messages.create({
      model: 'smart',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(ok.content).toEqual([{ type: 'text', text: 'y'.repeat(60_000) }]);
  });

  it('gets a Message, and the upstream gets a chat completion with the cap and system prompt', async () => {
    const client = await start({
      kind: 'json',
      body: chatCompletion('big-model', 'Hello from OpenAI', {
        prompt_tokens: 30,
        completion_tokens: 4,
        total_tokens: 34,
        prompt_tokens_details: { cached_tokens: 10 },
      }),
    });
    const message = await client.messages.create({
      model: 'smart',
      max_tokens: 100,
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(message.type).toBe('message');
    expect(message.content).toEqual([{ type: 'text', text: 'Hello from OpenAI' }]);
    expect(message.stop_reason).toBe('end_turn');
    expect(message.usage.output_tokens).toBe(4);
    // OpenAI's prompt_tokens include the cached ones; Anthropic's input_tokens do not.
    expect(message.usage.input_tokens + (message.usage.cache_read_input_tokens ?? 0)).toBe(30);

    const sent = h!.lastReceived();
    expect(sent.path).toBe('/v1/chat/completions');
    expect(sent.headers.authorization).toBe('Bearer sk-upstream-secret');
    expect(sent.headers['x-api-key']).toBeUndefined();
    const body = sent.body as {
      model: string;
      messages: { role: string; content: unknown }[];
      max_completion_tokens?: number;
      max_tokens?: number;
    };
    expect(body.model).toBe('big-model');
    expect(body.messages[0]).toMatchObject({ role: 'system' });
    expect(JSON.stringify(body.messages[0])).toContain('Be brief.');
    expect(body.max_completion_tokens ?? body.max_tokens).toBe(100);

    await h!.settled(1);
    const [line] = h!.accessLogs();
    expect(line).toMatchObject({
      upstream: 'openai',
      model: 'big-model',
      input_tokens: 30,
      cached_input_tokens: 10,
      output_tokens: 4,
      provenance: 'reported',
    });
    // big-model: input 10, cached input 5, output 30 USD per million.
    expect(line!.cost_usd).toBeCloseTo((20 * 10 + 10 * 5 + 4 * 30) / 1e6, 12);
  });

  it('streams Anthropic events the SDK assembles into the final message', async () => {
    const client = await start({
      kind: 'stream',
      chunks: chatStream(
        'big-model',
        ['Hel', 'lo'],
        { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 },
        true,
      ),
    });
    const stream = client.messages.stream({
      model: 'smart',
      max_tokens: 50,
      messages: [{ role: 'user', content: 'hi' }],
    });
    const final = await stream.finalMessage();
    expect(final.content).toEqual([{ type: 'text', text: 'Hello' }]);
    expect(final.stop_reason).toBe('end_turn');
    expect(final.usage.output_tokens).toBe(2);
    // The upstream was asked for its usage (the proxy needs it; the client never sees OpenAI's chunk).
    expect((h!.lastReceived().body as { stream_options?: unknown }).stream_options).toEqual({
      include_usage: true,
    });
    await h!.settled(1);
    expect(h!.accessLogs()[0]).toMatchObject({ input_tokens: 9, output_tokens: 2, provenance: 'reported' });
  });

  it('streams through an upstream that refuses stream_options: retried without, then not asked', async () => {
    const client = await start((req) =>
      (req.body as { stream_options?: unknown }).stream_options
        ? {
            kind: 'json',
            status: 400,
            body: {
              error: {
                message: 'Unrecognized request argument supplied: stream_options',
                type: 'invalid_request_error',
              },
            },
          }
        : { kind: 'stream', chunks: chatStream('big-model', ['Hel', 'lo'], undefined, false) },
    );
    const ask = () =>
      client.messages
        .stream({ model: 'smart', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] })
        .finalMessage();
    expect((await ask()).content).toEqual([{ type: 'text', text: 'Hello' }]);
    expect(h!.upstream.received).toHaveLength(2);
    expect((h!.upstream.received[1]!.body as Record<string, unknown>).stream_options).toBeUndefined();
    // Learned from the retry's success: the next stream goes without the field at once.
    expect((await ask()).content).toEqual([{ type: 'text', text: 'Hello' }]);
    expect(h!.upstream.received).toHaveLength(3);
    expect((h!.upstream.received[2]!.body as Record<string, unknown>).stream_options).toBeUndefined();
    await h!.settled(2);
    for (const line of h!.accessLogs()) expect(line).toMatchObject({ status: 200, provenance: 'estimated' });
  });

  it('passes on a 400 that does not blame stream_options once, in its own shape', async () => {
    const client = await start({
      kind: 'json',
      status: 400,
      body: { error: { message: 'messages[0] is bad', type: 'invalid_request_error' } },
    });
    const error = await client.messages
      .stream({ model: 'smart', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] })
      .finalMessage()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(400);
    expect(String((error as Error).message)).toContain('messages[0] is bad');
    expect(h!.upstream.received).toHaveLength(1);
  });

  it('carries tools, tool results and images both ways', async () => {
    const client = await start({
      kind: 'json',
      body: {
        id: 'chatcmpl-t',
        object: 'chat.completion',
        created: 1764400000,
        model: 'big-model',
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: null,
              tool_calls: [
                {
                  id: 'call_9',
                  type: 'function',
                  function: { name: 'weather', arguments: '{"city":"Oslo"}' },
                },
              ],
            },
            finish_reason: 'tool_calls',
          },
        ],
        usage: { prompt_tokens: 50, completion_tokens: 7, total_tokens: 57 },
      },
    });
    const message = await client.messages.create({
      model: 'smart',
      max_tokens: 100,
      tools: [
        { name: 'weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } },
      ],
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Weather where this photo is?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          ],
        },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'locate', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'Norway' }] },
      ],
    });
    expect(message.stop_reason).toBe('tool_use');
    expect(message.content).toEqual([
      { type: 'tool_use', id: 'call_9', name: 'weather', input: { city: 'Oslo' } },
    ]);
    const body = h!.lastReceived().body as { tools: unknown[]; messages: Record<string, unknown>[] };
    expect(body.tools).toEqual([
      {
        type: 'function',
        function: {
          name: 'weather',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
      },
    ]);
    const wire = JSON.stringify(body.messages);
    expect(wire).toContain('"image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}');
    expect(wire).toContain(
      '"tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"locate","arguments":"{}"}}]',
    );
    expect(body.messages).toContainEqual({ role: 'tool', tool_call_id: 'toolu_1', content: 'Norway' });
  });

  it("answers an upstream error in Anthropic's shape with the status kept", async () => {
    const client = await start({
      kind: 'json',
      status: 429,
      body: { error: { message: 'slow down', type: 'rate_limit_error', param: null, code: null } },
    });
    const error = await client.messages
      .create({ model: 'smart', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    expect((error as InstanceType<typeof Anthropic.APIError>).message).toContain('slow down');
  });
});
