import Anthropic from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import { JSON_CASES, fixture, routeOf } from '../../test/dialects/fixture-cases.js';
import { sseFetch } from '../../test/dialects/sdk-fetch.js';
import { createSseParser } from '../usage/sse.js';
import { usageFromJsonBody } from '../usage/stream-tap.js';
import { anthropic, anthropicUsage } from './anthropic.js';
import type { DialectRequest, JsonBody } from './dialect.js';

const MESSAGES = anthropic.match('POST', '/v1/messages')!;

function req(body: JsonBody): DialectRequest {
  return { method: 'POST', path: '/v1/messages', query: '', body };
}

describe('the Anthropic dialect', () => {
  it.each([
    ['POST', '/v1/messages', 'messages', true],
    ['POST', '/v1/messages/count_tokens', 'count_tokens', false],
    ['POST', '/v1/messages/batches', 'messages.other', false],
    ['GET', '/v1/models', 'models', false],
  ])('routes %s %s to %s (metered: %s)', (method, path, endpoint, metered) => {
    expect(anthropic.match(method, path)).toMatchObject({ endpoint, metered });
  });

  it.each(JSON_CASES.filter((c) => c.dialect === anthropic))('reads usage from $file', (c) => {
    const obs = usageFromJsonBody(anthropic, routeOf(c), fixture(c.file));
    expect(obs?.usage ?? {}).toEqual(c.usage);
    expect(obs?.model).toBe(c.model);
    expect(obs?.error).toBe(c.error);
  });

  it.each([
    [
      'counts cache reads and writes into input',
      'final',
      { input_tokens: 10, cache_creation_input_tokens: 5, cache_read_input_tokens: 100, output_tokens: 3 },
      { input: 115, cacheWrite: 5, cachedInput: 100, output: 3 },
    ],
    [
      'treats null cache fields as absent',
      'final',
      {
        input_tokens: 10,
        cache_creation_input_tokens: null,
        cache_read_input_tokens: null,
        output_tokens: 3,
      },
      { input: 10, output: 3 },
    ],
    [
      'ignores the placeholder output of message_start',
      'start',
      { input_tokens: 10, output_tokens: 1 },
      { input: 10 },
    ],
    [
      'keeps input unknown in a delta with null cache fields',
      'delta',
      {
        input_tokens: 10,
        cache_creation_input_tokens: null,
        cache_read_input_tokens: null,
        output_tokens: 30,
      },
      { output: 30 },
    ],
    [
      'takes input from a delta that reports every input field',
      'delta',
      { input_tokens: 10, cache_creation_input_tokens: 0, cache_read_input_tokens: 4, output_tokens: 30 },
      { input: 14, cacheWrite: 0, cachedInput: 4, output: 30 },
    ],
    [
      'reads thinking tokens as reasoning',
      'final',
      { input_tokens: 1, output_tokens: 9, output_tokens_details: { thinking_tokens: 4 } },
      { input: 1, output: 9, reasoning: 4 },
    ],
  ] as const)('normalises usage: %s', (_name, kind, raw, expected) => {
    expect(anthropicUsage(raw, kind)).toEqual(expected);
  });

  it.each([
    ['sets a missing system prompt', {}, 'Be kind.'],
    ['prepends to a system string', { system: 'Be brief.' }, 'Be kind.\n\nBe brief.'],
    [
      'prepends a text block to a block list',
      { system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }] },
      [
        { type: 'text', text: 'Be kind.' },
        { type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } },
      ],
    ],
  ])('injects a system prompt (%s)', (_name, body, expected) => {
    const r = req({ messages: [], ...body });
    anthropic.injectSystemPrompt(r, MESSAGES, 'Be kind.');
    expect(r.body?.system).toEqual(expected);
  });

  it('reads and sets max_tokens, the model and the stream flag', () => {
    const r = req({ model: 'claude-x', max_tokens: 1024, stream: true, messages: [] });
    expect(anthropic.readMaxOutput(r, MESSAGES)).toBe(1024);
    anthropic.setMaxOutput(r, MESSAGES, 256);
    anthropic.rewriteModel(r, MESSAGES, 'claude-y');
    expect(r.body).toMatchObject({ max_tokens: 256, model: 'claude-y' });
    expect(anthropic.readModel(r, MESSAGES)).toBe('claude-y');
    expect(anthropic.isStream(r, MESSAGES)).toBe(true);
  });

  it('detects images, also inside tool results', () => {
    const image = { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBOR' } };
    expect(anthropic.hasImageInput(req({ messages: [{ role: 'user', content: [image] }] }), MESSAGES)).toBe(
      true,
    );
    expect(
      anthropic.hasImageInput(
        req({
          messages: [
            { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [image] }] },
          ],
        }),
        MESSAGES,
      ),
    ).toBe(true);
    expect(anthropic.hasImageInput(req({ messages: [{ role: 'user', content: 'hi' }] }), MESSAGES)).toBe(
      false,
    );
  });

  it('hints at message_start, message_delta and error events only', () => {
    expect(anthropic.usageHint({ event: 'message_start', data: '{}' })).toBe(true);
    expect(anthropic.usageHint({ event: 'message_delta', data: '{}' })).toBe(true);
    expect(anthropic.usageHint({ event: 'error', data: '{}' })).toBe(true);
    expect(
      anthropic.usageHint({ event: 'content_block_delta', data: '{"delta":{"text":"\\"error\\""}}' }),
    ).toBe(false);
    expect(anthropic.usageHint({ event: 'ping', data: '{"type":"ping"}' })).toBe(false);
  });

  it('writes a cut-off as message_delta plus message_stop', () => {
    const parser = createSseParser();
    const events = [
      ...parser.push(Buffer.from(anthropic.cutoffEvent!(MESSAGES, 'quota', { output: 12 }))),
      ...parser.end(),
    ];
    expect(events.map((e) => e.event)).toEqual(['message_delta', 'message_stop']);
    expect(JSON.parse(events[0]!.data)).toMatchObject({
      type: 'message_delta',
      delta: { stop_reason: 'max_tokens' },
      usage: { output_tokens: 12 },
      lanekeeper_cutoff: { reason: 'quota' },
    });
  });

  it('ends a stream for the official SDK with stop_reason max_tokens when cut off', async () => {
    const stream = fixture('anthropic/messages-stream.sse').toString();
    const head = stream.slice(0, stream.indexOf('event: content_block_stop'));
    const { fetch } = sseFetch(head + anthropic.cutoffEvent!(MESSAGES, 'budget exceeded'));
    const client = new Anthropic({
      apiKey: 'test',
      baseURL: 'http://upstream.invalid',
      fetch,
      maxRetries: 0,
    });
    const message = await client.messages
      .stream({ model: 'claude-x', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] })
      .finalMessage();
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.content).toHaveLength(1);
    expect(message.content[0]).toMatchObject({ type: 'text', text: 'Hello! How can I help you today?' });
  });
});
