/**
 * An OpenAI client (the official openai SDK) whose plan model is served by an upstream that
 * speaks Anthropic Messages, byte for byte as Anthropic sends it (../shared/reference/
 * wire-formats.md section 5): text, tools, images, JSON and streamed. Metering reads
 * Anthropic's own usage before translation, so the tokens booked are exactly Anthropic's;
 * the client gets OpenAI's shapes, an OpenAI stream that ends in [DONE], and usage in it
 * only when it asked. The streamed translation is the same whatever the split points of the
 * upstream's bytes (property test).
 */
import fc from 'fast-check';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { createEventFramer } from '../../src/usage/event-framer.js';
import { openaiToAnthropic } from '../../src/translate/openai-anthropic.js';
import { startFakeUpstream, type FakeUpstream, type Reply } from '../helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';

let h: Harness | undefined;
let claude: FakeUpstream | undefined;
afterEach(async () => {
  await h?.close();
  await claude?.close();
  h = undefined;
  claude = undefined;
});

const USAGE = {
  input_tokens: 25,
  cache_read_input_tokens: 100,
  cache_creation_input_tokens: 7,
  output_tokens: 12,
};

const message = (content: unknown[], stop = 'end_turn') => ({
  id: 'msg_01',
  type: 'message',
  role: 'assistant',
  content,
  model: 'claude-sonnet-4-6',
  stop_reason: stop,
  stop_sequence: null,
  usage: USAGE,
});

const sse = (events: Record<string, unknown>[]) =>
  events.map((e) => `event: ${String(e.type)}\ndata: ${JSON.stringify(e)}\n\n`).join('');

