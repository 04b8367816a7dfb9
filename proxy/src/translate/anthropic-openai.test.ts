import Anthropic from '@anthropic-ai/sdk';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../../test/dialects/fixture-cases.js';
import { startFakeUpstream, type FakeUpstream } from '../../test/helpers/fake-upstream.js';
import { translateStream } from '../../test/helpers/translate-stream.js';
import type { JsonBody } from '../dialects/dialect.js';
import { anthropicToOpenai } from './anthropic-openai.js';
import { TranslationError } from './translator.js';

const OPTIONS = { model: 'gpt-4o-mini' };
const HELLO = [{ role: 'user', content: 'Hello' }];

function request(body: JsonBody) {
  return anthropicToOpenai.request('messages', { model: 'claude-x', max_tokens: 256, ...body }, OPTIONS);
}

/** An OpenAI stream: text, then two parallel tool calls, the finish, then usage. */
const TOOLS_STREAM = fixture('openai/chat-stream-tools-usage.sse');

/** Each `event:` name with its parsed data, checking the pair agree. */
function eventsOf(sse: string): { event: string; data: Record<string, unknown> }[] {
  return sse
    .split('\n\n')
    .filter((block) => block !== '')
    .map((block) => {
      const match = /^event: ([a-z_]+)\ndata: (.+)$/.exec(block);
      if (!match) throw new Error(`bad block: ${JSON.stringify(block)}`);
      const data = JSON.parse(match[2] as string) as Record<string, unknown>;
      expect(data.type).toBe(match[1]);
      return { event: match[1] as string, data };
    });
}

