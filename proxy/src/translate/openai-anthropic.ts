/**
 * Client speaks OpenAI Chat Completions, upstream speaks Anthropic Messages
 * (`POST /v1/messages`). Only `chat.completions` has an Anthropic equivalent; embeddings,
 * legacy completions, the Responses API and the rest are refused before anything is sent.
 * The request mapping is in openai-anthropic-request.ts, the stream in
 * openai-anthropic-stream.ts; this file holds the JSON answer and the wiring.
 */
import { record, text } from '../dialects/json-value.js';
import { openaiErrorFromAnthropic } from './error-bodies.js';
import { anthropicRequestFromOpenai } from './openai-anthropic-request.js';
import { createChunkStream } from './openai-anthropic-stream.js';
import { finishReasonOf } from './stop-reasons.js';
import { TranslationError, type Translator } from './translator.js';
import { openaiUsageFromAnthropic } from './usage-shapes.js';

type Json = Record<string, unknown>;

/** A clock in milliseconds; tests pass a fixed one so `created` is stable. */
export type Clock = () => number;

/** The OpenAI tool call for an Anthropic `tool_use` block. */
function toolCall(block: Json): Json {
  return {
    id: text(block.id) ?? '',
    type: 'function',
    function: { name: text(block.name) ?? '', arguments: JSON.stringify(block.input ?? {}) },
  };
}

/**
 * An Anthropic message as an OpenAI `chat.completion`. Text blocks are joined; `tool_use`
 * blocks become `tool_calls`; thinking and server-tool blocks have no Chat Completions
 * field and are left out.
 */
export function chatCompletionFromMessage(body: unknown, model: string, created: number): Json {
  const msg = record(body) ?? {};
  let content = '';
  const toolCalls: Json[] = [];
  for (const entry of Array.isArray(msg.content) ? msg.content : []) {
    const block = record(entry);
    if (block?.type === 'text' && typeof block.text === 'string') content += block.text;
    else if (block?.type === 'tool_use') toolCalls.push(toolCall(block));
  }
  const message: Json = {
    role: 'assistant',
    content: content === '' && toolCalls.length > 0 ? null : content,
    refusal: null,
  };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  return {
    id: text(msg.id) ?? 'chatcmpl-anthropic',
    object: 'chat.completion',
    created,
    model: text(msg.model) ?? model,
    choices: [
      { index: 0, message, logprobs: null, finish_reason: finishReasonOf(msg.stop_reason) ?? 'stop' },
    ],
    usage: openaiUsageFromAnthropic(msg.usage),
  };
}

/** A Translator from OpenAI clients to an Anthropic upstream, with its own clock. */
export function createOpenaiToAnthropic(clock: Clock = Date.now): Translator {
  const seconds = () => Math.floor(clock() / 1000);
  return {
    client: 'openai',
    upstream: 'anthropic',
    request(endpoint, body, options) {
      if (endpoint !== 'chat.completions') {
        throw new TranslationError(
          `the OpenAI endpoint "${endpoint}" is not supported for an Anthropic upstream`,
        );
      }
      const upstream = anthropicRequestFromOpenai(body, options.model);
      return { path: '/v1/messages', query: '', body: upstream, stream: upstream.stream === true };
    },
    response(body, options) {
      return chatCompletionFromMessage(body, options.model, seconds());
    },
    error(status, body) {
      return openaiErrorFromAnthropic(status, body);
    },
    stream(options) {
      return createChunkStream({
        model: options.model,
        includeUsage: options.includeUsage,
        created: seconds(),
      });
    },
  };
}

/** OpenAI Chat Completions clients, Anthropic Messages upstream. */
export const openaiToAnthropic: Translator = createOpenaiToAnthropic();
