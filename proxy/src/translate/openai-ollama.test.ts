import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CHAT_FIELD_ACCEPTS, CHAT_FIELD_REFUSALS, TOOL } from './chat-field-cases.js';
import {
  JSON_TYPE,
  SSE_TYPE,
  cannedServer,
  fixedIds,
  sseEvents,
  translateStream,
} from '../../test/helpers/translator-harness.js';
import { createOpenAiToOllama, openaiToOllama } from './openai-ollama.js';
import { TranslationError } from './translator.js';

const fixture = (name: string): Buffer =>
  readFileSync(new URL(`../../test/fixtures/ollama/${name}`, import.meta.url));
const MODEL = { model: 'llama3.2' };
const PNG = 'iVBORw0KGgo=';

function translate(body: Record<string, unknown>, endpoint = 'chat.completions') {
  return openaiToOllama.request(endpoint, { model: 'ignored', ...body }, MODEL);
}

function refusal(body: Record<string, unknown>, endpoint = 'chat.completions'): string {
  try {
    translate(body, endpoint);
  } catch (err) {
    expect(err).toBeInstanceOf(TranslationError);
    return (err as Error).message;
  }
  throw new Error('expected a TranslationError');
}

const user = (content: unknown) => ({ role: 'user', content });

describe('openai-ollama request', () => {
  it('sends messages to /api/chat with stream always set', () => {
    const req = translate({
      messages: [
        { role: 'developer', content: 'Be brief.' },
        user('Hi'),
        { role: 'assistant', content: 'Hello' },
      ],
    });
    expect(req).toEqual({
      path: '/api/chat',
      query: '',
      stream: false,
      body: {
        model: 'llama3.2',
        stream: false,
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello' },
        ],
      },
    });
    const streamed = translate({ messages: [user('Hi')], stream: true });
    expect(streamed.stream).toBe(true);
    expect(streamed.body.stream).toBe(true);
  });

  it('maps stop, caps and sampling into options and json formats into format', () => {
    const req = translate({
      messages: [user('Hi')],
      stop: ['a', 'b'],
      max_completion_tokens: 64,
      temperature: 0.3,
      top_p: 0.8,
      seed: 42,
      presence_penalty: 0.2,
      frequency_penalty: 0.4,
      response_format: { type: 'json_object' },
    });
    expect(req.body.options).toEqual({
      num_predict: 64,
      temperature: 0.3,
      top_p: 0.8,
      seed: 42,
      presence_penalty: 0.2,
      frequency_penalty: 0.4,
      stop: ['a', 'b'],
    });
    expect(req.body.format).toBe('json');
    const schema = { type: 'object', properties: { a: { type: 'number' } } };
    const withSchema = translate({
      messages: [user('Hi')],
      response_format: { type: 'json_schema', json_schema: { name: 's', schema } },
    });
    expect(withSchema.body.format).toEqual(schema);
  });

  it('sends data: URL images as base64 images and refuses links, naming image_url', () => {
    const req = translate({
      messages: [
        user([
          { type: 'text', text: 'What is ' },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
          { type: 'text', text: 'this?' },
        ]),
      ],
    });
    expect(req.body.messages).toEqual([{ role: 'user', content: 'What is this?', images: [PNG] }]);
    expect(
      refusal({ messages: [user([{ type: 'image_url', image_url: { url: 'http://x/cat.png' } }])] }),
    ).toContain('image_url');
  });

  it('passes tools through and replays tool calls and results with tool_name', () => {
    const tools = [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          description: 'Weather',
          parameters: { type: 'object' },
          strict: true,
        },
      },
    ];
    const req = translate({
      tools,
      tool_choice: 'auto',
      messages: [
        user('Weather?'),
        {
          role: 'assistant',
          content: '',
          tool_calls: [
            { id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'c1', content: '-3C' },
      ],
    });
    expect(req.body.tools).toEqual([
      {
        type: 'function',
        function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object' } },
      },
    ]);
    expect(req.body.messages).toEqual([
      { role: 'user', content: 'Weather?' },
      {
        role: 'assistant',
        content: '',
        tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Oslo' } } }],
      },
      { role: 'tool', content: '-3C', tool_name: 'get_weather' },
    ]);
    expect(translate({ tools, tool_choice: 'none', messages: [user('Hi')] }).body.tools).toBeUndefined();
  });

  it.each([
    ['n', { n: 2 }],
    ['tool_choice', { tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: 'required' }],
    ['logprobs', { logprobs: true }],
    ['logit_bias', { logit_bias: { '1': 5 } }],
    ['audio', { audio: { voice: 'alloy', format: 'mp3' } }],
    ['modalities', { modalities: ['audio'] }],
    ['prediction', { prediction: { type: 'content', content: 'x' } }],
    ['reasoning_effort', { reasoning_effort: 'high' }],
    ['parallel_tool_calls', { parallel_tool_calls: false }],
    ['tool_call_id', { messages: [user('Hi'), { role: 'tool', tool_call_id: 'x', content: 'y' }] }],
    ['audio', { messages: [user([{ type: 'input_audio', input_audio: { data: 'AA==', format: 'wav' } }])] }],
  ])('refuses %s, naming it', (field, extra) => {
    expect(refusal({ messages: [user('Hi')], ...extra })).toContain(field);
  });

  it('sends embeddings to /api/embed without silent truncation', () => {
    const req = translate(
      { input: ['a', 'b'], dimensions: 256, encoding_format: 'float', user: 'u' },
      'embeddings',
    );
    expect(req).toEqual({
      path: '/api/embed',
      query: '',
      stream: false,
      body: { model: 'llama3.2', input: ['a', 'b'], truncate: false, dimensions: 256 },
    });
  });

  it.each([
    ['encoding_format', { input: 'a', encoding_format: 'base64' }],
    ['input', { input: [1, 2, 3] }],
  ])('refuses embeddings %s it cannot carry, naming it', (field, body) => {
    expect(refusal(body, 'embeddings')).toContain(field);
  });

  it.each(['completions', 'responses', 'images.generations'])(
    'refuses the %s endpoint, naming it',
    (endpoint) => {
      expect(refusal({}, endpoint)).toContain(endpoint);
    },
  );
});

