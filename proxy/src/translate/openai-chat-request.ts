/**
 * Reading an OpenAI Chat Completions request for a translator: the field policy (what is
 * translated, what is dropped as harmless, what is refused), message content as typed
 * parts, data: URLs, tool calls and the few scalar settings every upstream has. Everything
 * here throws TranslationError naming the field it cannot carry, never a generic error, so
 * the client gets a 400 that says what to remove.
 */
import type { JsonBody } from '../dialects/dialect.js';
import { isRecord, record, type JsonRecord } from '../dialects/json-value.js';
import {
  arrayOf,
  boolean,
  checkFields,
  enumOf,
  integer,
  number,
  object,
  oneOf,
  onlyDefault,
  string,
  stringArray,
  type FieldRule,
  type FieldType,
} from './field-rules.js';
import { TranslationError } from './translator.js';

/** OpenAI's `tool_choice`: a mode, or an object naming the tool (its form is read by each translator). */
export const TOOL_CHOICE: FieldType = oneOf(enumOf('none', 'auto', 'required'), object);

/**
 * The fields of `stream_options`. `include_usage` is read by the stream translator;
 * `include_obfuscation` is dropped, as a translated stream carries no obfuscation padding.
 */
const STREAM_OPTIONS_FIELDS: Readonly<Record<string, FieldRule>> = {
  include_usage: boolean,
  include_obfuscation: boolean,
};

/**
 * Request fields no upstream needs, dropped once their type is checked: `model` (the route's
 * model is used), `stream` and `stream_options` (read by the caller and answered in the
 * client's shape), and bookkeeping that does not change what is generated.
 */
export const HARMLESS_FIELDS: Readonly<Record<string, FieldRule>> = {
  model: string,
  stream: boolean,
  stream_options: object,
  user: string,
  safety_identifier: string,
  prompt_cache_key: string,
  metadata: object,
  store: boolean,
  service_tier: string,
};

/**
 * The chat-completion fields the Gemini and Ollama translations accept, each with the type
 * OpenAI documents for it (each translation then refuses the values its upstream cannot
 * take). Any other field is refused: a field we do not know may change the answer, and
 * silently dropping it would hand the client a result it did not ask for.
 */
export const CHAT_FIELDS: Readonly<Record<string, FieldRule>> = {
  ...HARMLESS_FIELDS,
  messages: arrayOf(object),
  tools: arrayOf(object),
  tool_choice: TOOL_CHOICE,
  stop: oneOf(string, stringArray),
  max_tokens: integer,
  max_completion_tokens: integer,
  temperature: number,
  top_p: number,
  seed: integer,
  presence_penalty: number,
  frequency_penalty: number,
  n: integer,
  response_format: object,
  logprobs: onlyDefault(false),
  top_logprobs: onlyDefault(0),
  parallel_tool_calls: onlyDefault(true),
};

/**
 * Throws TranslationError for the first field `upstream` cannot take under `rules`
 * (CHAT_FIELDS unless given), or whose type is not OpenAI's, naming it.
 */
export function checkOpenAiFields(
  body: JsonBody,
  upstream: string,
  rules: Readonly<Record<string, FieldRule>> = CHAT_FIELDS,
): void {
  checkFields(body, rules, upstream);
  const streamOptions = record(body.stream_options);
  if (streamOptions) checkFields(streamOptions, STREAM_OPTIONS_FIELDS, upstream, 'stream_options.');
}

/** One piece of message content, already checked. */
export type ContentPart =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'image'; readonly mimeType: string; readonly data: string }
  | { readonly kind: 'audio'; readonly format: string; readonly data: string };

/** The media type and base64 payload of a `data:<type>;base64,<data>` URL, or undefined. */
export function parseDataUrl(url: string): { mimeType: string; data: string } | undefined {
  const match = /^data:([^;,]+)((?:;[^;,]*)*);base64,(.*)$/s.exec(url);
  if (!match) return undefined;
  return { mimeType: (match[1] as string).toLowerCase(), data: match[3] as string };
}

function imagePart(part: JsonRecord, field: string, upstream: string): ContentPart {
  const url = record(part.image_url)?.url;
  if (typeof url !== 'string') throw new TranslationError(`${field}.image_url.url must be a string`);
  const parsed = parseDataUrl(url);
  if (!parsed)
    throw new TranslationError(
      `${field}.image_url: only base64 data: URLs can be sent to ${upstream}, not a link it would have to fetch`,
    );
  return { kind: 'image', ...parsed };
}

function audioPart(part: JsonRecord, field: string): ContentPart {
  const audio = record(part.input_audio);
  if (typeof audio?.data !== 'string' || typeof audio.format !== 'string')
    throw new TranslationError(`${field}.input_audio needs data and format`);
  return { kind: 'audio', format: audio.format, data: audio.data };
}

/**
 * Message content as parts: a string is one text part, null/absent none. `refusal` parts
 * (assistant history) are text the model said. Other part types (`file`, ...) are refused.
 */
export function contentParts(content: unknown, field: string, upstream: string): ContentPart[] {
  if (content === undefined || content === null) return [];
  if (typeof content === 'string') return [{ kind: 'text', text: content }];
  if (!Array.isArray(content)) throw new TranslationError(`${field} must be a string or an array of parts`);
  return content.map((value, i): ContentPart => {
    const at = `${field}[${i}]`;
    const part = record(value);
    if (part?.type === 'text' && typeof part.text === 'string') return { kind: 'text', text: part.text };
    if (part?.type === 'refusal' && typeof part.refusal === 'string')
      return { kind: 'text', text: part.refusal };
    if (part?.type === 'image_url') return imagePart(part, at, upstream);
    if (part?.type === 'input_audio') return audioPart(part, at);
    const type = typeof part?.type === 'string' ? part.type : 'unknown';
    throw new TranslationError(`${at}: content part type ${type} cannot be translated for ${upstream}`);
  });
}