describe('Anthropic client to OpenAI upstream: requests', () => {
  it('sends messages to /v1/chat/completions with the routed model and the cap as max_completion_tokens', () => {
    expect(request({ messages: HELLO })).toEqual({
      path: '/v1/chat/completions',
      query: '',
      stream: false,
      body: { model: 'gpt-4o-mini', messages: HELLO, max_completion_tokens: 256 },
    });
  });

  it('puts the system prompt first, and maps sampling, stop, user and streaming with usage', () => {
    const out = request({
      system: [
        { type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } },
        { type: 'text', text: 'Answer in French.' },
      ],
      messages: HELLO,
      temperature: 0.3,
      top_p: 0.8,
      stop_sequences: ['END'],
      metadata: { user_id: 'user-42' },
      stream: true,
      service_tier: 'auto',
      thinking: { type: 'disabled' },
    });
    expect(out.stream).toBe(true);
    expect(out.body).toEqual({
      model: 'gpt-4o-mini',
      messages: [
        {
          role: 'system',
          content: [
            { type: 'text', text: 'Be brief.' },
            { type: 'text', text: 'Answer in French.' },
          ],
        },
        ...HELLO,
      ],
      max_completion_tokens: 256,
      temperature: 0.3,
      top_p: 0.8,
      stop: ['END'],
      stream: true,
      stream_options: { include_usage: true },
      user: 'user-42',
    });
    expect(request({ system: 'Be brief.', messages: HELLO }).body.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      ...HELLO,
    ]);
  });

  it('turns base64 and url image sources into image_url parts', () => {
    const out = request({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
            { type: 'text', text: 'Compare' },
          ],
        },
      ],
    });
    expect(out.body.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
          { type: 'text', text: 'Compare' },
        ],
      },
    ]);
  });

  it('maps tools, tool_choice and disable_parallel_tool_use', () => {
    const schema = { type: 'object', properties: { city: { type: 'string' } } };
    const out = request({
      messages: HELLO,
      tools: [
        {
          name: 'get_weather',
          description: 'Weather',
          input_schema: schema,
          cache_control: { type: 'ephemeral' },
        },
      ],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
    });
    expect(out.body.tools).toEqual([
      { type: 'function', function: { name: 'get_weather', parameters: schema, description: 'Weather' } },
    ]);
    expect(out.body.tool_choice).toBe('required');
    expect(out.body.parallel_tool_calls).toBe(false);
  });

  it.each([
    [{ type: 'auto' }, 'auto'],
    [{ type: 'none' }, 'none'],
    [{ type: 'any' }, 'required'],
    [
      { type: 'tool', name: 'now' },
      { type: 'function', function: { name: 'now' } },
    ],
  ])('maps tool_choice %j', (choice, expected) => {
    const tools = [{ name: 'now', input_schema: { type: 'object' } }];
    expect(request({ messages: HELLO, tools, tool_choice: choice }).body.tool_choice).toEqual(expected);
  });

  it('turns tool_use into tool_calls and tool_result blocks into tool messages before the user text', () => {
    const out = request({
      messages: [
        { role: 'user', content: 'Weather in Paris and Oslo?' },
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'two calls', signature: 'sig' },
            { type: 'text', text: 'Checking.' },
            { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
            { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: { city: 'Oslo' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: '18C' },
            {
              type: 'tool_result',
              tool_use_id: 'toolu_2',
              content: [{ type: 'text', text: 'no data' }],
              is_error: true,
            },
            { type: 'text', text: 'Thanks' },
          ],
        },
      ],
    });
    expect(out.body.messages).toEqual([
      { role: 'user', content: 'Weather in Paris and Oslo?' },
      {
        role: 'assistant',
        content: 'Checking.',
        tool_calls: [
          {
            id: 'toolu_1',
            type: 'function',
            function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
          },
          {
            id: 'toolu_2',
            type: 'function',
            function: { name: 'get_weather', arguments: '{"city":"Oslo"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: 'toolu_1', content: '18C' },
      { role: 'tool', tool_call_id: 'toolu_2', content: 'no data' },
      { role: 'user', content: [{ type: 'text', text: 'Thanks' }] },
    ]);
  });

  it('maps a json_schema output format to a strict response_format', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false };
    const out = request({ messages: HELLO, output_config: { format: { type: 'json_schema', schema } } });
    expect(out.body.response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'output', schema, strict: true },
    });
  });

  it.each([
    ['top_k', { top_k: 5 }],
    ['thinking', { thinking: { type: 'enabled', budget_tokens: 1024 } }],
    ['output_config.effort', { output_config: { effort: 'high' } }],
    ['mcp_servers', { mcp_servers: [{ type: 'url', url: 'https://x', name: 'x' }] }],
    ['container', { container: 'c1' }],
    ['inference_geo', { inference_geo: 'eu' }],
    ['made_up_field', { made_up_field: true }],
    ['max_tokens', { max_tokens: 0 }],
    ['tools[0].type', { tools: [{ type: 'web_search_20250305', name: 'web_search' }] }],
    ['metadata.tenant', { metadata: { user_id: 'u', tenant: 't' } }],
    [
      'messages[0].content[0].type',
      { messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }] },
    ],
    [
      'messages[0].content[0].content[0].type',
      {
        messages: [
          {
            role: 'user',
            content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'image', source: {} }] }],
          },
        ],
      },
    ],
    [
      'messages[0].content[0].source',
      { messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'f' } }] }] },
    ],
  ])('refuses %s, naming it', (field, extra) => {
    const attempt = () => request({ messages: HELLO, ...extra });
    expect(attempt).toThrow(TranslationError);
    expect(attempt).toThrow(field);
  });

  it.each(['count_tokens', 'messages.other', 'models'])('refuses the %s endpoint, naming it', (endpoint) => {
    const attempt = () => anthropicToOpenai.request(endpoint, { model: 'x', messages: HELLO }, OPTIONS);
    expect(attempt).toThrow(TranslationError);
    expect(attempt).toThrow(`"${endpoint}"`);
  });
});