describe('openai-ollama request field types', () => {
  it.each(CHAT_FIELD_REFUSALS)('refuses %s = %j as a type error naming it', (field, value) => {
    // A nested field's value is its whole enclosing object.
    const top = field.split('.')[0] as string;
    expect(refusal({ messages: [user('Hi')], tools: [TOOL], [top]: value })).toContain(
      `field "${field}" must be`,
    );
  });

  it.each([...CHAT_FIELD_ACCEPTS])('accepts %s = %j', (field, value) => {
    expect(() => translate({ messages: [user('Hi')], tools: [TOOL], [field]: value })).not.toThrow();
  });

  it.each([
    ['input', 5],
    ['input', { text: 'a' }],
    ['input', ['a', null]],
    ['input', [[1, 'a']]],
    ['dimensions', '256'],
    ['dimensions', 1.5],
    ['model', ['m']],
    ['user', 5],
  ])('refuses embeddings %s = %j as a type error naming it', (field, value) => {
    expect(refusal({ input: 'a', [field]: value }, 'embeddings')).toContain(`field "${field}" must be`);
  });

  it.each([
    ['input', ''],
    ['input', ['a', 'b']],
    ['dimensions', 256],
    ['user', 'u'],
  ])('accepts embeddings %s = %j', (field, value) => {
    expect(() => translate({ input: 'a', [field]: value }, 'embeddings')).not.toThrow();
  });
});

describe('openai-ollama response', () => {
  it('turns a chat answer into a chat.completion with usage', () => {
    const body: unknown = JSON.parse(fixture('chat.json').toString());
    expect(createOpenAiToOllama(fixedIds()).response(body, MODEL)).toEqual({
      id: 'chatcmpl-test1',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'llama3.2',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hello! How are you today?', refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 26, completion_tokens: 298, total_tokens: 324 },
    });
  });

  it('returns tool calls with JSON string arguments and length as length', () => {
    const translator = createOpenAiToOllama(fixedIds());
    const tools = translator.response(
      {
        model: 'qwen3',
        message: {
          role: 'assistant',
          content: '',
          tool_calls: [{ function: { name: 'f', arguments: { x: 1 } } }],
        },
        done: true,
        done_reason: 'stop',
      },
      MODEL,
    ) as { choices: { message: unknown; finish_reason: string }[] };
    expect(tools.choices[0]).toMatchObject({
      message: {
        content: null,
        tool_calls: [{ id: 'call_test1', type: 'function', function: { name: 'f', arguments: '{"x":1}' } }],
      },
      finish_reason: 'tool_calls',
    });
    const cut = translator.response(
      { message: { content: 'Once' }, done: true, done_reason: 'length' },
      MODEL,
    ) as {
      choices: { finish_reason: string }[];
    };
    expect(cut.choices[0]?.finish_reason).toBe('length');
  });

  it('turns an embed answer into an embeddings list with usage', () => {
    const body: unknown = JSON.parse(fixture('embed.json').toString());
    expect(openaiToOllama.response(body, MODEL)).toEqual({
      object: 'list',
      data: [{ object: 'embedding', index: 0, embedding: [0.010071029, -0.0017594862, 0.05007221] }],
      model: 'all-minilm',
      usage: { prompt_tokens: 8, total_tokens: 8 },
    });
  });

  it.each([
    [404, { error: "model 'nope' not found" }, 'not_found_error', "model 'nope' not found"],
    [400, JSON.parse(fixture('error.json').toString()) as unknown, 'invalid_request_error', undefined],
    [429, { error: 'server busy' }, 'rate_limit_error', 'server busy'],
    [500, 'upstream crashed\n', 'api_error', 'upstream crashed'],
    [502, '', 'api_error', 'Ollama returned HTTP 502'],
  ])('maps a %i error into OpenAI shape', (status, body, type, message) => {
    const out = openaiToOllama.error(status, body) as { error: Record<string, unknown> };
    expect(out.error).toMatchObject({ type, param: null, code: null });
    if (message) expect(out.error.message).toBe(message);
    else expect(typeof out.error.message).toBe('string');
  });
});

