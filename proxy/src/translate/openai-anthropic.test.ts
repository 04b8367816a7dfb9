import fc from 'fast-check';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../../test/dialects/fixture-cases.js';
import { startFakeUpstream, type FakeUpstream } from '../../test/helpers/fake-upstream.js';
import { dataOf, translateStream } from '../../test/helpers/translate-stream.js';
import type { JsonBody } from '../dialects/dialect.js';
import { createOpenaiToAnthropic, openaiToAnthropic } from './openai-anthropic.js';
import { TranslationError } from './translator.js';

const NOW_S = 1_764_400_000;
const translator = createOpenaiToAnthropic(() => NOW_S * 1000 + 123);
const OPTIONS = { model: 'claude-sonnet-4-5' };

function request(body: JsonBody) {
  return translator.request('chat.completions', { model: 'gpt-4o', ...body }, OPTIONS);
}

const HELLO = [{ role: 'user', content: 'Hello' }];

/** An Anthropic stream with text, two tool calls and cache usage. */
const TOOLS_STREAM = fixture('anthropic/messages-stream-tools.sse');

describe('OpenAI client to Anthropic upstream: requests', () => {
  it('sends a chat request to /v1/messages with the routed model and a default max_tokens', () => {
    const out = request({ messages: HELLO });
    expect(out).toEqual({
      path: '/v1/messages',
      query: '',
      stream: false,
      body: { model: 'claude-sonnet-4-5', max_tokens: 4096, messages: [{ role: 'user', content: 'Hello' }] },
    });
  });

  it('moves system and developer messages into the top-level system, in order', () => {
    const out = request({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'developer', content: [{ type: 'text', text: 'Answer in French.' }] },
        { role: 'user', content: 'Hello', name: 'ann' },
      ],
    });
    expect(out.body.system).toEqual([
      { type: 'text', text: 'Be brief.' },
      { type: 'text', text: 'Answer in French.' },
    ]);
    expect(out.body.messages).toEqual([{ role: 'user', content: 'Hello' }]);
  });

  it('maps the caps (the smaller wins), sampling, stop, stream, user and json_schema', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false };
    const out = request({
      messages: HELLO,
      max_tokens: 500,
      max_completion_tokens: 300,
      temperature: 0.2,
      top_p: 0.9,
      stop: 'END',
      stream: true,
      stream_options: { include_usage: true },
      user: 'user-42',
      seed: 7,
      response_format: { type: 'json_schema', json_schema: { name: 'r', schema, strict: true } },
    });
    expect(out.stream).toBe(true);
    expect(out.body).toEqual({
      model: 'claude-sonnet-4-5',
      max_tokens: 300,
      messages: HELLO,
      temperature: 0.2,
      top_p: 0.9,
      stop_sequences: ['END'],
      stream: true,
      metadata: { user_id: 'user-42' },
      output_config: { format: { type: 'json_schema', schema } },
    });
    expect(request({ messages: HELLO, stop: ['a', 'b'] }).body.stop_sequences).toEqual(['a', 'b']);
  });

  it('turns data: URLs into base64 image sources and http URLs into url sources', () => {
    const out = request({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Compare' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'high' } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
          ],
        },
      ],
    });
    expect(out.body.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Compare' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
        ],
      },
    ]);
  });

  it('names JPEG by its registered type and turns an inline PDF file part into a document block', () => {
    const out = request({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url: 'data:image/jpg;base64,/9j/4AAQ' } },
            { type: 'file', file: { filename: 'a.pdf', file_data: 'data:application/pdf;base64,JVBERi0x' } },
          ],
        },
      ],
    });
    expect(out.body.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/4AAQ' } },
          { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0x' } },
        ],
      },
    ]);
  });

  it('maps tools, with input_schema and strict', () => {
    const parameters = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    const out = request({
      messages: HELLO,
      tools: [
        {
          type: 'function',
          function: { name: 'get_weather', description: 'Weather', parameters, strict: true },
        },
        { type: 'function', function: { name: 'now' } },
      ],
    });
    expect(out.body.tools).toEqual([
      { name: 'get_weather', description: 'Weather', input_schema: parameters, strict: true },
      { name: 'now', input_schema: { type: 'object', properties: {} } },
    ]);
  });

  it.each([
    ['auto', undefined, { type: 'auto' }],
    ['none', undefined, { type: 'none' }],
    ['required', undefined, { type: 'any' }],
    [{ type: 'function', function: { name: 'now' } }, undefined, { type: 'tool', name: 'now' }],
    ['required', false, { type: 'any', disable_parallel_tool_use: true }],
    [undefined, false, { type: 'auto', disable_parallel_tool_use: true }],
  ])('maps tool_choice %j (parallel_tool_calls %j)', (choice, parallel, expected) => {
    const tools = [{ type: 'function', function: { name: 'now' } }];
    const out = request({ messages: HELLO, tools, tool_choice: choice, parallel_tool_calls: parallel });
    expect(out.body.tool_choice).toEqual(expected);
  });

  it('turns tool calls into tool_use blocks and merges consecutive tool results into one user message', () => {
    const out = request({
      messages: [
        { role: 'user', content: 'Weather in Paris and Oslo?' },
        {
          role: 'assistant',
          content: 'Checking.',
          tool_calls: [
            {
              id: 'call_1',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
            },
            {
              id: 'call_2',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"city":"Oslo"}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '18C' },
        { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: '9C' }] },
        { role: 'user', content: 'Thanks' },
      ],
    });
    expect(out.body.messages).toEqual([
      { role: 'user', content: 'Weather in Paris and Oslo?' },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } },
          { type: 'tool_use', id: 'call_2', name: 'get_weather', input: { city: 'Oslo' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'call_1', content: '18C' },
          { type: 'tool_result', tool_use_id: 'call_2', content: [{ type: 'text', text: '9C' }] },
        ],
      },
      { role: 'user', content: 'Thanks' },
    ]);
  });

  it.each([
    ['n', { n: 2 }],
    ['logprobs', { logprobs: true }],
    ['top_logprobs', { top_logprobs: 3 }],
    ['logit_bias', { logit_bias: { '50256': -100 } }],
    ['frequency_penalty', { frequency_penalty: 0.5 }],
    ['presence_penalty', { presence_penalty: 0.5 }],
    ['audio', { audio: { voice: 'alloy', format: 'mp3' } }],
    ['modalities', { modalities: ['text', 'audio'] }],
    ['prediction', { prediction: { type: 'content', content: 'x' } }],
    ['reasoning_effort', { reasoning_effort: 'high' }],
    ['web_search_options', { web_search_options: {} }],
    ['functions', { functions: [{ name: 'f' }] }],
    ['service_tier', { service_tier: 'flex' }],
    ['response_format', { response_format: { type: 'json_object' } }],
    ['temperature', { temperature: 1.5 }],
    ['max_tokens', { max_tokens: 0 }],
    ['made_up_field', { made_up_field: 1 }],
    ['tools[0].type', { tools: [{ type: 'custom', custom: { name: 'x' } }] }],
    ['messages[0].content[0].type', { messages: [{ role: 'user', content: [{ type: 'input_audio' }] }] }],
    ['messages[0].role', { messages: [{ role: 'function', name: 'f', content: 'x' }] }],
    [
      'messages[0].content[0].image_url.url',
      {
        messages: [
          {
            role: 'user',
            content: [{ type: 'image_url', image_url: { url: 'data:image/bmp;base64,Qk0=' } }],
          },
        ],
      },
    ],
    [
      'messages[0].content[0].file',
      { messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: 'file-abc' } }] }] },
    ],
    ['messages[0].audio', { messages: [{ role: 'assistant', content: null, audio: { id: 'a' } }] }],
    [
      'messages[0].tool_calls[0].function.arguments',
      {
        messages: [
          {
            role: 'assistant',
            tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{bad' } }],
          },
        ],
      },
    ],
    [
      'messages[0].content[0].image_url.url',
      { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'file:///x.png' } }] }] },
    ],
  ])('refuses %s, naming it', (field, extra) => {
    const attempt = () => request({ messages: HELLO, ...extra });
    expect(attempt).toThrow(TranslationError);
    expect(attempt).toThrow(field);
  });

  it('says why n above 1 is refused', () => {
    expect(() => request({ messages: HELLO, n: 3 })).toThrow(
      'field "n" cannot be sent to an Anthropic upstream: Anthropic answers with exactly one choice',
    );
  });

  it('accepts the harmless defaults of refused fields', () => {
    const out = request({
      messages: HELLO,
      n: 1,
      logprobs: false,
      frequency_penalty: 0,
      modalities: ['text'],
      store: false,
    });
    expect(out.body).toEqual({ model: 'claude-sonnet-4-5', max_tokens: 4096, messages: HELLO });
  });

  it.each(['embeddings', 'completions', 'responses', 'models'])(
    'refuses the %s endpoint, naming it',
    (endpoint) => {
      const attempt = () => openaiToAnthropic.request(endpoint, { model: 'x', input: 'hi' }, OPTIONS);
      expect(attempt).toThrow(TranslationError);
      expect(attempt).toThrow(`"${endpoint}"`);
    },
  );
});

