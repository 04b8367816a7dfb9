/**
 * Client speaks Anthropic Messages, upstream speaks OpenAI Chat Completions
 * (`POST /v1/chat/completions`). Only `messages` has an OpenAI equivalent; count_tokens,
 * batches, model listings and the rest are refused before anything is sent. The request
 * mapping is in anthropic-openai-request.ts, the stream in anthropic-openai-stream.ts; this
 * file holds the JSON answer and the wiring.
 */
import { isRecord, parseJson, record, text } from '../dialects/json-value.js';
import { openaiRequestFromAnthropic } from './anthropic-openai-request.js';
import { createMessageStream } from './anthropic-openai-stream.js';
import { anthropicErrorFromOpenai } from './error-bodies.js';
import { stopReasonOf } from './stop-reasons.js';
import { TranslationError, type Translator } from './translator.js';
import { anthropicUsageFromOpenai } from './usage-shapes.js';

type Json = Record<string, unknown>;

/**
 * A tool call's arguments as the object Anthropic's `input` must be. Models now and then
 * write arguments that are not a JSON object; those arrive as `{}` rather than failing the
 * whole answer (the raw text has no place in an Anthropic tool_use block).
 */
function toolInput(args: unknown): Json {
  const parsed = typeof args === 'string' ? parseJson(args) : args;
  return isRecord(parsed) ? parsed : {};
}

function toolUseBlock(call: unknown, position: number): Json | undefined {
  const c = record(call);
  const fn = record(c?.function);
  if (!fn) return undefined;
  return {
    type: 'tool_use',
    id: text(c?.id) ?? `call_${position}`,
    name: text(fn.name) ?? '',
    input: toolInput(fn.arguments),
  };
}

/**
 * An OpenAI `chat.completion` as an Anthropic message: the first choice's text (or refusal)
 * as a text block, then its tool calls as `tool_use` blocks.
 */
export function messageFromChatCompletion(body: unknown, model: string): Json {
  const completion = record(body) ?? {};
  const choices = Array.isArray(completion.choices) ? completion.choices : [];
  const choice = record(choices[0]) ?? {};
  const message = record(choice.message) ?? {};
  const content: Json[] = [];
  const said = text(message.content) ?? text(message.refusal);
  if (said) content.push({ type: 'text', text: said });
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls : [];
  calls.forEach((call, i) => {
    const block = toolUseBlock(call, i);
    if (block) content.push(block);
  });
  const refused = text(message.refusal) !== undefined || choice.finish_reason === 'content_filter';
  return {
    id: text(completion.id) ?? 'msg_openai',
    type: 'message',
    role: 'assistant',
    model: text(completion.model) ?? model,
    content,
    stop_reason: refused ? 'refusal' : (stopReasonOf(choice.finish_reason) ?? 'end_turn'),
    stop_sequence: null,
    usage: anthropicUsageFromOpenai(completion.usage),
  };
}

/** Anthropic Messages clients, OpenAI Chat Completions upstream. */
export const anthropicToOpenai: Translator = {
  client: 'anthropic',
  upstream: 'openai',
  request(endpoint, body, options) {
    if (endpoint !== 'messages') {
      throw new TranslationError(
        `the Anthropic endpoint "${endpoint}" is not supported for an OpenAI upstream`,
      );
    }
    const upstream = openaiRequestFromAnthropic(body, options.model);
    return { path: '/v1/chat/completions', query: '', body: upstream, stream: upstream.stream === true };
  },
  response(body, options) {
    return messageFromChatCompletion(body, options.model);
  },
  error(status, body) {
    return anthropicErrorFromOpenai(status, body);
  },
  stream(options) {
    return createMessageStream({ model: options.model });
  },
};
