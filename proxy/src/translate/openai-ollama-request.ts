/**
 * An OpenAI request as an Ollama native body: chat.completions -> `POST /api/chat`,
 * embeddings -> `POST /api/embed`. Ollama STREAMS BY DEFAULT, so `stream` is always set.
 *
 * Chat, translated: messages (system/developer -> role system; images -> `images` base64,
 * after the message's text since Ollama keeps them apart; tool results -> role tool with
 * the `tool_name` looked up from the earlier call), tools (OpenAI-shaped already),
 * tool_choice auto/none (none sends no tools), stop, max_tokens/max_completion_tokens
 * (-> options.num_predict), temperature, top_p, seed, presence_penalty, frequency_penalty,
 * response_format (-> format "json" or the schema). Refused: n > 1, tool_choice
 * required/named, parallel_tool_calls=false, audio input, logprobs, logit_bias, audio,
 * modalities, prediction, reasoning_effort, verbosity, web_search_options, functions,
 * function_call and unknown fields. Dropped as harmless: HARMLESS_FIELDS, a tool's
 * `strict`, an image's `detail`.
 *
 * Embeddings: `input` text(s) -> `input`, `dimensions` -> `dimensions`, and `truncate:false`
 * so an over-long input fails as it does at OpenAI instead of being cut silently.
 * `encoding_format: "base64"` is refused: `response()` never sees the request, so it
 * cannot know to encode (see the report on the Translator interface).
 */
import type { JsonBody } from '../dialects/dialect.js';
import type { JsonRecord } from '../dialects/json-value.js';
import { arrayOf, integer, oneOf, onlyDefault, string, stringArray, type FieldRule } from './field-rules.js';
import {
  checkOpenAiFields,
  choiceCount,
  contentParts,
  historyToolCalls,
  HARMLESS_FIELDS,
  maxOutputTokens,
  messagesOf,
  numberField,
  responseFormat,
  stopSequences,
  textContent,
  toolDefinitions,
} from './openai-chat-request.js';
import { TranslationError } from './translator.js';

const UPSTREAM = 'Ollama';

/** A user or assistant message's text and images. */
function textAndImages(content: unknown, field: string): { content: string; images?: string[] } {
  let text = '';
  const images: string[] = [];
  contentParts(content, field, UPSTREAM).forEach((part, i) => {
    if (part.kind === 'text') text += part.text;
    else if (part.kind === 'image' && part.mimeType.startsWith('image/')) images.push(part.data);
    else throw new TranslationError(`${field}[${i}]: ${part.kind} content cannot be translated for Ollama`);
  });
  return images.length > 0 ? { content: text, images } : { content: text };
}

function ollamaMessage(message: JsonRecord, field: string, names: Map<string, string>): JsonRecord {
  switch (message.role) {
    case 'system':
    case 'developer':
      return { role: 'system', content: textContent(message.content, `${field}.content`, UPSTREAM) };
    case 'user':
      return { role: 'user', ...textAndImages(message.content, `${field}.content`) };
    case 'assistant': {
      if (message.audio !== undefined && message.audio !== null)
        throw new TranslationError(`${field}.audio cannot be translated for ${UPSTREAM}`);
      const calls = historyToolCalls(message, field, UPSTREAM);
      for (const call of calls) names.set(call.id, call.name);
      return {
        role: 'assistant',
        ...textAndImages(message.content, `${field}.content`),
        ...(calls.length > 0
          ? { tool_calls: calls.map((c) => ({ function: { name: c.name, arguments: c.args } })) }
          : {}),
      };
    }
    case 'tool': {
      const id = message.tool_call_id;
      const name = typeof id === 'string' ? names.get(id) : undefined;
      if (name === undefined)
        throw new TranslationError(`${field}.tool_call_id does not match a tool call earlier in messages`);
      return {
        role: 'tool',
        content: textContent(message.content, `${field}.content`, UPSTREAM),
        tool_name: name,
      };
    }
    default:
      throw new TranslationError(
        `${field}.role ${String(message.role)} cannot be translated for ${UPSTREAM}`,
      );
  }
}

/** Whether to send the tools: `none` is kept by not offering them; forcing a call cannot be. */
function sendTools(choice: unknown): boolean {
  if (choice === undefined || choice === null || choice === 'auto') return true;
  if (choice === 'none') return false;
  throw new TranslationError('tool_choice cannot be translated for Ollama: it cannot force a tool call');
}

function options(body: JsonBody): JsonRecord {
  const out: JsonRecord = {};
  const set = (key: string, value: unknown): void => {
    if (value !== undefined) out[key] = value;
  };
  set('num_predict', maxOutputTokens(body));
  set('temperature', numberField(body, 'temperature'));
  set('top_p', numberField(body, 'top_p'));
  set('seed', numberField(body, 'seed'));
  set('presence_penalty', numberField(body, 'presence_penalty'));
  set('frequency_penalty', numberField(body, 'frequency_penalty'));
  set('stop', stopSequences(body.stop));
  return out;
}

/** The /api/chat body for a chat.completions request. */
export function ollamaChatBody(body: JsonBody, model: string, stream: boolean): JsonBody {
  checkOpenAiFields(body, UPSTREAM);
  if (choiceCount(body) > 1) throw new TranslationError('n > 1 cannot be translated for Ollama');
  const names = new Map<string, string>();
  const out: JsonBody = {
    model,
    messages: messagesOf(body).map((m, i) => ollamaMessage(m, `messages[${i}]`, names)),
    stream,
  };
  const tools = toolDefinitions(body.tools, UPSTREAM);
  if (tools.length > 0 && sendTools(body.tool_choice))
    out.tools = tools.map((t) => ({ type: 'function', function: t }));
  const format = responseFormat(body.response_format);
  if (format.kind === 'json') out.format = 'json';
  if (format.kind === 'schema') out.format = format.schema;
  const opts = options(body);
  if (Object.keys(opts).length > 0) out.options = opts;
  return out;
}

/** The embeddings fields, with the types OpenAI documents. */
const EMBED_FIELDS: Readonly<Record<string, FieldRule>> = {
  ...HARMLESS_FIELDS,
  input: oneOf(string, stringArray, arrayOf(integer), arrayOf(arrayOf(integer))),
  dimensions: integer,
  encoding_format: onlyDefault('float'),
};

function embedInput(input: unknown): string | string[] {
  if (typeof input === 'string') return input;
  if (Array.isArray(input) && input.length > 0 && input.every((s) => typeof s === 'string')) return input;
  throw new TranslationError(
    'input must be a string or an array of strings for Ollama (token ids are not accepted)',
  );
}

/** The /api/embed body for an embeddings request. */
export function ollamaEmbedBody(body: JsonBody, model: string): JsonBody {
  checkOpenAiFields(body, UPSTREAM, EMBED_FIELDS);
  const out: JsonBody = { model, input: embedInput(body.input), truncate: false };
  const dimensions = numberField(body, 'dimensions');
  if (dimensions !== undefined) out.dimensions = dimensions;
  return out;
}
