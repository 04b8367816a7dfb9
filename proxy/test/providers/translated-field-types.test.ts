/**
 * A request the proxy translates to another provider's API is checked against the types the
 * CLIENT's API documents before anything is sent: a field of the wrong type (the official SDKs
 * would not send one, so the tests cast through their escape hatch) gets a 400 in the
 * client's own error shape naming the field, and the upstream is never called. Before, such a
 * field was dropped by a builder that read only the type it expected, and the request went
 * upstream without it. (`stream`, `max_tokens` and `n` are checked earlier, for every request,
 * by parse-request and the plan's cap.)
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { chatCompletion } from '../helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** A harness whose one upstream, serving every model, speaks `dialect`. */
async function startWith(dialect: 'openai' | 'anthropic', body: unknown): Promise<Harness> {
  h = await startHarness({
    reply: { kind: 'json', body },
    config: (base) => {
      const { upstream, ...rest } = base;
      return { ...rest, upstreams: { [dialect]: { ...(upstream as object), dialect, models: ['*'] } } };
    },
  });
  return h;
}

const COMPLETION = chatCompletion('big-model', 'Hi.', {
  prompt_tokens: 3,
  completion_tokens: 2,
  total_tokens: 5,
});

const MESSAGE = {
  id: 'msg_01',
  type: 'message',
  role: 'assistant',
  content: [{ type: 'text', text: 'Hi.' }],
  model: 'big-model',
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 3, output_tokens: 2 },
};

describe('an Anthropic client served by an OpenAI upstream', () => {
  const anthropic = (harness: Harness) =>
    new Anthropic({ apiKey: KEYS.pro, baseURL: harness.proxy.url, maxRetries: 0 });
  const params = { model: 'smart', max_tokens: 100, messages: [{ role: 'user' as const, content: 'hi' }] };

  it.each([
    ['stop_sequences', 'x'],
    ['stop_sequences', ['END', 7]],
    ['tools', 'x'],
    ['temperature', 'hot'],
    ['top_p', {}],
    ['metadata', 5],
    ['tool_choice', 'any'],
    ['system', 42],
    ['cache_control', 'ephemeral'],
  ])(
    'gets a 400 in its own error shape for %s = %j, naming it, and nothing is sent',
    async (field, value) => {
      const harness = await startWith('openai', COMPLETION);
      const error = await anthropic(harness)
        .messages.create({
          ...params,
          [field]: value,
        } as unknown as Anthropic.MessageCreateParamsNonStreaming)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(Anthropic.BadRequestError);
      expect((error as InstanceType<typeof Anthropic.BadRequestError>).error).toMatchObject({
        type: 'error',
        error: {
          type: 'invalid_request_error',
          message: expect.stringContaining(`field "${field}" must be`),
        },
      });
      expect(harness.upstream.received).toHaveLength(0);
    },
  );

  it('still sends the shapes Anthropic accepts: an empty stop list, text-block system, metadata', async () => {
    const harness = await startWith('openai', COMPLETION);
    const message = await anthropic(harness).messages.create({
      ...params,
      stop_sequences: [],
      system: [{ type: 'text', text: 'Be brief.' }],
      metadata: { user_id: 'u-1' },
    });
    expect(message.content).toEqual([{ type: 'text', text: 'Hi.' }]);
    expect(harness.lastReceived().body).toMatchObject({ user: 'u-1' });
    expect(harness.lastReceived().body).not.toHaveProperty('stop');
  });
});

describe('an OpenAI client served by an Anthropic upstream', () => {
  const openai = (harness: Harness) =>
    new OpenAI({ apiKey: KEYS.pro, baseURL: `${harness.proxy.url}/v1`, maxRetries: 0 });
  const params = { model: 'smart', messages: [{ role: 'user' as const, content: 'hi' }] };

  it.each([
    ['stop', 5],
    ['stop', ['END', null]],
    ['tools', 'x'],
    ['tool_choice', 'any'],
    ['temperature', '0.5'],
    ['seed', 'lucky'],
    ['response_format', 'json_object'],
    ['user', 42],
    ['stream_options.include_usage', { include_usage: 'yes' }],
    [
      'messages[1].tool_calls',
      [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'Checking.', tool_calls: 'call_1' },
        { role: 'user', content: 'And?' },
      ],
    ],
  ])(
    'gets a 400 in its own error shape for %s = %j, naming it, and nothing is sent',
    async (field, value) => {
      const harness = await startWith('anthropic', MESSAGE);
      // A nested field's value is its whole enclosing object (or messages list).
      const top = field.split(/[.[]/)[0] as string;
      const error = await openai(harness)
        .chat.completions.create({
          ...params,
          [top]: value,
        } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect((error as InstanceType<typeof OpenAI.BadRequestError>).error).toMatchObject({
        type: 'invalid_request_error',
        message: expect.stringContaining(`field "${field}" must be`),
      });
      expect(harness.upstream.received).toHaveLength(0);
    },
  );

  it('still sends the shapes OpenAI accepts: one stop string, a named tool choice, an integer temperature', async () => {
    const harness = await startWith('anthropic', MESSAGE);
    const tools = [{ type: 'function' as const, function: { name: 'now', parameters: { type: 'object' } } }];
    const completion = await openai(harness).chat.completions.create({
      ...params,
      stop: 'END',
      tools,
      tool_choice: { type: 'function', function: { name: 'now' } },
      temperature: 1,
    });
    expect(completion.choices[0]?.message.content).toBe('Hi.');
    expect(harness.lastReceived().body).toMatchObject({
      stop_sequences: ['END'],
      tool_choice: { type: 'tool', name: 'now' },
      temperature: 1,
    });
  });
});