describe('openai-ollama stream', () => {
  const chunk = (delta: unknown, finish: string | null = null, model = 'llama3.2') =>
    `data: ${JSON.stringify({
      id: 'chatcmpl-test1',
      object: 'chat.completion.chunk',
      created: 1_700_000_000,
      model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    })}\n\n`;

  it('turns the recorded NDJSON stream into chunks, usage, then [DONE]', () => {
    const out = translateStream(
      createOpenAiToOllama(fixedIds()).stream({ ...MODEL, includeUsage: true }),
      'ndjson',
      fixture('chat-stream.ndjson'),
    );
    const usage = {
      id: 'chatcmpl-test1',
      object: 'chat.completion.chunk',
      created: 1_700_000_000,
      model: 'llama3.2',
      choices: [],
      usage: { prompt_tokens: 26, completion_tokens: 282, total_tokens: 308 },
    };
    expect(out).toBe(
      chunk({ role: 'assistant', content: '' }) +
        ['The', ' sky', ' is', ' blue', '.'].map((content) => chunk({ content })).join('') +
        chunk({}, 'stop') +
        `data: ${JSON.stringify(usage)}\n\n` +
        'data: [DONE]\n\n',
    );
  });

  it('streams tool calls with running indexes and finishes with tool_calls', () => {
    const out = translateStream(
      createOpenAiToOllama(fixedIds()).stream({ ...MODEL, includeUsage: false }),
      'ndjson',
      fixture('chat-stream-tools.ndjson'),
    );
    expect(out).toBe(
      chunk({ role: 'assistant', content: '' }, null, 'qwen3') +
        chunk(
          {
            tool_calls: [
              {
                index: 0,
                id: 'call_test1',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
              },
            ],
          },
          null,
          'qwen3',
        ) +
        chunk(
          {
            tool_calls: [
              {
                index: 1,
                id: 'call_ollama7',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"city":"Zürich"}' },
              },
            ],
          },
          null,
          'qwen3',
        ) +
        chunk({}, 'tool_calls', 'qwen3') +
        'data: [DONE]\n\n',
    );
  });

  it('passes an error line on as an OpenAI error object, and ends the stream there', () => {
    const out = translateStream(
      createOpenAiToOllama(fixedIds()).stream({ ...MODEL, includeUsage: true }),
      'ndjson',
      fixture('chat-stream-error.ndjson'),
    );
    const events = sseEvents(out);
    expect(events[3]).toEqual({
      error: {
        message: 'an error was encountered while running the model: unexpected EOF',
        type: 'api_error',
        param: null,
        code: null,
      },
    });
    expect(events).toHaveLength(4);
    expect(out).not.toContain('[DONE]');
  });

  it.each(['chat-stream.ndjson', 'chat-stream-tools.ndjson', 'chat-stream-error.ndjson'])(
    'gives the same output for %s however the bytes are split',
    (name) => {
      const bytes = fixture(name);
      const run = (cuts: number[]) =>
        translateStream(
          createOpenAiToOllama(fixedIds()).stream({ ...MODEL, includeUsage: true }),
          'ndjson',
          bytes,
          cuts,
        );
      const whole = run([]);
      fc.assert(
        fc.property(
          fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }),
          (cuts) => {
            expect(run(cuts.sort((a, b) => a - b))).toBe(whole);
          },
        ),
        { numRuns: 200 },
      );
    },
  );
});