/** The text of content that may only hold text (system, developer and tool messages). */
export function textContent(content: unknown, field: string, upstream: string): string {
  return contentParts(content, field, upstream)
    .map((part) => {
      if (part.kind !== 'text') throw new TranslationError(`${field} may only hold text parts`);
      return part.text;
    })
    .join('');
}

/** One assistant tool call from the history. */
export interface HistoryToolCall {
  readonly id: string;
  readonly name: string;
  /** The parsed arguments object. */
  readonly args: JsonRecord;
}

/** Parses a tool call's JSON arguments string into an object. */
export function parseArguments(raw: unknown, field: string): JsonRecord {
  if (raw === undefined || raw === null || raw === '') return {};
  if (typeof raw !== 'string') throw new TranslationError(`${field} must be a JSON string`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new TranslationError(`${field} is not valid JSON`);
  }
  if (!isRecord(parsed)) throw new TranslationError(`${field} must encode a JSON object`);
  return parsed;
}

/** The function tool calls of an assistant message (`custom` tool calls are refused). */
export function historyToolCalls(message: JsonRecord, field: string, upstream: string): HistoryToolCall[] {
  const calls = message.tool_calls;
  if (calls === undefined || calls === null) return [];
  if (!Array.isArray(calls)) throw new TranslationError(`${field}.tool_calls must be an array`);
  return calls.map((value, i) => {
    const at = `${field}.tool_calls[${i}]`;
    const call = record(value);
    const fn = record(call?.function);
    if (!call || (call.type !== undefined && call.type !== 'function') || !fn)
      throw new TranslationError(`${at}: only function tool calls can be translated for ${upstream}`);
    if (typeof call.id !== 'string' || typeof fn.name !== 'string')
      throw new TranslationError(`${at} needs an id and a function name`);
    return { id: call.id, name: fn.name, args: parseArguments(fn.arguments, `${at}.function.arguments`) };
  });
}

/** One function tool the client offers. */
export interface ToolDefinition {
  readonly name: string;
  readonly description?: string;
  readonly parameters?: JsonRecord;
}

/**
 * The client's function tools. `strict` is dropped: neither upstream has a switch for it,
 * and the schema itself is still sent. Non-function tools (`custom`) are refused.
 */
export function toolDefinitions(tools: unknown, upstream: string): ToolDefinition[] {
  if (!Array.isArray(tools)) return []; // absent: CHAT_FIELDS has refused any other type
  return tools.map((value, i) => {
    const tool = record(value);
    const fn = record(tool?.function);
    if (tool?.type !== 'function' || !fn || typeof fn.name !== 'string')
      throw new TranslationError(`tools[${i}]: only function tools can be translated for ${upstream}`);
    const parameters = record(fn.parameters);
    return {
      name: fn.name,
      ...(typeof fn.description === 'string' ? { description: fn.description } : {}),
      ...(parameters ? { parameters } : {}),
    };
  });
}

/** `stop` as a list (OpenAI allows one string or up to four), which CHAT_FIELDS has type-checked. */
export function stopSequences(value: unknown): string[] | undefined {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? (value as string[]) : undefined;
}

/** The output cap: the smaller of `max_completion_tokens` and `max_tokens` when both are set. */
export function maxOutputTokens(body: JsonBody): number | undefined {
  let cap: number | undefined;
  for (const field of ['max_completion_tokens', 'max_tokens']) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    // The field rules have checked it is an integer.
    if (typeof value !== 'number' || value < 1)
      throw new TranslationError(`${field} must be a positive integer`);
    cap = cap === undefined ? value : Math.min(cap, value);
  }
  return cap;
}

/** A number field the field rules have type-checked, or undefined when absent. */
export function numberField(body: JsonBody, field: string): number | undefined {
  const value = body[field];
  return typeof value === 'number' ? value : undefined;
}

/** `n`, the number of choices asked for (1 when absent). */
export function choiceCount(body: JsonBody): number {
  const n = numberField(body, 'n') ?? 1;
  if (n < 1) throw new TranslationError('n must be a positive integer');
  return n;
}

/** `response_format`, read: none/text, JSON object mode, or a JSON schema. */
export type ResponseFormat =
  | { readonly kind: 'text' }
  | { readonly kind: 'json' }
  | { readonly kind: 'schema'; readonly schema: JsonRecord };

export function responseFormat(value: unknown): ResponseFormat {
  if (value === undefined || value === null) return { kind: 'text' };
  const format = record(value);
  if (format?.type === 'text') return { kind: 'text' };
  if (format?.type === 'json_object') return { kind: 'json' };
  if (format?.type === 'json_schema') {
    const schema = record(record(format.json_schema)?.schema);
    if (!schema) throw new TranslationError('response_format.json_schema.schema must be an object');
    return { kind: 'schema', schema };
  }
  throw new TranslationError('response_format type cannot be translated');
}

/** The `messages` array, each a JSON object. */
export function messagesOf(body: JsonBody): JsonRecord[] {
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0)
    throw new TranslationError('messages must be a non-empty array');
  return messages.map((m, i) => {
    if (!isRecord(m) || typeof m.role !== 'string')
      throw new TranslationError(`messages[${i}] must be an object with a role`);
    return m;
  });
}