describe('Anthropic client to OpenAI upstream: field types', () => {
  const TOOL = { name: 'now', input_schema: { type: 'object' } };

  it.each([
    ['model', 5],
    ['max_tokens', '100'],
    ['max_tokens', 1.5],
    ['max_tokens', [100]],
    ['messages', 'hi'],
    ['messages', { role: 'user', content: 'hi' }],
    ['messages', ['hi']],
    ['system', 42],
    ['system', { type: 'text', text: 'Be brief.' }],
    ['system', ['Be brief.']],
    ['stop_sequences', 'x'],
    ['stop_sequences', { 0: 'x' }],
    ['stop_sequences', ['END', 1]],
    ['stop_sequences', ['END', null]],
    ['stream', 'yes'],
    ['stream', 1],
    ['temperature', 'hot'],
    ['temperature', [0.5]],
    ['temperature', true],
    ['top_p', {}],
    ['top_p', '0.9'],
    ['tools', 'x'],
    ['tools', TOOL],
    ['tools', ['now']],
    ['tool_choice', 'any'],
    ['tool_choice', [{ type: 'any' }]],
    ['tool_choice.type', { type: 5 }],
    ['tool_choice.name', { type: 'tool', name: ['now'] }],
    ['tool_choice.disable_parallel_tool_use', { type: 'auto', disable_parallel_tool_use: 'yes' }],
    ['metadata', 5],
    ['metadata', [{ user_id: 'u' }]],
    ['metadata.user_id', { user_id: 42 }],
    ['output_config', 'json'],
    ['output_config.format', { format: 'json_schema' }],
    ['output_format', ['json_schema']],
    ['thinking', 'disabled'],
    ['cache_control', 'ephemeral'],
    ['service_tier', 5],
    ['speed', true],
    ['diagnostics', 'on'],
  ])('refuses %s = %j as a type error naming it', (field, value) => {
    // A nested field's value is its whole control object.
    const top = field.split('.')[0] as string;
    const attempt = () => request({ messages: HELLO, tools: [TOOL], [top]: value });
    expect(attempt).toThrow(TranslationError);
    expect(attempt).toThrow(`field "${field}" must be`);
  });

  it.each([
    ['temperature', 1],
    ['temperature', 0],
    ['top_p', 1],
    ['max_tokens', 1e15],
    ['stop_sequences', []],
    ['stop_sequences', ['END', '']],
    ['system', ''],
    ['system', []],
    ['system', [{ type: 'text', text: 'Be brief.' }]],
    ['stream', false],
    ['tools', []],
    ['tool_choice', { type: 'tool', name: 'now', disable_parallel_tool_use: false }],
    ['metadata', {}],
    ['metadata', { user_id: null }],
    ['output_config', {}],
    ['output_config', { format: null }],
    ['thinking', { type: 'disabled' }],
    ['cache_control', { type: 'ephemeral', ttl: '1h' }],
    ['service_tier', 'standard_only'],
    ['speed', 'fast'],
    ['diagnostics', {}],
    ['top_p', null],
    ['stop_sequences', null],
  ])('accepts %s = %j', (field, value) => {
    expect(() => request({ messages: HELLO, tools: [TOOL], [field]: value })).not.toThrow();
  });
});

describe('Anthropic client to OpenAI upstream: responses and errors', () => {
  it('answers an Anthropic message with the served model and input without the cached part', () => {
    const body = JSON.parse(fixture('openai/chat.json').toString());
    expect(anthropicToOpenai.response(body, OPTIONS)).toEqual({
      id: 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG',
      type: 'message',
      role: 'assistant',
      model: 'gpt-4o-2024-08-06',
      content: [{ type: 'text', text: 'The image shows a wooden boardwalk.' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: {
        input_tokens: 93,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 1024,
        output_tokens: 46,
      },
    });
  });

  it('turns tool_calls into tool_use blocks with parsed input', () => {
    const out = anthropicToOpenai.response(
      {
        id: 'chatcmpl-1',
        model: 'gpt-4o',
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: null,
              tool_calls: [
                {
                  id: 'call_1',
                  type: 'function',
                  function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
                },
              ],
            },
            finish_reason: 'tool_calls',
          },
        ],
        usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
      },
      OPTIONS,
    );
    expect(out).toMatchObject({
      content: [{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }],
      stop_reason: 'tool_use',
    });
  });

  it.each([
    ['stop', 'end_turn'],
    ['length', 'max_tokens'],
    ['tool_calls', 'tool_use'],
    ['content_filter', 'refusal'],
  ])('maps finish_reason %s to stop_reason %s', (finish, stop) => {
    const body = {
      choices: [{ index: 0, message: { role: 'assistant', content: 'x' }, finish_reason: finish }],
    };
    expect(anthropicToOpenai.response(body, OPTIONS)).toMatchObject({ stop_reason: stop });
  });

  it.each([
    [400, 'invalid_request_error'],
    [401, 'authentication_error'],
    [403, 'permission_error'],
    [404, 'not_found_error'],
    [429, 'rate_limit_error'],
    [500, 'api_error'],
    [503, 'overloaded_error'],
  ])('maps a %i OpenAI error to Anthropic type %s', (status, type) => {
    const body = { error: { message: 'why', type: 'server_error', param: null, code: null } };
    expect(anthropicToOpenai.error(status, body)).toEqual({ type: 'error', error: { type, message: 'why' } });
  });

  it('keeps the text of a non-JSON error body', () => {
    expect(anthropicToOpenai.error(502, 'upstream connect error')).toEqual({
      type: 'error',
      error: { type: 'api_error', message: 'upstream connect error' },
    });
  });
});