describe('openai-ollama through the openai SDK', () => {
  it('streams tool calls, finish reason and usage to client.chat.completions.create', async () => {
    const body = translateStream(
      openaiToOllama.stream({ ...MODEL, includeUsage: true }),
      'ndjson',
      fixture('chat-stream-tools.ndjson'),
    );
    const { client, close } = await cannedServer({ status: 200, body, contentType: SSE_TYPE });
    try {
      const stream = await client.chat.completions.create({
        model: 'qwen3',
        messages: [{ role: 'user', content: 'Weather?' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const calls: { name?: string; arguments?: string }[] = [];
      let finish: string | null = null;
      let usage: unknown;
      for await (const chunk of stream) {
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices[0];
        if (!choice) continue;
        for (const call of choice.delta.tool_calls ?? [])
          calls[call.index] = { name: call.function?.name, arguments: call.function?.arguments };
        finish = choice.finish_reason ?? finish;
      }
      expect(calls.map((c) => [c.name, JSON.parse(c.arguments ?? '') as unknown])).toEqual([
        ['get_weather', { city: 'Paris' }],
        ['get_weather', { city: 'Zürich' }],
      ]);
      expect(finish).toBe('tool_calls');
      expect(usage).toEqual({ prompt_tokens: 140, completion_tokens: 35, total_tokens: 175 });
    } finally {
      await close();
    }
  });

  it('raises an SDK error for a stream that ended before its done line', async () => {
    const lines = fixture('chat-stream.ndjson').toString().trim().split('\n');
    expect(lines.at(-1)).toContain('"done":true');
    const body = translateStream(
      openaiToOllama.stream({ ...MODEL, includeUsage: true }),
      'ndjson',
      Buffer.from(lines.slice(0, -2).join('\n') + '\n'),
    );
    expect(body).not.toContain('[DONE]');
    const { client, close } = await cannedServer({ status: 200, body, contentType: SSE_TYPE });
    try {
      const stream = await client.chat.completions.create({
        model: 'l',
        messages: [{ role: 'user', content: 'Hi' }],
        stream: true,
      });
      let content = '';
      const read = async () => {
        for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? '';
      };
      await expect(read()).rejects.toThrow('the upstream stream ended before the message was complete');
      expect(content).not.toBe('');
    } finally {
      await close();
    }
  });

  it('streams text and surfaces a mid-stream error as an SDK error', async () => {
    const text = translateStream(
      openaiToOllama.stream({ ...MODEL, includeUsage: false }),
      'ndjson',
      fixture('chat-stream.ndjson'),
    );
    const ok = await cannedServer({ status: 200, body: text, contentType: SSE_TYPE });
    try {
      const stream = await ok.client.chat.completions.create({
        model: 'l',
        messages: [{ role: 'user', content: 'Hi' }],
        stream: true,
      });
      let content = '';
      for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? '';
      expect(content).toBe('The sky is blue.');
    } finally {
      await ok.close();
    }
    const broken = translateStream(
      openaiToOllama.stream({ ...MODEL, includeUsage: false }),
      'ndjson',
      fixture('chat-stream-error.ndjson'),
    );
    const failing = await cannedServer({ status: 200, body: broken, contentType: SSE_TYPE });
    try {
      const stream = await failing.client.chat.completions.create({
        model: 'l',
        messages: [{ role: 'user', content: 'Hi' }],
        stream: true,
      });
      await expect(
        (async () => {
          for await (const _chunk of stream) void _chunk;
        })(),
      ).rejects.toThrow(/unexpected EOF/);
    } finally {
      await failing.close();
    }
  });

  it('reads a non-stream completion and float embeddings', async () => {
    const completion = openaiToOllama.response(JSON.parse(fixture('chat.json').toString()), MODEL);
    const chat = await cannedServer({
      status: 200,
      body: JSON.stringify(completion),
      contentType: JSON_TYPE,
    });
    try {
      const res = await chat.client.chat.completions.create({
        model: 'l',
        messages: [{ role: 'user', content: 'Hi' }],
      });
      expect(res.choices[0]?.message.content).toBe('Hello! How are you today?');
      expect(res.usage).toEqual({ prompt_tokens: 26, completion_tokens: 298, total_tokens: 324 });
    } finally {
      await chat.close();
    }
    const embeddings = openaiToOllama.response(JSON.parse(fixture('embed.json').toString()), MODEL);
    const embed = await cannedServer({
      status: 200,
      body: JSON.stringify(embeddings),
      contentType: JSON_TYPE,
    });
    try {
      const res = await embed.client.embeddings.create({ model: 'e', input: 'hi', encoding_format: 'float' });
      expect(res.data[0]?.embedding).toEqual([0.010071029, -0.0017594862, 0.05007221]);
      expect(res.usage.prompt_tokens).toBe(8);
    } finally {
      await embed.close();
    }
  });
});
