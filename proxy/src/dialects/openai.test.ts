import fc from 'fast-check';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { JSON_CASES, fixture, routeOf } from '../../test/dialects/fixture-cases.js';
import { sseFetch } from '../../test/dialects/sdk-fetch.js';
import { createEventFramer, hideInjectedUsageBlock, rewriteBlock } from '../usage/event-framer.js';
import { createSseParser } from '../usage/sse.js';
import { usageFromJsonBody } from '../usage/stream-tap.js';
import type { DialectRequest, DialectRoute, JsonBody } from './dialect.js';
import { BINARY_ALLOWANCE_TOKENS } from './prompt-size.js';
import { createOpenAiDialect, lastUsageKey, openai, removeNullUsage } from './openai.js';

function route(path: string, method = 'POST'): DialectRoute {
  const r = openai.match(method, path);
  if (!r) throw new Error(`no route for ${path}`);
  return r;
}

function req(path: string, body: JsonBody): DialectRequest {
  return { method: 'POST', path, query: '', body };
}

const CHAT = '/v1/chat/completions';

describe('the OpenAI dialect', () => {
  it.each([
    ['POST', '/v1/chat/completions', 'chat.completions', true],
    ['POST', '/v1/chat/completions/', 'chat.completions', true],
    ['POST', '/v1beta/openai/chat/completions', 'chat.completions', true],
    ['POST', '/chat/completions', 'chat.completions', true],
    ['POST', '/api/v1/chat/completions', 'chat.completions', true],
    // A path segment naming a model the plan never checks: not the chat route.
    ['POST', '/v1/engines/big-model/chat/completions', 'other', false],
    ['POST', '/v1/threads/x/chat/completions', 'other', false],
    ['POST', '/v1/completions', 'completions', true],
    ['POST', '/v1/responses', 'responses', true],
    ['POST', '/v1/embeddings', 'embeddings', true],
    ['GET', '/v1/models', 'models', false],
    ['GET', '/v1/models/gpt-4o', 'models', false],
    ['POST', '/v1/files', 'other', false],
    ['GET', '/v1/responses/resp_1', 'other', false],
  ])('routes %s %s to %s (metered: %s)', (method, path, endpoint, metered) => {
    expect(openai.match(method, path)).toMatchObject({ endpoint, metered });
  });

  it('does not claim paths outside /v1', () => {
    expect(openai.match('POST', '/api/chat')).toBeUndefined();
    expect(openai.match('POST', '/openai/deployments/big-model/chat/completions')).toBeUndefined();
    expect(openai.match('GET', '/healthz')).toBeUndefined();
  });

  it.each(JSON_CASES.filter((c) => c.dialect === openai))('reads usage from $file', (c) => {
    const obs = usageFromJsonBody(openai, routeOf(c), fixture(c.file));
    expect(obs?.usage ?? {}).toEqual(c.usage);
    expect(obs?.model).toBe(c.model);
    expect(obs?.error).toBe(c.error);
  });

  it('reads and rewrites the model in the body', () => {
    const r = req(CHAT, { model: 'gpt-4o', messages: [] });
    expect(openai.readModel(r, route(CHAT))).toBe('gpt-4o');
    openai.rewriteModel(r, route(CHAT), 'gpt-4o-mini');
    expect(r.body?.model).toBe('gpt-4o-mini');
  });

  it.each([
    [
      'chat: prepends a system message',
      CHAT,
      { messages: [{ role: 'user', content: 'hi' }] },
      {
        messages: [
          { role: 'system', content: 'Be kind.' },
          { role: 'user', content: 'hi' },
        ],
      },
    ],
    [
      'responses: sets instructions',
      '/v1/responses',
      { input: 'hi' },
      { input: 'hi', instructions: 'Be kind.' },
    ],
    [
      'responses: prepends to instructions',
      '/v1/responses',
      { instructions: 'Answer in French.' },
      { instructions: 'Be kind.\n\nAnswer in French.' },
    ],
    [
      'completions: prepends to a prompt string',
      '/v1/completions',
      { prompt: 'Say hi' },
      { prompt: 'Be kind.\n\nSay hi' },
    ],
    [
      'completions: prepends to each prompt of a list',
      '/v1/completions',
      { prompt: ['a', 'b'] },
      { prompt: ['Be kind.\n\na', 'Be kind.\n\nb'] },
    ],
    ['completions: leaves token prompts alone', '/v1/completions', { prompt: [1, 2] }, { prompt: [1, 2] }],
    ['embeddings: changes nothing', '/v1/embeddings', { input: 'x' }, { input: 'x' }],
  ])('injects a system prompt (%s)', (_name, path, body, expected) => {
    const r = req(path, body);
    openai.injectSystemPrompt(r, route(path), 'Be kind.');
    expect(r.body).toEqual(expected);
  });

  it('estimates prompt tokens generously but counts an image as a fixed allowance', () => {
    const text = 'word '.repeat(400);
    const image = `data:image/png;base64,${'A'.repeat(200_000)}`;
    const plain = openai.estimatePromptTokens(
      req(CHAT, { messages: [{ role: 'user', content: text }] }),
      route(CHAT),
    );
    const withImage = openai.estimatePromptTokens(
      req(CHAT, {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text },
              { type: 'image_url', image_url: { url: image } },
            ],
          },
        ],
      }),
      route(CHAT),
    );
    expect(plain).toBeGreaterThanOrEqual(500);
    expect(plain).toBeLessThan(700);
    expect(withImage - plain).toBeGreaterThanOrEqual(BINARY_ALLOWANCE_TOKENS);
    expect(withImage - plain).toBeLessThan(BINARY_ALLOWANCE_TOKENS + 50);
  });

  it('detects image input in chat parts and Responses items', () => {
    const chat = req(CHAT, {
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }],
    });
    const responses = req('/v1/responses', {
      input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'https://x/y.png' }] }],
    });
    expect(openai.hasImageInput(chat, route(CHAT))).toBe(true);
    expect(openai.hasImageInput(responses, route('/v1/responses'))).toBe(true);
    expect(
      openai.hasImageInput(req(CHAT, { messages: [{ role: 'user', content: 'hi' }] }), route(CHAT)),
    ).toBe(false);
  });

  it.each([
    ['takes the smaller of two chat caps', CHAT, { max_completion_tokens: 10, max_tokens: 99 }, 10],
    ['takes the smaller either way round', CHAT, { max_completion_tokens: 99, max_tokens: 10 }, 10],
    ['falls back to max_tokens', CHAT, { max_tokens: 99 }, 99],
    ['reads null as no cap', CHAT, { max_tokens: null }, undefined],
    ['reads max_output_tokens on responses', '/v1/responses', { max_output_tokens: 5 }, 5],
    ['reads max_tokens on completions', '/v1/completions', { max_tokens: 7 }, 7],
    ['has no cap on embeddings', '/v1/embeddings', { max_tokens: 7 }, undefined],
    ['reads every cap name on responses', '/v1/responses', { max_output_tokens: 50, max_tokens: 6 }, 6],
  ])('reads the output cap (%s)', (_name, path, body, expected) => {
    expect(openai.readMaxOutput(req(path, body), route(path))).toBe(expected);
  });

  it.each([
    ['writes max_completion_tokens by default', {}, { max_completion_tokens: 50 }],
    ['keeps a client on max_tokens', { max_tokens: 99 }, { max_tokens: 50 }],
    ['keeps a client on max_completion_tokens', { max_completion_tokens: 99 }, { max_completion_tokens: 50 }],
    [
      'leaves one field when the client sent both',
      { max_tokens: 9, max_completion_tokens: 100000 },
      { max_completion_tokens: 50 },
    ],
    ['drops a null cap field', { max_tokens: null }, { max_completion_tokens: 50 }],
  ])('sets the chat output cap (%s)', (_name, body, expected) => {
    const r = req(CHAT, body);
    openai.setMaxOutput(r, route(CHAT), 50);
    expect(r.body).toEqual(expected);
  });

  it.each([
    ['a string', { max_tokens: '100' }, 'max_tokens'],
    ['zero', { max_completion_tokens: 0 }, 'max_completion_tokens'],
    ['a negative', { max_tokens: -5 }, 'max_tokens'],
    ['a float', { max_tokens: 10.5 }, 'max_tokens'],
    ['a boolean', { max_completion_tokens: true }, 'max_completion_tokens'],
  ])('refuses an output cap that is %s, naming the field', (_name, body, field) => {
    expect(() => openai.readMaxOutput(req(CHAT, body), route(CHAT))).toThrow(
      expect.objectContaining({
        status: 400,
        apiCode: 'invalid_request',
        message: expect.stringContaining(field),
      }),
    );
  });

  it.each([
    ['n on chat', CHAT, { n: 3 }, { count: 3, field: 'n' }],
    ['the larger of n and best_of', '/v1/completions', { n: 2, best_of: 5 }, { count: 5, field: 'best_of' }],
    ['nothing when unset', CHAT, {}, undefined],
    ['nothing on responses', '/v1/responses', { n: 4 }, undefined],
  ])('reads the choices (%s)', (_name, path, body, expected) => {
    expect(openai.readChoices?.(req(path, body), route(path))).toEqual(expected);
  });

  it('refuses a choice count that is not a positive integer', () => {
    expect(() => openai.readChoices?.(req(CHAT, { n: '2' }), route(CHAT))).toThrow(
      /"n" must be a positive integer/,
    );
  });

  it("leaves only the endpoint's own cap field on completions and responses", () => {
    const all = { max_tokens: 1, max_completion_tokens: 2, max_output_tokens: 3 };
    const completions = req('/v1/completions', { ...all });
    openai.setMaxOutput(completions, route('/v1/completions'), 40);
    expect(completions.body).toEqual({ max_tokens: 40 });
    const responses = req('/v1/responses', { ...all });
    openai.setMaxOutput(responses, route('/v1/responses'), 40);
    expect(responses.body).toEqual({ max_output_tokens: 40 });
  });

  it('always writes the one name an upstream reads, whatever the client sent', () => {
    const ollamaCompatible = createOpenAiDialect({ chatReadsOnly: 'max_tokens' });
    const r = req(CHAT, { max_completion_tokens: 10 });
    ollamaCompatible.setMaxOutput(r, route(CHAT), 10);
    expect(r.body).toEqual({ max_tokens: 10 });
  });

  it('writes max_tokens by default when configured for older servers', () => {
    const legacy = createOpenAiDialect({ chatMaxField: 'max_tokens' });
    const r = req(CHAT, {});
    legacy.setMaxOutput(r, route(CHAT), 50);
    expect(r.body).toEqual({ max_tokens: 50 });
  });

  it('asks for stream usage only when the client did not, and can undo it', () => {
    const r = req(CHAT, { stream: true, stream_options: { include_obfuscation: false } });
    expect(openai.requestStreamUsage?.(r, route(CHAT))).toBe(true);
    expect(r.body?.stream_options).toEqual({ include_obfuscation: false, include_usage: true });
    openai.withoutStreamUsage?.(r, route(CHAT));
    expect(r.body?.stream_options).toEqual({ include_obfuscation: false });

    const bare = req(CHAT, { stream: true });
    expect(openai.requestStreamUsage?.(bare, route(CHAT))).toBe(true);
    openai.withoutStreamUsage?.(bare, route(CHAT));
    expect(bare.body).toEqual({ stream: true });

    expect(
      openai.requestStreamUsage?.(
        req(CHAT, { stream: true, stream_options: { include_usage: true } }),
        route(CHAT),
      ),
    ).toBe(false);
    expect(openai.requestStreamUsage?.(req(CHAT, { stream: false }), route(CHAT))).toBe(false);
    expect(openai.requestStreamUsage?.(req('/v1/responses', { stream: true }), route('/v1/responses'))).toBe(
      false,
    );
  });

  it.each([
    ['LF', '\n', 'bytes'],
    ['CRLF', '\r\n', 'bytes'],
    ['LF', '\n', 'events'],
    ['CRLF', '\r\n', 'events'],
  ])(
    'hides injected usage so the client gets exactly the stream it asked for (%s, %s)',
    (_name, eol, path) => {
      const withUsage = Buffer.from(fixture('openai/chat-stream-usage.sse').toString().replaceAll('\n', eol));
      const expected = fixture('openai/chat-stream-no-usage.sse').toString().replaceAll('\n', eol);
      const framer = createEventFramer('sse');
      const out: Buffer[] = [];
      const hide = openai.hideInjectedUsage!.bind(openai);
      for (let i = 0; i < withUsage.length; i += 37) {
        for (const block of framer.push(withUsage.subarray(i, i + 37))) {
          const kept =
            path === 'bytes'
              ? hideInjectedUsageBlock(framer, openai, block)
              : rewriteBlock(framer, 'sse', block, hide);
          if (kept) out.push(kept);
        }
      }
      out.push(framer.end());
      expect(Buffer.concat(out).toString()).toBe(expected);
    },
  );

  it.each([
    ['the last member, LF', 'data: {"a":1,"usage":null}\n\n', 'data: {"a":1}\n\n'],
    ['the last member, CRLF', 'data: {"a":1,"usage":null}\r\n\r\n', 'data: {"a":1}\r\n\r\n'],
    ['the first member', 'data: {"usage":null,"a":1}\n\n', 'data: {"a":1}\n\n'],
    ['inside a string', 'data: {"a":"x,\\"usage\\":null"}\n\n', 'data: {"a":"x,\\"usage\\":null"}\n\n'],
    ['a nested object', 'data: {"a":{"b":1,"usage":null}}\n\n', 'data: {"a":{"b":1}}\n\n'],
    ['real usage', 'data: {"a":1,"usage":{"total_tokens":3}}\n\n', undefined],
  ])('cuts a null usage field out of a raw block: %s', (_name, input, output) => {
    const out = openai.hideInjectedUsageInBlock?.(Buffer.from(input));
    expect(out === undefined || out === null ? out : out.toString()).toBe(output);
  });

  it('finds the last "usage": key wherever it is, as Buffer#lastIndexOf does', () => {
    const piece = fc.constantFrom(
      '"usage":',
      '"usage"',
      'usage":',
      '"',
      ':',
      'null',
      ',',
      'x'.repeat(70),
      'ab',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), (pieces) => {
        const block = Buffer.from(pieces.join(''));
        expect(lastUsageKey(block)).toBe(block.lastIndexOf('"usage":'));
      }),
      { numRuns: 2000 },
    );
    // One key at any offset of a filler block, so offsets at the edge of the tail loop occur.
    fc.assert(
      fc.property(fc.nat(200), fc.nat(200), (size, offset) => {
        const block = Buffer.alloc(size + 8, 'x');
        block.write('"usage":', Math.min(offset, size));
        expect(lastUsageKey(block)).toBe(block.lastIndexOf('"usage":'));
      }),
      { numRuns: 3000 },
    );
  });

  it.each([
    ['{"a":1,"usage":null}', '{"a":1}'],
    ['{"usage":null,"a":1}', '{"a":1}'],
    ['{"a":1, "usage": null}', '{"a":1}'],
    ['{"a":"\\"usage\\":null"}', '{"a":"\\"usage\\":null"}'],
    ['{"a":1,"usage":{"x":1}}', '{"a":1,"usage":{"x":1}}'],
  ])('removes a null usage field by a string edit: %s', (input, output) => {
    expect(removeNullUsage(input)).toBe(output);
  });

  it('collects text deltas of a Responses stream but not base64 audio', () => {
    const r = route('/v1/responses');
    const delta = (type: string) => ({ event: type, data: JSON.stringify({ type, delta: 'abc' }) });
    expect(openai.textFromEvent(delta('response.output_text.delta'), r)).toBe('abc');
    expect(openai.textFromEvent(delta('response.function_call_arguments.delta'), r)).toBe('abc');
    expect(openai.textFromEvent(delta('response.audio.transcript.delta'), r)).toBe('abc');
    expect(openai.textFromEvent(delta('response.audio.delta'), r)).toBe('');
  });

  it("reads vLLM's top-level error shape in bodies and events", () => {
    const error = {
      object: 'error',
      message: 'max_tokens is too large',
      type: 'BadRequestError',
      param: null,
      code: 400,
    };
    expect(openai.usageFromJson(error, route(CHAT))).toEqual({ error: 'max_tokens is too large' });
    const event = { event: '', data: JSON.stringify(error) };
    expect(openai.usageHint(event)).toBe(true);
    expect(openai.usageFromEvent(event, route(CHAT))).toEqual({ error: 'max_tokens is too large' });
  });

  it('never throws on bad events and ignores [DONE]', () => {
    const r = route(CHAT);
    for (const data of ['[DONE]', '{', 'null', '42', '"x"', '{"usage":"nope"}', '{"choices":7}']) {
      expect(() => openai.usageFromEvent({ event: '', data }, r)).not.toThrow();
      expect(() => openai.textFromEvent({ event: '', data }, r)).not.toThrow();
    }
    expect(openai.usageFromEvent({ event: '', data: '[DONE]' }, r)).toBeUndefined();
  });

  it('hints only at events that carry usage, errors or terminal responses', () => {
    expect(
      openai.usageHint({ event: '', data: '{"choices":[{"delta":{"content":"x"}}],"usage":null}' }),
    ).toBe(false);
    expect(openai.usageHint({ event: '', data: '{"choices":[],"usage":{"prompt_tokens":1}}' })).toBe(true);
    expect(openai.usageHint({ event: '', data: '{"error":{"message":"x"}}' })).toBe(true);
    expect(openai.usageHint({ event: 'response.output_text.delta', data: '{"delta":"x"}' })).toBe(false);
    expect(openai.usageHint({ event: 'response.completed', data: '{}' })).toBe(true);
    expect(openai.usageHint({ event: 'message', data: '{"choices":[],"usage":{"prompt_tokens":1}}' })).toBe(
      true,
    );
    expect(openai.usageHint({ event: '', data: '{"type":"response.completed","response":{}}' })).toBe(true);
    expect(openai.usageHint({ event: '', data: '{"type":"response.output_text.delta","delta":"x"}' })).toBe(
      false,
    );
  });

  it.each([CHAT, '/v1/completions', '/v1/responses'])(
    'writes a cut-off for %s that parses as valid events',
    (path) => {
      const parser = createSseParser();
      const events = [
        ...parser.push(Buffer.from(openai.cutoffEvent!(route(path), 'quota exhausted'))),
        ...parser.end(),
      ];
      expect(events.length).toBeGreaterThan(0);
      const payloads = events.filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data));
      expect(payloads[0].lanekeeper_cutoff).toEqual({ reason: 'quota exhausted' });
      if (path !== '/v1/responses') expect(events.at(-1)?.data).toBe('[DONE]');
    },
  );

  it.each([CHAT, '/v1/completions', '/v1/responses'])(
    'carries the figures it is given in %s where the stream reports usage, read back as the meter reads them',
    (path) => {
      const parser = createSseParser();
      const text = openai.cutoffEvent!(route(path), 'quota', { input: 7, output: 12 });
      const events = [...parser.push(Buffer.from(text)), ...parser.end()];
      const usages = events
        .filter((e) => e.data !== '[DONE]' && openai.usageHint(e))
        .map((e) => openai.usageFromEvent(e, route(path))?.usage)
        .filter((u) => u !== undefined);
      expect(usages).toEqual([expect.objectContaining({ input: 7, output: 12 })]);
      // Without figures, no usage is claimed: a chunk with no choices would be new to a client that never asked.
      const bare = openai.cutoffEvent!(route(path), 'quota');
      expect(bare).not.toContain('"prompt_tokens"');
      expect(bare).not.toContain('"input_tokens"');
    },
  );

  it('says a chat stream reports usage only when include_usage was asked; a Responses stream always', () => {
    const chat = (b: JsonBody) => openai.streamReportsUsage!(req(CHAT, b), route(CHAT));
    expect(chat({ stream: true })).toBe(false);
    expect(chat({ stream: true, stream_options: { include_usage: false } })).toBe(false);
    expect(chat({ stream: true, stream_options: { include_usage: 'true' } })).toBe(false);
    expect(chat({ stream: true, stream_options: { include_usage: true } })).toBe(true);
    const responses = route('/v1/responses');
    expect(openai.streamReportsUsage!(req('/v1/responses', { stream: true }), responses)).toBe(true);
  });

  it('ends a chat stream for the official SDK with finish_reason "length" when cut off', async () => {
    const stream = fixture('openai/chat-stream-no-usage.sse').toString();
    const head = stream.slice(0, stream.indexOf('data: {', stream.indexOf(' can')));
    const { fetch } = sseFetch(head + openai.cutoffEvent!(route(CHAT), 'budget exceeded'));
    const client = new OpenAI({
      apiKey: 'test',
      baseURL: 'http://upstream.invalid/v1',
      fetch,
      maxRetries: 0,
    });
    const completion = await client.chat.completions
      .stream({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
      .finalChatCompletion();
    expect(completion.choices[0]?.finish_reason).toBe('length');
    expect(completion.choices[0]?.message.content).toBe('Hello! How can');
  });

  it('keeps the official SDK reading a Responses stream that ends in the cut-off event', async () => {
    const stream = fixture('openai/responses-stream.sse').toString();
    const head = stream.slice(0, stream.indexOf('event: response.output_text.done'));
    const { fetch } = sseFetch(head + openai.cutoffEvent!(route('/v1/responses'), 'budget exceeded'));
    const client = new OpenAI({
      apiKey: 'test',
      baseURL: 'http://upstream.invalid/v1',
      fetch,
      maxRetries: 0,
    });
    const types: string[] = [];
    for await (const event of await client.responses.create({
      model: 'gpt-4.1',
      input: 'hi',
      stream: true,
    })) {
      types.push(event.type);
    }
    expect(types.at(-1)).toBe('response.incomplete');
    expect(types.filter((t) => t === 'response.output_text.delta')).toHaveLength(4);
  });
});