const TEXT_STREAM = sse([
  {
    type: 'message_start',
    message: { ...message([]), stop_reason: null, usage: { ...USAGE, output_tokens: 1 } },
  },
  { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
  { type: 'ping' },
  { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello' } },
  { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ' there' } },
  { type: 'content_block_stop', index: 0 },
  {
    type: 'content_block_start',
    index: 1,
    content_block: { type: 'tool_use', id: 'toolu_1', name: 'weather', input: {} },
  },
  { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"city":' } },
  { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '"Paris"}' } },
  { type: 'content_block_stop', index: 1 },
  {
    type: 'message_delta',
    delta: { stop_reason: 'tool_use', stop_sequence: null },
    usage: { output_tokens: 12 },
  },
  { type: 'message_stop' },
]);

async function start(reply: Reply | ((body: Record<string, unknown>) => Reply)): Promise<OpenAI> {
  claude = await startFakeUpstream((req) =>
    typeof reply === 'function' ? reply(req.body as Record<string, unknown>) : reply,
  );
  h = await startHarness({
    config: (base) => {
      const { upstream, ...rest } = base;
      return {
        ...rest,
        upstreams: {
          openai: { ...(upstream as object), dialect: 'openai', models: ['small-model', 'big-model'] },
          anthropic: {
            url: claude!.url,
            dialect: 'anthropic',
            headers: { 'x-api-key': 'sk-ant-secret', 'anthropic-version': '2023-06-01' },
            models: ['claude-*'],
          },
        },
        pricing: {
          ...(rest.pricing as object),
          'claude-sonnet-4-6': { input: 3, output: 15, cached_input: 0.3, cache_write: 3.75 },
        },
        plans: {
          ...(rest.plans as object),
          pro: {
            models: {
              default: 'small-model',
              coding: 'claude-sonnet-4-6',
              resilient: ['big-model', 'claude-sonnet-4-6'],
            },
            // media_output: audio is then refused by the translation (Anthropic has none), not the plan.
            features: ['image_analysis', 'media_output'],
            custom_prompts: { system: 'Plan prompt.' },
          },
        },
      };
    },
  });
  return new OpenAI({ apiKey: KEYS.pro, baseURL: `${h.proxy.url}/v1`, maxRetries: 0 });
}

const sent = () => claude!.received.at(-1)!;

describe('an OpenAI client served by an Anthropic upstream', () => {
  it('gets a chat completion with text and tool calls, and the upstream gets a Messages request', async () => {
    const client = await start({
      kind: 'json',
      body: message(
        [
          { type: 'text', text: 'Let me check.' },
          { type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Paris' } },
        ],
        'tool_use',
      ),
    });
    const completion = await client.chat.completions.create({
      model: 'coding',
      messages: [
        { role: 'system', content: 'Be brief.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Weather here?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          ],
        },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'locate', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'call_0', content: 'Paris' },
      ],
      tools: [
        { type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: {} } } },
      ],
      tool_choice: 'required',
      stop: 'END',
      temperature: 0.2,
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe('claude-sonnet-4-6');
    expect(completion.choices[0]?.finish_reason).toBe('tool_calls');
    expect(completion.choices[0]?.message.content).toBe('Let me check.');
    const call = completion.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === 'function' && JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' });
    expect(completion.usage).toMatchObject({ prompt_tokens: 132, completion_tokens: 12, total_tokens: 144 });
    expect(completion.usage?.prompt_tokens_details?.cached_tokens).toBe(100);

    const req = sent();
    expect(req.path).toBe('/v1/messages');
    expect(req.headers['x-api-key']).toBe('sk-ant-secret');
    expect(req.headers.authorization).toBeUndefined();
    const body = req.body as Record<string, unknown>;
    expect(body.model).toBe('claude-sonnet-4-6');
    expect(body.system).toEqual([
      { type: 'text', text: 'Plan prompt.' },
      { type: 'text', text: 'Be brief.' },
    ]);
    expect(body.max_tokens).toBe(4096);
    expect(body.stop_sequences).toEqual(['END']);
    expect(body.tool_choice).toEqual({ type: 'any' });
    expect(body.tools).toEqual([{ name: 'weather', input_schema: { type: 'object', properties: {} } }]);
    expect(body.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Weather here?' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
        ],
      },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'call_0', name: 'locate', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_0', content: 'Paris' }] },
    ]);
  });

  it("meters Anthropic's own usage and prices it at the served model", async () => {
    const client = await start({ kind: 'json', body: message([{ type: 'text', text: 'ok' }]) });
    await client.chat.completions.create({ model: 'coding', messages: [{ role: 'user', content: 'hi' }] });
    await h!.settled(1);
    const [line] = h!.accessLogs();
    expect(line).toMatchObject({
      upstream: 'anthropic',
      model: 'claude-sonnet-4-6',
      input_tokens: 132,
      cached_input_tokens: 100,
      cache_write_tokens: 7,
      output_tokens: 12,
      provenance: 'reported',
    });
    expect(line!.cost_usd).toBeCloseTo((25 * 3 + 100 * 0.3 + 7 * 3.75 + 12 * 15) / 1e6, 12);
  });

  it('streams a valid OpenAI stream: text, tool-call argument fragments, [DONE], usage only when asked', async () => {
    const client = await start({ kind: 'stream', chunks: [TEXT_STREAM] });
    const stream = await client.chat.completions.create({
      model: 'coding',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let args = '';
    let finish: string | null = null;
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      args += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('Hello there');
    expect(JSON.parse(args)).toEqual({ city: 'Paris' });
    expect(finish).toBe('tool_calls');
    expect(usage).toMatchObject({ prompt_tokens: 132, completion_tokens: 12 });
    expect((sent().body as Record<string, unknown>).stream).toBe(true);
    await h!.settled(1);
    expect(h!.accessLogs()[0]).toMatchObject({
      input_tokens: 132,
      output_tokens: 12,
      provenance: 'reported',
    });

    const plain = await client.chat.completions.create({
      model: 'coding',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    const chunks = [];
    for await (const chunk of plain) chunks.push(chunk);
    expect(chunks.some((c) => c.usage)).toBe(false);
  });

  it('falls back from an OpenAI upstream to the Anthropic one, translating and swapping credentials', async () => {
    const client = await start({ kind: 'json', body: message([{ type: 'text', text: 'from claude' }]) });
    h!.upstream.reply({
      kind: 'json',
      status: 503,
      body: { error: { message: 'down', type: 'server_error' } },
    });
    const completion = await client.chat.completions.create({
      model: 'resilient',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(completion.choices[0]?.message.content).toBe('from claude');
    expect(completion.model).toBe('claude-sonnet-4-6');
    expect((h!.upstream.received[0]!.body as { model: string }).model).toBe('big-model');
    expect(h!.upstream.received[0]!.headers.authorization).toBe('Bearer sk-upstream-secret');
    expect(sent().path).toBe('/v1/messages');
    expect(sent().headers['x-api-key']).toBe('sk-ant-secret');
    expect(sent().headers.authorization).toBeUndefined();
    await h!.settled(1);
    expect(h!.accessLogs()[0]).toMatchObject({
      upstream: 'anthropic',
      model: 'claude-sonnet-4-6',
      input_tokens: 132,
    });
  });

  it("translates the upstream's errors into OpenAI's shape with the status kept", async () => {
    const client = await start({
      kind: 'json',
      status: 529,
      body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } },
    });
    const error = await client.chat.completions
      .create({ model: 'coding', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(529);
    expect((error as InstanceType<typeof OpenAI.APIError>).message).toContain('Overloaded');
  });

  it.each([
    ['n', { n: 2 }],
    ['logprobs', { logprobs: true }],
    ['response_format', { response_format: { type: 'json_object' } }],
    ['frequency_penalty', { frequency_penalty: 0.5 }],
    ['audio', { audio: { voice: 'alloy', format: 'mp3' } }],
  ])('refuses %s with 400 naming it, without calling the upstream', async (field, extra) => {
    const client = await start({ kind: 'json', body: message([]) });
    const error = await client.chat.completions
      .create({ model: 'coding', messages: [{ role: 'user', content: 'hi' }], ...extra } as never)
      .catch((e: unknown) => e);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    expect((error as InstanceType<typeof OpenAI.APIError>).message).toContain(`"${field}"`);
    expect(claude!.received).toHaveLength(0);
  });

  it('refuses embeddings for a model an Anthropic upstream serves', async () => {
    await start({ kind: 'json', body: message([]) });
    const res = await fetch(`${h!.proxy.url}/v1/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'coding', input: 'x' }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message).toContain('embeddings');
    expect(claude!.received).toHaveLength(0);
  });
});

describe('the stream translation', () => {
  const translate = (pieces: Buffer[]): string => {
    const framer = createEventFramer('sse');
    const stream = openaiToAnthropic.stream({ model: 'claude-sonnet-4-6', includeUsage: true });
    let out = '';
    const feed = (blocks: Buffer[]) => {
      for (const block of blocks) {
        const event = block.length > 0 ? framer.eventOf(block) : undefined;
        if (event) out += stream.push(event);
      }
    };
    for (const piece of pieces) feed(framer.push(piece));
    feed([framer.end()]);
    return (out + stream.end()).replace(/"created":\d+/g, '"created":0');
  };

  it('is the same whatever the split points of the upstream bytes', () => {
    const bytes = Buffer.from(TEXT_STREAM);
    const whole = translate([bytes]);
    expect(whole.endsWith('data: [DONE]\n\n')).toBe(true);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }),
        (cuts) => {
          const points = [0, ...cuts.sort((a, b) => a - b), bytes.length];
          const pieces = points.slice(1).map((end, i) => bytes.subarray(points[i], end));
          expect(translate(pieces)).toBe(whole);
        },
      ),
      { numRuns: 300 },
    );
  });
});