describe('Anthropic client to OpenAI upstream: streams', () => {
  const textStream = fixture('openai/chat-stream-usage.sse');

  it('turns the recorded text stream into Anthropic events, holding message_delta for the usage', () => {
    const out = translateStream(anthropicToOpenai.stream({ ...OPTIONS, includeUsage: false }), textStream);
    const events = eventsOf(out);
    expect(events.map((e) => e.event)).toEqual([
      'message_start',
      'content_block_start',
      ...Array(9).fill('content_block_delta'),
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    expect(events[0]?.data).toEqual({
      type: 'message_start',
      message: {
        id: 'chatcmpl-B9xK2',
        type: 'message',
        role: 'assistant',
        model: 'gpt-4o-mini-2024-07-18',
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 0, output_tokens: 0 },
      },
    });
    expect(events[1]?.data).toEqual({
      type: 'content_block_start',
      index: 0,
      content_block: { type: 'text', text: '' },
    });
    expect(events[2]?.data).toEqual({
      type: 'content_block_delta',
      index: 0,
      delta: { type: 'text_delta', text: 'Hello' },
    });
    expect(events.at(-2)?.data).toEqual({
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: {
        input_tokens: 19,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
        output_tokens: 10,
      },
    });
  });

  it('numbers tool_use blocks after the text block and streams their arguments', () => {
    const events = eventsOf(
      translateStream(anthropicToOpenai.stream({ ...OPTIONS, includeUsage: false }), TOOLS_STREAM),
    );
    expect(events.slice(1, -2).map((e) => e.data)).toEqual([
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Checking both.' } },
      { type: 'content_block_stop', index: 0 },
      {
        type: 'content_block_start',
        index: 1,
        content_block: { type: 'tool_use', id: 'call_A', name: 'get_weather', input: {} },
      },
      {
        type: 'content_block_delta',
        index: 1,
        delta: { type: 'input_json_delta', partial_json: '{"city": "Par' },
      },
      { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: 'is"}' } },
      { type: 'content_block_stop', index: 1 },
      {
        type: 'content_block_start',
        index: 2,
        content_block: { type: 'tool_use', id: 'call_B', name: 'get_weather', input: {} },
      },
      {
        type: 'content_block_delta',
        index: 2,
        delta: { type: 'input_json_delta', partial_json: '{"city": "Oslo"}' },
      },
      { type: 'content_block_stop', index: 2 },
    ]);
    expect(events.at(-2)?.data).toMatchObject({
      delta: { stop_reason: 'tool_use' },
      usage: { input_tokens: 400, cache_read_input_tokens: 100, output_tokens: 57 },
    });
  });

  it('sends a refusal as text and stops with the refusal reason', () => {
    const chunk = (delta: object, finish: string | null = null) =>
      `data: ${JSON.stringify({ id: 'c', model: 'gpt-4o', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const bytes = Buffer.from(
      chunk({ role: 'assistant', refusal: '' }) +
        chunk({ refusal: 'I cannot help.' }) +
        chunk({}, 'stop') +
        'data: [DONE]\n\n',
    );
    const events = eventsOf(
      translateStream(anthropicToOpenai.stream({ ...OPTIONS, includeUsage: false }), bytes),
    );
    expect(events.map((e) => e.data)).toContainEqual({
      type: 'content_block_delta',
      index: 0,
      delta: { type: 'text_delta', text: 'I cannot help.' },
    });
    expect(events.at(-2)?.data).toMatchObject({ delta: { stop_reason: 'refusal' } });
  });

  it('closes with zero output tokens when the upstream sent no usage', () => {
    const events = eventsOf(
      translateStream(
        anthropicToOpenai.stream({ ...OPTIONS, includeUsage: false }),
        fixture('openai/chat-stream-tools-no-usage.sse'),
      ),
    );
    expect(events.at(-2)?.data).toEqual({
      type: 'message_delta',
      delta: { stop_reason: 'tool_use', stop_sequence: null },
      usage: { output_tokens: 0 },
    });
    expect(events.at(-1)?.event).toBe('message_stop');
  });

  it('turns an in-band error chunk into an error event and ends there', () => {
    const events = eventsOf(
      translateStream(
        anthropicToOpenai.stream({ ...OPTIONS, includeUsage: false }),
        fixture('openai/chat-stream-error.sse'),
      ),
    );
    expect(events.at(-1)).toEqual({
      event: 'error',
      data: {
        type: 'error',
        error: { type: 'api_error', message: 'The server had an error while processing your request.' },
      },
    });
  });

  it('reports a stream cut before its finish reason as an error', () => {
    const cut = textStream.subarray(0, textStream.indexOf('"finish_reason":"stop"') - 200);
    const events = eventsOf(
      translateStream(anthropicToOpenai.stream({ ...OPTIONS, includeUsage: false }), cut),
    );
    expect(events.at(-1)?.event).toBe('error');
  });

  it.each([
    ['text', textStream],
    ['tools', TOOLS_STREAM],
    ['reasoning', fixture('openai/chat-stream-reasoning.sse')],
  ])('writes the same bytes whatever the split points of the %s stream', (_name, bytes) => {
    const whole = translateStream(anthropicToOpenai.stream({ ...OPTIONS, includeUsage: false }), bytes);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 12 }), (cuts) => {
        expect(
          translateStream(anthropicToOpenai.stream({ ...OPTIONS, includeUsage: false }), bytes, cuts),
        ).toBe(whole);
      }),
      { numRuns: 150 },
    );
  });
});

describe('Anthropic client to OpenAI upstream: the official Anthropic SDK reads the translation', () => {
  let upstream: FakeUpstream;
  beforeAll(async () => {
    upstream = await startFakeUpstream();
  });
  afterAll(() => upstream.close());
  const client = () => new Anthropic({ apiKey: 'sk-ant-test', baseURL: upstream.url, maxRetries: 0 });
  const params = {
    model: 'claude-x',
    max_tokens: 256,
    messages: [{ role: 'user' as const, content: 'Weather?' }],
  };

  it('streams text and tool calls into a final message with parsed input, stop reason and usage', async () => {
    const stream = anthropicToOpenai.stream({ ...OPTIONS, includeUsage: false });
    upstream.reply({ kind: 'stream', chunks: [translateStream(stream, TOOLS_STREAM)] });
    const runner = client().messages.stream(params);
    let text = '';
    runner.on('text', (delta) => (text += delta));
    const final = await runner.finalMessage();
    expect(text).toBe('Checking both.');
    expect(final.content).toEqual([
      { type: 'text', text: 'Checking both.' },
      { type: 'tool_use', id: 'call_A', name: 'get_weather', input: { city: 'Paris' } },
      { type: 'tool_use', id: 'call_B', name: 'get_weather', input: { city: 'Oslo' } },
    ]);
    expect(final.stop_reason).toBe('tool_use');
    expect(final.usage).toMatchObject({ input_tokens: 400, cache_read_input_tokens: 100, output_tokens: 57 });
  });

  it('reads a non-stream answer', async () => {
    const body = JSON.parse(fixture('openai/chat.json').toString());
    upstream.reply({ kind: 'json', body: anthropicToOpenai.response(body, OPTIONS) });
    const message = await client().messages.create(params);
    expect(message.content).toEqual([{ type: 'text', text: 'The image shows a wooden boardwalk.' }]);
    expect(message.stop_reason).toBe('end_turn');
    expect(message.usage).toMatchObject({
      input_tokens: 93,
      cache_read_input_tokens: 1024,
      output_tokens: 46,
    });
  });

  it('raises the right SDK error for a translated error body and a mid-stream error', async () => {
    const body = {
      error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' },
    };
    upstream.reply({ kind: 'json', status: 429, body: anthropicToOpenai.error(429, body) });
    await expect(client().messages.create(params)).rejects.toBeInstanceOf(Anthropic.RateLimitError);
    const stream = anthropicToOpenai.stream({ ...OPTIONS, includeUsage: false });
    upstream.reply({
      kind: 'stream',
      chunks: [translateStream(stream, fixture('openai/chat-stream-error.sse'))],
    });
    await expect(client().messages.stream(params).finalMessage()).rejects.toThrow('The server had an error');
  });
});