describe('OpenAI client to Anthropic upstream: field types', () => {
  const TOOL = { type: 'function', function: { name: 'now', parameters: { type: 'object' } } };

  it.each([
    ['model', { name: 'gpt-4o' }],
    ['messages', 'hi'],
    ['messages', { role: 'user', content: 'hi' }],
    ['messages', [['hi']]],
    ['max_tokens', '100'],
    ['max_tokens', 100.5],
    ['max_completion_tokens', [100]],
    ['temperature', 'hot'],
    ['temperature', { value: 0.5 }],
    ['top_p', {}],
    ['top_p', false],
    ['stop', 5],
    ['stop', { 0: 'END' }],
    ['stop', ['END', 5]],
    ['stop', [['END']]],
    ['stream', 'yes'],
    ['stream_options', 'include_usage'],
    ['stream_options.include_usage', { include_usage: 'yes' }],
    ['stream_options.include_obfuscation', { include_obfuscation: 0 }],
    ['tools', 'x'],
    ['tools', TOOL],
    ['tools', [5]],
    ['tool_choice', 'any'],
    ['tool_choice', 5],
    ['tool_choice', ['auto']],
    ['parallel_tool_calls', 'false'],
    ['user', 42],
    ['safety_identifier', { id: 'u' }],
    ['response_format', 'json_object'],
    ['response_format', [{ type: 'json_object' }]],
    ['n', '1'],
    ['n', 1.5],
    ['store', 'yes'],
    ['metadata', ['a']],
    ['prompt_cache_key', 7],
    ['prompt_cache_retention', 24],
    ['seed', 'lucky'],
    ['seed', 0.5],
    ['messages[0].content', [{ role: 'user', content: 5 }]],
    ['messages[0].content', [{ role: 'user', content: ['hi'] }]],
    ['messages[0].name', [{ role: 'user', content: 'hi', name: 5 }]],
    ['messages[0].tool_calls', [{ role: 'assistant', content: 'x', tool_calls: 'call_1' }]],
    ['messages[0].refusal', [{ role: 'assistant', content: null, refusal: true }]],
    ['messages[0].tool_call_id', [{ role: 'tool', content: 'x', tool_call_id: 7 }]],
  ])('refuses %s = %j as a type error naming it', (field, value) => {
    // A nested field's value is its whole enclosing object (or messages list).
    const top = field.split(/[.[]/)[0] as string;
    const attempt = () => request({ messages: HELLO, tools: [TOOL], [top]: value });
    expect(attempt).toThrow(TranslationError);
    expect(attempt).toThrow(`field "${field}" must be`);
  });

  it.each([
    ['temperature', 1],
    ['temperature', 0],
    ['top_p', 1],
    ['max_tokens', 1e15],
    ['max_completion_tokens', 1],
    ['stop', 'END'],
    ['stop', ''],
    ['stop', []],
    ['stop', ['a', 'b', 'c', 'd']],
    ['stream', false],
    ['stream_options', {}],
    ['stream_options', { include_usage: false, include_obfuscation: true }],
    ['tools', []],
    ['tool_choice', 'none'],
    ['tool_choice', 'auto'],
    ['tool_choice', 'required'],
    ['tool_choice', { type: 'function', function: { name: 'now' } }],
    ['parallel_tool_calls', true],
    ['parallel_tool_calls', false],
    ['user', ''],
    ['response_format', { type: 'text' }],
    ['n', 1],
    ['store', true],
    ['metadata', { team: 'a' }],
    ['prompt_cache_key', 'k'],
    ['prompt_cache_retention', '24h'],
    ['seed', -7],
    ['seed', 2 ** 53],
    ['messages', [{ role: 'assistant', content: null, tool_calls: [] }]],
    ['messages', [{ role: 'user', content: [{ type: 'text', text: 'hi' }], name: null }]],
    ['top_p', null],
    ['stop', null],
  ])('accepts %s = %j', (field, value) => {
    expect(() => request({ messages: HELLO, tools: [TOOL], [field]: value })).not.toThrow();
  });
});

describe('OpenAI client to Anthropic upstream: responses and errors', () => {
  it('answers a chat.completion with the served model, upstream id and total prompt tokens', () => {
    const body = JSON.parse(fixture('anthropic/messages.json').toString());
    expect(translator.response(body, OPTIONS)).toEqual({
      id: 'msg_013Zva2CMHLNnXjNJJKqJ2EF',
      object: 'chat.completion',
      created: NOW_S,
      model: 'claude-sonnet-4-5-20250929',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hi! My name is Claude.', refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: {
        prompt_tokens: 3312,
        completion_tokens: 80,
        total_tokens: 3392,
        prompt_tokens_details: { cached_tokens: 3000 },
      },
    });
  });

  it('turns tool_use blocks into tool_calls with JSON arguments', () => {
    const out = translator.response(
      {
        id: 'msg_1',
        model: 'claude-x',
        content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }],
        stop_reason: 'tool_use',
        usage: { input_tokens: 10, output_tokens: 5 },
      },
      OPTIONS,
    ) as { choices: { message: unknown; finish_reason: string }[] };
    expect(out.choices[0]).toMatchObject({
      message: {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: 'toolu_1',
            type: 'function',
            function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
          },
        ],
      },
      finish_reason: 'tool_calls',
    });
  });

  it.each([
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['max_tokens', 'length'],
    ['tool_use', 'tool_calls'],
    ['refusal', 'content_filter'],
  ])('maps stop_reason %s to finish_reason %s', (stop, finish) => {
    const out = translator.response({ content: [], stop_reason: stop }, OPTIONS) as {
      choices: { finish_reason: string }[];
    };
    expect(out.choices[0]?.finish_reason).toBe(finish);
  });

  it.each([
    [529, 'overloaded_error', 'server_error'],
    [429, 'rate_limit_error', 'rate_limit_error'],
    [401, 'authentication_error', 'authentication_error'],
    [403, 'permission_error', 'permission_error'],
    [404, 'not_found_error', 'not_found_error'],
    [400, 'invalid_request_error', 'invalid_request_error'],
    [500, 'api_error', 'server_error'],
  ])('maps a %i %s error body to OpenAI type %s', (status, type, openaiType) => {
    const out = translator.error(status, { type: 'error', error: { type, message: 'why' }, request_id: 'r' });
    expect(out).toEqual({
      error: { message: 'why', type: openaiType, param: null, code: expect.any(String) },
    });
  });

  it('keeps the message of a non-JSON error body, and says something for an empty one', () => {
    expect(translator.error(502, '<html>Bad gateway</html>')).toEqual({
      error: { message: '<html>Bad gateway</html>', type: 'server_error', param: null, code: 'api_error' },
    });
    const empty = translator.error(503, '') as { error: { message: string; type: string } };
    expect(empty.error.message).toContain('503');
    expect(empty.error.type).toBe('server_error');
  });
});

