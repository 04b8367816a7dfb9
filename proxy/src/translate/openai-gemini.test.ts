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
import { createOpenAiToGemini, openaiToGemini } from './openai-gemini.js';
import { TranslationError } from './translator.js';

const fixture = (name: string): Buffer =>
  readFileSync(new URL(`../../test/fixtures/gemini/${name}`, import.meta.url));
const MODEL = { model: 'gemini-2.5-flash' };
const PNG = 'iVBORw0KGgo=';

function translate(body: Record<string, unknown>, endpoint = 'chat.completions') {
  return openaiToGemini.request(endpoint, { model: 'ignored', ...body }, MODEL);
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

describe('openai-gemini request', () => {
  it('sends text to generateContent with system and developer messages as systemInstruction', () => {
    const req = translate({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'developer', content: [{ type: 'text', text: 'Use French.' }] },
        user('Hi'),
        { role: 'assistant', content: 'Salut' },
        user([{ type: 'text', text: 'Why is the sky blue?' }]),
      ],
    });
    expect(req).toEqual({
      path: '/v1beta/models/gemini-2.5-flash:generateContent',
      query: '',
      stream: false,
      body: {
        systemInstruction: { parts: [{ text: 'Be brief.' }, { text: 'Use French.' }] },
        contents: [
          { role: 'user', parts: [{ text: 'Hi' }] },
          { role: 'model', parts: [{ text: 'Salut' }] },
          { role: 'user', parts: [{ text: 'Why is the sky blue?' }] },
        ],
      },
    });
  });

  it('streams from streamGenerateContent with alt=sse and drops a models/ prefix', () => {
    const req = openaiToGemini.request(
      'chat.completions',
      { messages: [user('Hi')], stream: true, stream_options: { include_usage: true } },
      { model: 'models/gemini-2.5-pro' },
    );
    expect(req.path).toBe('/v1beta/models/gemini-2.5-pro:streamGenerateContent');
    expect(req.query).toBe('alt=sse');
    expect(req.stream).toBe(true);
  });

  it('maps stop, caps, sampling and json_object into generationConfig', () => {
    const req = translate({
      messages: [user('Hi')],
      stop: 'END',
      max_tokens: 300,
      max_completion_tokens: 200,
      temperature: 0.2,
      top_p: 0.9,
      seed: 7,
      presence_penalty: 0.5,
      frequency_penalty: 0.1,
      n: 2,
      response_format: { type: 'json_object' },
    });
    expect(req.body.generationConfig).toEqual({
      stopSequences: ['END'],
      maxOutputTokens: 200,
      temperature: 0.2,
      topP: 0.9,
      seed: 7,
      presencePenalty: 0.5,
      frequencyPenalty: 0.1,
      candidateCount: 2,
      responseMimeType: 'application/json',
    });
  });

  it('sends a json_schema format as responseJsonSchema', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false };
    const req = translate({
      messages: [user('Hi')],
      response_format: { type: 'json_schema', json_schema: { name: 'x', strict: true, schema } },
    });
    expect(req.body.generationConfig).toEqual({
      responseMimeType: 'application/json',
      responseJsonSchema: schema,
    });
  });

  it('sends data: URL images and wav audio as inlineData', () => {
    const req = translate({
      messages: [
        user([
          { type: 'text', text: 'What is this?' },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}`, detail: 'high' } },
          { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } },
        ]),
      ],
    });
    expect(req.body.contents).toEqual([
      {
        role: 'user',
        parts: [
          { text: 'What is this?' },
          { inlineData: { mimeType: 'image/png', data: PNG } },
          { inlineData: { mimeType: 'audio/wav', data: 'UklGRg==' } },
        ],
      },
    ]);
  });

  it('refuses an image link, naming image_url', () => {
    const message = refusal({
      messages: [user([{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }])],
    });
    expect(message).toContain('image_url');
  });

  it('declares function tools and maps every tool_choice', () => {
    const parameters = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    const tools = [
      {
        type: 'function',
        function: { name: 'get_weather', description: 'Weather', parameters, strict: true },
      },
    ];
    const req = translate({ messages: [user('Hi')], tools });
    expect(req.body.tools).toEqual([
      {
        functionDeclarations: [
          { name: 'get_weather', description: 'Weather', parametersJsonSchema: parameters },
        ],
      },
    ]);
    const mode = (tool_choice: unknown) =>
      translate({ messages: [user('Hi')], tools, tool_choice }).body.toolConfig;
    expect(mode('auto')).toEqual({ functionCallingConfig: { mode: 'AUTO' } });
    expect(mode('none')).toEqual({ functionCallingConfig: { mode: 'NONE' } });
    expect(mode('required')).toEqual({ functionCallingConfig: { mode: 'ANY' } });
    expect(mode({ type: 'function', function: { name: 'get_weather' } })).toEqual({
      functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_weather'] },
    });
  });

  it('replays tool calls as functionCall parts and answers them by name in one user turn', () => {
    const req = translate({
      messages: [
        user('Weather in Paris and Rome?'),
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
            { id: 'call_2', type: 'function', function: { name: 'time', arguments: '{"city":"Rome"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_2', content: '{"time":"12:00"}' },
        { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'sunny' }] },
      ],
    });
    expect(req.body.contents).toEqual([
      { role: 'user', parts: [{ text: 'Weather in Paris and Rome?' }] },
      {
        role: 'model',
        parts: [
          {
            functionCall: { name: 'weather', args: { city: 'Paris' } },
            thoughtSignature: 'skip_thought_signature_validator',
          },
          { functionCall: { name: 'time', args: { city: 'Rome' } } },
        ],
      },
      {
        role: 'user',
        parts: [
          { functionResponse: { name: 'time', response: { time: '12:00' } } },
          { functionResponse: { name: 'weather', response: { output: 'sunny' } } },
        ],
      },
    ]);
  });

  it('gives Gemini back the thought signature carried in a tool call id', () => {
    const req = translate({
      messages: [
        user('Weather?'),
        {
          role: 'assistant',
          tool_calls: [
            { id: 'gc-1__thought__c2lnLTE=', type: 'function', function: { name: 'w', arguments: '{}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'gc-1__thought__c2lnLTE=', content: 'ok' },
      ],
    });
    expect((req.body.contents as unknown[])[1]).toEqual({
      role: 'model',
      parts: [{ functionCall: { name: 'w', args: {} }, thoughtSignature: 'c2lnLTE=' }],
    });
  });

  it.each([
    ['logprobs', { logprobs: true }],
    ['top_logprobs', { top_logprobs: 3 }],
    ['logit_bias', { logit_bias: { '50256': -100 } }],
    ['audio', { audio: { voice: 'alloy', format: 'mp3' } }],
    ['modalities', { modalities: ['text', 'audio'] }],
    ['prediction', { prediction: { type: 'content', content: 'x' } }],
    ['reasoning_effort', { reasoning_effort: 'low' }],
    ['parallel_tool_calls', { parallel_tool_calls: false }],
    ['functions', { functions: [{ name: 'f' }] }],
    ['frobnicate', { frobnicate: 1 }],
    ['tool_call_id', { messages: [user('Hi'), { role: 'tool', tool_call_id: 'nope', content: 'x' }] }],
    ['file', { messages: [user([{ type: 'file', file: { file_id: 'f1' } }])] }],
    ['tools', { tools: [{ type: 'custom', custom: { name: 'x' } }] }],
  ])('refuses %s, naming it', (field, extra) => {
    expect(refusal({ messages: [user('Hi')], ...extra })).toContain(field);
  });

  it('drops harmless fields and accepts no-op values', () => {
    const req = translate({
      messages: [user('Hi')],
      user: 'u1',
      metadata: { a: 'b' },
      store: false,
      logprobs: false,
      parallel_tool_calls: true,
    });
    expect(Object.keys(req.body)).toEqual(['contents']);
  });

  it.each(['embeddings', 'completions', 'responses'])('refuses the %s endpoint, naming it', (endpoint) => {
    expect(refusal({ input: 'x' }, endpoint)).toContain(endpoint);
  });
});

describe('openai-gemini request field types', () => {
  it.each(CHAT_FIELD_REFUSALS)('refuses %s = %j as a type error naming it', (field, value) => {
    // A nested field's value is its whole enclosing object.
    const top = field.split('.')[0] as string;
    expect(refusal({ messages: [user('Hi')], tools: [TOOL], [top]: value })).toContain(
      `field "${field}" must be`,
    );
  });

  it.each([
    ...CHAT_FIELD_ACCEPTS,
    ['n', 4] as [string, unknown],
    ['tool_choice', 'required'] as [string, unknown],
  ])('accepts %s = %j', (field, value) => {
    expect(() => translate({ messages: [user('Hi')], tools: [TOOL], [field]: value })).not.toThrow();
  });
});

describe('openai-gemini response', () => {
  it('turns a GenerateContentResponse into a chat.completion with usage', () => {
    const translator = createOpenAiToGemini(fixedIds());
    const body: unknown = JSON.parse(fixture('generate.json').toString());
    expect(translator.response(body, MODEL)).toEqual({
      id: 'chatcmpl-test1',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'gemini-2.5-pro',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'AI learns patterns from data.', refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: {
        prompt_tokens: 2048,
        completion_tokens: 267,
        total_tokens: 2315,
        prompt_tokens_details: { cached_tokens: 1024 },
        completion_tokens_details: { reasoning_tokens: 40 },
      },
    });
  });

  it('returns function calls as tool_calls, hides thoughts, and keeps candidates apart', () => {
    const translator = createOpenAiToGemini(fixedIds());
    const out = translator.response(
      {
        candidates: [
          {
            index: 0,
            finishReason: 'STOP',
            content: {
              role: 'model',
              parts: [
                { text: 'thinking...', thought: true },
                { functionCall: { name: 'w', args: { city: 'Paris' } }, thoughtSignature: 'c2ln' },
              ],
            },
          },
          { index: 1, finishReason: 'MAX_TOKENS', content: { role: 'model', parts: [{ text: 'Par' }] } },
          { index: 2, finishReason: 'SAFETY' },
        ],
      },
      MODEL,
    ) as { model: string; choices: unknown[]; usage?: unknown };
    expect(out.model).toBe('gemini-2.5-flash');
    expect(out.usage).toBeUndefined();
    expect(out.choices).toEqual([
      {
        index: 0,
        message: {
          role: 'assistant',
          content: null,
          refusal: null,
          tool_calls: [
            {
              id: 'call_test1__thought__c2ln',
              type: 'function',
              function: { name: 'w', arguments: '{"city":"Paris"}' },
            },
          ],
        },
        logprobs: null,
        finish_reason: 'tool_calls',
      },
      {
        index: 1,
        message: { role: 'assistant', content: 'Par', refusal: null },
        logprobs: null,
        finish_reason: 'length',
      },
      {
        index: 2,
        message: { role: 'assistant', content: '', refusal: null },
        logprobs: null,
        finish_reason: 'content_filter',
      },
    ]);
  });

  it('answers a blocked prompt with an empty content_filter choice', () => {
    const out = openaiToGemini.response(
      { promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 9 } },
      MODEL,
    ) as { choices: { finish_reason: string }[]; usage: unknown };
    expect(out.choices.map((c) => c.finish_reason)).toEqual(['content_filter']);
    expect(out.usage).toEqual({ prompt_tokens: 9, completion_tokens: 0, total_tokens: 9 });
  });

  it.each([
    [429, JSON.parse(fixture('error.json').toString()) as unknown, 'rate_limit_error', 'RESOURCE_EXHAUSTED'],
    [
      400,
      [{ error: { code: 400, message: 'bad', status: 'INVALID_ARGUMENT' } }],
      'invalid_request_error',
      'INVALID_ARGUMENT',
    ],
    [
      401,
      { error: { code: 401, message: 'key', status: 'UNAUTHENTICATED' } },
      'authentication_error',
      'UNAUTHENTICATED',
    ],
    [
      403,
      { error: { code: 403, message: 'no', status: 'PERMISSION_DENIED' } },
      'permission_error',
      'PERMISSION_DENIED',
    ],
    [404, { error: { code: 404, message: 'gone', status: 'NOT_FOUND' } }, 'not_found_error', 'NOT_FOUND'],
    [503, '<html>Service Unavailable</html>', 'api_error', null],
  ])('maps a %i error body into OpenAI shape', (status, body, type, code) => {
    const out = openaiToGemini.error(status, body) as { error: Record<string, unknown> };
    expect(out.error.type).toBe(type);
    expect(out.error.code).toBe(code);
    expect(out.error.param).toBeNull();
    expect(typeof out.error.message).toBe('string');
    expect(out.error.message).not.toBe('');
  });

  it('names the status when the error body is empty', () => {
    expect(openaiToGemini.error(502, '')).toEqual({
      error: { message: 'Gemini returned HTTP 502', type: 'api_error', param: null, code: null },
    });
  });
});

describe('openai-gemini stream', () => {
  const chunk = (model: string, delta: unknown, finish: string | null = null) =>
    `data: ${JSON.stringify({
      id: 'chatcmpl-test1',
      object: 'chat.completion.chunk',
      created: 1_700_000_000,
      model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    })}\n\n`;

  it('turns the recorded text stream into chunks, the last usage, then [DONE]', () => {
    const out = translateStream(
      createOpenAiToGemini(fixedIds()).stream({ ...MODEL, includeUsage: true }),
      'sse',
      fixture('stream.sse'),
    );
    const m = 'gemini-2.5-flash';
    const usage = {
      id: 'chatcmpl-test1',
      object: 'chat.completion.chunk',
      created: 1_700_000_000,
      model: m,
      choices: [],
      usage: {
        prompt_tokens: 11,
        completion_tokens: 52,
        total_tokens: 63,
        completion_tokens_details: { reasoning_tokens: 40 },
      },
    };
    expect(out).toBe(
      chunk(m, { role: 'assistant', content: '' }) +
        chunk(m, { content: 'The' }) +
        chunk(m, { content: ' sky is blue because' }) +
        chunk(m, { content: ' of Rayleigh scattering.' }) +
        chunk(m, {}, 'stop') +
        `data: ${JSON.stringify(usage)}\n\n` +
        'data: [DONE]\n\n',
    );
  });

  it('leaves the usage chunk out unless the client asked for it', () => {
    const out = translateStream(
      openaiToGemini.stream({ ...MODEL, includeUsage: false }),
      'sse',
      fixture('stream.sse'),
    );
    const events = sseEvents(out);
    expect(events.at(-1)).toBe('[DONE]');
    expect(events.some((e) => typeof e === 'object' && e !== null && 'usage' in e)).toBe(false);
  });

  it('sends whole function calls as tool_calls deltas with their index', () => {
    const out = translateStream(
      createOpenAiToGemini(fixedIds()).stream({ ...MODEL, includeUsage: true }),
      'sse',
      fixture('stream-tools.sse'),
    );
    const m = 'gemini-3-flash-preview';
    const toolCalls = [
      {
        index: 0,
        id: 'call_test1__thought__c2lnLTE=',
        type: 'function',
        function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' },
      },
      {
        index: 1,
        id: 'gc-2',
        type: 'function',
        function: { name: 'get_weather', arguments: '{"city":"Zürich"}' },
      },
    ];
    const events = sseEvents(out);
    expect(events.slice(0, 4)).toEqual(
      [
        chunk(m, { role: 'assistant', content: '' }),
        chunk(m, { content: 'Let me check the weather in both cities.' }),
        chunk(m, { tool_calls: toolCalls }),
        chunk(m, {}, 'tool_calls'),
      ].map((e) => JSON.parse(e.slice(6)) as unknown),
    );
    expect(events[4]).toMatchObject({
      choices: [],
      usage: {
        prompt_tokens: 52,
        completion_tokens: 43,
        total_tokens: 95,
        prompt_tokens_details: { cached_tokens: 16 },
        completion_tokens_details: { reasoning_tokens: 12 },
      },
    });
    expect(events[5]).toBe('[DONE]');
  });

  it('passes an error event on as an OpenAI error object', () => {
    const stream = openaiToGemini.stream({ ...MODEL, includeUsage: false });
    const out = stream.push({
      event: '',
      data: '{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}',
    });
    expect(sseEvents(out)).toEqual([
      { error: { message: 'The model is overloaded.', type: 'api_error', param: null, code: 'UNAVAILABLE' } },
    ]);
  });

  it('skips events it cannot read', () => {
    const stream = openaiToGemini.stream({ ...MODEL, includeUsage: false });
    expect(stream.push({ event: '', data: 'not json' })).toBe('');
    expect(stream.push({ event: '', data: '[1,2]' })).toBe('');
  });

  it.each(['stream.sse', 'stream-tools.sse'])(
    'gives the same output for %s however the bytes are split',
    (name) => {
      const bytes = fixture(name);
      const run = (cuts: number[]) =>
        translateStream(
          createOpenAiToGemini(fixedIds()).stream({ ...MODEL, includeUsage: true }),
          'sse',
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

describe('openai-gemini through the openai SDK', () => {
  it('streams text, tool calls, finish reason and usage to client.chat.completions.create', async () => {
    const body = translateStream(
      openaiToGemini.stream({ ...MODEL, includeUsage: true }),
      'sse',
      fixture('stream-tools.sse'),
    );
    const { client, close } = await cannedServer({ status: 200, body, contentType: SSE_TYPE });
    try {
      const stream = await client.chat.completions.create({
        model: 'gemini',
        messages: [{ role: 'user', content: 'Weather?' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = '';
      const calls: { name?: string; arguments?: string; id?: string }[] = [];
      let finish: string | null = null;
      let usage: unknown;
      for await (const chunk of stream) {
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices[0];
        if (!choice) continue;
        text += choice.delta.content ?? '';
        for (const call of choice.delta.tool_calls ?? [])
          calls[call.index] = { id: call.id, name: call.function?.name, arguments: call.function?.arguments };
        finish = choice.finish_reason ?? finish;
      }
      expect(text).toBe('Let me check the weather in both cities.');
      expect(calls.map((c) => [c.name, JSON.parse(c.arguments ?? '') as unknown])).toEqual([
        ['get_weather', { city: 'Paris', unit: 'celsius' }],
        ['get_weather', { city: 'Zürich' }],
      ]);
      expect(calls[1]?.id).toBe('gc-2');
      expect(finish).toBe('tool_calls');
      expect(usage).toMatchObject({ prompt_tokens: 52, completion_tokens: 43, total_tokens: 95 });
    } finally {
      await close();
    }
  });

  it('raises an SDK error for a stream that ended before its finishReason, and for an error event', async () => {
    const whole = fixture('stream.sse').toString();
    // The upstream closed cleanly after its first event: no candidate ever had a finishReason.
    const first = `${whole.split(/\r?\n/)[0]}\n\n`;
    expect(first).toContain('"text":"The"');
    expect(first).not.toContain('finishReason');
    const inStreamError = `${first}data: ${JSON.stringify({ error: { code: 503, message: 'overloaded', status: 'UNAVAILABLE' } })}\n\n`;
    for (const [upstream, message] of [
      [first, 'the upstream stream ended before the message was complete'],
      [inStreamError, 'overloaded'],
    ] as const) {
      const body = translateStream(
        openaiToGemini.stream({ ...MODEL, includeUsage: true }),
        'sse',
        Buffer.from(upstream),
      );
      expect(body).not.toContain('[DONE]');
      const { client, close } = await cannedServer({ status: 200, body, contentType: SSE_TYPE });
      try {
        const stream = await client.chat.completions.create({
          model: 'g',
          messages: [{ role: 'user', content: 'Hi' }],
          stream: true,
        });
        let text = '';
        const read = async () => {
          for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
        };
        await expect(read()).rejects.toThrow(message);
        expect(text).not.toBe('');
      } finally {
        await close();
      }
    }
  });

  it('reads a non-stream completion and a translated error', async () => {
    const completion = openaiToGemini.response(JSON.parse(fixture('generate.json').toString()), MODEL);
    const ok = await cannedServer({ status: 200, body: JSON.stringify(completion), contentType: JSON_TYPE });
    try {
      const res = await ok.client.chat.completions.create({
        model: 'g',
        messages: [{ role: 'user', content: 'Hi' }],
      });
      expect(res.choices[0]?.message.content).toBe('AI learns patterns from data.');
      expect(res.choices[0]?.finish_reason).toBe('stop');
      expect(res.usage?.completion_tokens_details?.reasoning_tokens).toBe(40);
    } finally {
      await ok.close();
    }
    const error = openaiToGemini.error(429, JSON.parse(fixture('error.json').toString()));
    const failing = await cannedServer({ status: 429, body: JSON.stringify(error), contentType: JSON_TYPE });
    try {
      await expect(
        failing.client.chat.completions.create({ model: 'g', messages: [{ role: 'user', content: 'Hi' }] }),
      ).rejects.toMatchObject({ status: 429, type: 'rate_limit_error', code: 'RESOURCE_EXHAUSTED' });
    } finally {
      await failing.close();
    }
  });
});