describe('OpenAI client to Anthropic upstream: streams', () => {
  const textStream = fixture('anthropic/messages-stream.sse');

  it('turns the recorded text stream into OpenAI chunks, usage and [DONE]', () => {
    const out = translateStream(translator.stream({ ...OPTIONS, includeUsage: true }), textStream);
    const head = {
      id: 'msg_01XFDUDYJgAACzvnptvVoYEL',
      object: 'chat.completion.chunk',
      created: NOW_S,
      model: 'claude-sonnet-4-5-20250929',
    };
    const delta = (d: object, finish: string | null = null) => ({
      ...head,
      choices: [{ index: 0, delta: d, logprobs: null, finish_reason: finish }],
    });
    expect(dataOf(out)).toEqual([
      delta({ role: 'assistant', content: '' }),
      delta({ content: 'Hello' }),
      delta({ content: '! How can I' }),
      delta({ content: ' help you today?' }),
      delta({}, 'stop'),
      {
        ...head,
        choices: [],
        usage: {
          prompt_tokens: 3312,
          completion_tokens: 15,
          total_tokens: 3327,
          prompt_tokens_details: { cached_tokens: 3000 },
        },
      },
      '[DONE]',
    ]);
    expect(out.endsWith('}\n\ndata: [DONE]\n\n')).toBe(true);
    expect(out.split('\n\n').every((event) => event === '' || /^data: [^\n]+$/.test(event))).toBe(true);
  });

  it('reads an upstream with CRLF line endings the same way', () => {
    const crlf = Buffer.from(textStream.toString().replaceAll('\n', '\r\n'));
    const stream = () => translator.stream({ ...OPTIONS, includeUsage: true });
    expect(translateStream(stream(), crlf)).toBe(translateStream(stream(), textStream));
  });

  it('sends no usage chunk when the client did not ask for one', () => {
    const out = translateStream(translator.stream({ ...OPTIONS, includeUsage: false }), textStream);
    const data = dataOf(out);
    expect(data.at(-1)).toBe('[DONE]');
    expect(data.some((d) => typeof d === 'object' && d !== null && 'usage' in d)).toBe(false);
  });

  it('streams tool calls as an id and name, then argument fragments, skipping thinking', () => {
    const out = translateStream(
      translator.stream({ ...OPTIONS, includeUsage: false }),
      fixture('anthropic/messages-stream-thinking.sse'),
    );
    const deltas = dataOf(out)
      .slice(0, -1)
      .map((d) => (d as { choices: { delta: unknown; finish_reason: unknown }[] }).choices[0]);
    expect(deltas).toEqual([
      { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
      {
        index: 0,
        delta: {
          tool_calls: [
            {
              index: 0,
              id: 'toolu_01T1x1fJ34qAmk2tNTrN7Up6',
              type: 'function',
              function: { name: 'calculator', arguments: '' },
            },
          ],
        },
        logprobs: null,
        finish_reason: null,
      },
      {
        index: 0,
        delta: { tool_calls: [{ index: 0, function: { arguments: '{"expr": "27*453"}' } }] },
        logprobs: null,
        finish_reason: null,
      },
      { index: 0, delta: {}, logprobs: null, finish_reason: 'tool_calls' },
    ]);
  });

  it('turns a mid-stream error event into an OpenAI error event and ends there', () => {
    const out = translateStream(
      translator.stream({ ...OPTIONS, includeUsage: true }),
      fixture('anthropic/messages-stream-error.sse'),
    );
    const data = dataOf(out);
    expect(data.at(-1)).toEqual({
      error: { message: 'Overloaded', type: 'server_error', param: null, code: 'overloaded_error' },
    });
    expect(out).not.toContain('[DONE]');
  });

  it('reports a stream cut before its stop reason as an error, not a clean end', () => {
    const cut = textStream.subarray(0, textStream.indexOf('event: message_delta'));
    const data = dataOf(translateStream(translator.stream({ ...OPTIONS, includeUsage: true }), cut));
    expect(data.at(-1)).toMatchObject({ error: { type: 'server_error' } });
  });

  it.each([
    ['text', textStream],
    ['tools', TOOLS_STREAM],
    ['thinking', fixture('anthropic/messages-stream-thinking.sse')],
  ])('writes the same bytes whatever the split points of the %s stream', (_name, bytes) => {
    const whole = translateStream(translator.stream({ ...OPTIONS, includeUsage: true }), bytes);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 12 }), (cuts) => {
        expect(translateStream(translator.stream({ ...OPTIONS, includeUsage: true }), bytes, cuts)).toBe(
          whole,
        );
      }),
      { numRuns: 150 },
    );
  });
});

describe('OpenAI client to Anthropic upstream: the official openai SDK reads the translation', () => {
  let upstream: FakeUpstream;
  beforeAll(async () => {
    upstream = await startFakeUpstream();
  });
  afterAll(() => upstream.close());
  const client = () => new OpenAI({ apiKey: 'sk-test', baseURL: `${upstream.url}/v1`, maxRetries: 0 });

  it('streams text, tool calls with parseable arguments, the finish reason and usage', async () => {
    const stream = translator.stream({ ...OPTIONS, includeUsage: true });
    upstream.reply({ kind: 'stream', chunks: [translateStream(stream, TOOLS_STREAM)] });
    const chunks = await client().chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Weather?' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = '';
    const calls: { id: string; name: string; args: string }[] = [];
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of chunks) {
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      content += choice.delta.content ?? '';
      for (const call of choice.delta.tool_calls ?? []) {
        calls[call.index] ??= { id: '', name: '', args: '' };
        const entry = calls[call.index]!;
        entry.id += call.id ?? '';
        entry.name += call.function?.name ?? '';
        entry.args += call.function?.arguments ?? '';
      }
      finish = choice.finish_reason ?? finish;
    }
    expect(content).toBe('Checking both.');
    expect(calls.map((c) => ({ ...c, args: JSON.parse(c.args) }))).toEqual([
      { id: 'toolu_A', name: 'get_weather', args: { city: 'Paris' } },
      { id: 'toolu_B', name: 'get_weather', args: { city: 'Oslo' } },
    ]);
    expect(finish).toBe('tool_calls');
    expect(usage).toMatchObject({
      prompt_tokens: 500,
      completion_tokens: 57,
      total_tokens: 557,
      prompt_tokens_details: { cached_tokens: 100 },
    });
  });

  it('accumulates the same answer through the SDK stream helper', async () => {
    upstream.reply({
      kind: 'stream',
      chunks: [translateStream(translator.stream({ ...OPTIONS, includeUsage: true }), TOOLS_STREAM)],
    });
    const runner = client().chat.completions.stream({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Weather?' }],
      stream_options: { include_usage: true },
    });
    const final = await runner.finalChatCompletion();
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    expect(
      final.choices[0]?.message.tool_calls?.map(
        (c) => c.type === 'function' && JSON.parse(c.function.arguments),
      ),
    ).toEqual([{ city: 'Paris' }, { city: 'Oslo' }]);
    expect(final.usage?.completion_tokens).toBe(57);
  });

  it('gives a tool call without arguments "{}", which the SDK parses, and leaves fragments whole', async () => {
    // Anthropic streams no input_json_delta (or an empty one) for a tool without input.
    const events = [
      [
        'message_start',
        {
          type: 'message_start',
          message: { id: 'msg_1', model: 'claude', usage: { input_tokens: 9, output_tokens: 1 } },
        },
      ],
      [
        'content_block_start',
        {
          type: 'content_block_start',
          index: 0,
          content_block: { type: 'tool_use', id: 'toolu_now', name: 'get_time', input: {} },
        },
      ],
      [
        'content_block_delta',
        { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '' } },
      ],
      ['content_block_stop', { type: 'content_block_stop', index: 0 }],
      [
        'content_block_start',
        {
          type: 'content_block_start',
          index: 1,
          content_block: { type: 'tool_use', id: 'toolu_w', name: 'get_weather', input: {} },
        },
      ],
      [
        'content_block_delta',
        {
          type: 'content_block_delta',
          index: 1,
          delta: { type: 'input_json_delta', partial_json: '{"city":' },
        },
      ],
      [
        'content_block_delta',
        {
          type: 'content_block_delta',
          index: 1,
          delta: { type: 'input_json_delta', partial_json: '"Oslo"}' },
        },
      ],
      ['content_block_stop', { type: 'content_block_stop', index: 1 }],
      [
        'content_block_start',
        {
          type: 'content_block_start',
          index: 2,
          content_block: { type: 'tool_use', id: 'toolu_r', name: 'roll', input: {} },
        },
      ],
      ['content_block_stop', { type: 'content_block_stop', index: 2 }],
      [
        'message_delta',
        { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 20 } },
      ],
      ['message_stop', { type: 'message_stop' }],
    ] as const;
    const sse = Buffer.from(events.map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join(''));
    upstream.reply({
      kind: 'stream',
      chunks: [translateStream(translator.stream({ ...OPTIONS, includeUsage: false }), sse)],
    });
    const runner = client().chat.completions.stream({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Time, weather, dice?' }],
    });
    const final = await runner.finalChatCompletion();
    const calls = final.choices[0]?.message.tool_calls ?? [];
    expect(calls.map((c) => c.type === 'function' && [c.function.name, c.function.arguments])).toEqual([
      ['get_time', '{}'],
      ['get_weather', '{"city":"Oslo"}'],
      ['roll', '{}'],
    ]);
    expect(calls.map((c) => c.type === 'function' && JSON.parse(c.function.arguments))).toEqual([
      {},
      { city: 'Oslo' },
      {},
    ]);
  });

  it('reads a non-stream answer', async () => {
    const body = JSON.parse(fixture('anthropic/messages.json').toString());
    upstream.reply({ kind: 'json', body: translator.response(body, OPTIONS) });
    const out = await client().chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Hi' }],
    });
    expect(out.choices[0]?.message.content).toBe('Hi! My name is Claude.');
    expect(out.choices[0]?.finish_reason).toBe('stop');
    expect(out.usage).toMatchObject({ prompt_tokens: 3312, completion_tokens: 80, total_tokens: 3392 });
  });

  it('raises the right SDK error for a translated error body and a mid-stream error', async () => {
    upstream.reply({
      kind: 'json',
      status: 429,
      body: translator.error(429, {
        type: 'error',
        error: { type: 'rate_limit_error', message: 'Slow down' },
      }),
    });
    await expect(
      client().chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] }),
    ).rejects.toMatchObject({
      status: 429,
      message: expect.stringContaining('Slow down'),
    });
    upstream.reply({
      kind: 'stream',
      chunks: [
        translateStream(
          translator.stream({ ...OPTIONS, includeUsage: false }),
          fixture('anthropic/messages-stream-error.sse'),
        ),
      ],
    });
    const stream = await client().chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Hi' }],
      stream: true,
    });
    await expect(async () => {
      for await (const _chunk of stream) void _chunk;
    }).rejects.toThrow('Overloaded');
  });
});
