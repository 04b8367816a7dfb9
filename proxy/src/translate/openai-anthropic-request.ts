/**
 * An OpenAI Chat Completions request body as an Anthropic Messages body.
 *
 * `stream_options` is not sent: Anthropic streams always carry usage, and the client's
 * `include_usage` reaches the stream translator separately.
 *
 * Dropped, because they do not change the answer: `store` and `metadata` (OpenAI's
 * stored-completions dashboard), `prompt_cache_key` and `prompt_cache_retention` (cache
 * routing hints), `seed` (best-effort determinism only), `service_tier` "auto"/"default",
 * and each message's `name` and image `detail`. Like every accepted field, each must still
 * have the type OpenAI documents (FIELDS), so a malformed request is refused, not half-read.
 *
 * Refused, because Anthropic has no equivalent: `n` above 1, `logprobs`, `top_logprobs`,
 * `logit_bias`, `frequency_penalty`/`presence_penalty` other than 0, `audio`, `modalities`
 * other than text, `prediction`, `reasoning_effort`, `verbosity`, `web_search_options`,
 * the legacy `functions`/`function_call`, a `temperature` above Anthropic's 1, and
 * `response_format` json_object (Anthropic's structured output needs a schema).
 * `response_format` json_schema maps to Anthropic's `output_config.format`, which
 * constrains the answer to the schema as OpenAI's strict mode does.
 */
import { record, text } from '../dialects/json-value.js';
import type { JsonBody } from '../dialects/dialect.js';
import {
  arrayOf,
  boolean,
  integer,
  limited,
  number,
  object,
  oneOf,
  onlyDefault,
  string,
  stringArray,
  type FieldRule,
} from './field-rules.js';
import { anthropicConversation } from './openai-anthropic-messages.js';
import { TOOL_CHOICE, checkOpenAiFields } from './openai-chat-request.js';
import { TranslationError } from './translator.js';

type Json = Record<string, unknown>;

/** Anthropic requires `max_tokens`; this is the cap when the OpenAI client sets none. */
export const DEFAULT_MAX_TOKENS = 4096;

const UPSTREAM = 'an Anthropic upstream';

const FIELDS: Record<string, FieldRule> = {
  model: string,
  messages: arrayOf(object),
  max_tokens: integer,
  max_completion_tokens: integer,
  temperature: number,
  top_p: number,
  stop: oneOf(string, stringArray),
  stream: boolean,
  stream_options: object,
  tools: arrayOf(object),
  tool_choice: TOOL_CHOICE,
  parallel_tool_calls: boolean,
  user: string,
  safety_identifier: string,
  response_format: object,
  n: limited(integer, (value) => (value === 1 ? undefined : 'Anthropic answers with exactly one choice')),
  // Dropped: they do not change the answer.
  store: boolean,
  metadata: object,
  prompt_cache_key: string,
  prompt_cache_retention: string,
  seed: integer,
  service_tier: onlyDefault('auto', 'default'),
  logprobs: onlyDefault(false),
  top_logprobs: 'refused',
  logit_bias: onlyDefault({}),
  frequency_penalty: onlyDefault(0),
  presence_penalty: onlyDefault(0),
  audio: 'refused',
  modalities: onlyDefault(['text']),
  prediction: 'refused',
  reasoning_effort: 'refused',
  verbosity: 'refused',
  web_search_options: 'refused',
  functions: 'refused',
  function_call: 'refused',
};

/** The smallest of the client's caps (both may be set), or the default. */
function maxTokens(body: JsonBody): number {
  let cap: number | undefined;
  for (const field of ['max_completion_tokens', 'max_tokens']) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    // FIELDS has checked it is an integer.
    if (typeof value !== 'number' || value < 1) {
      throw new TranslationError(`field "${field}" must be a positive integer`);
    }
    cap = cap === undefined ? value : Math.min(cap, value);
  }
  return cap ?? DEFAULT_MAX_TOKENS;
}

/** `stop` as a list, which FIELDS has checked is a string or an array of strings. */
function stopSequences(stop: unknown): string[] | undefined {
  const list: unknown[] = typeof stop === 'string' ? [stop] : Array.isArray(stop) ? stop : [];
  return list.length > 0 ? (list as string[]) : undefined;
}

function anthropicTools(tools: readonly unknown[]): Json[] {
  return tools.map((tool, i) => {
    const t = record(tool);
    const fn = record(t?.function);
    if (t?.type !== 'function' || !fn) {
      throw new TranslationError(
        `tools[${i}].type ${JSON.stringify(t?.type ?? null)} cannot be translated for ${UPSTREAM}`,
      );
    }
    const name = text(fn.name);
    if (!name) throw new TranslationError(`tools[${i}].function.name is missing`);
    const out: Json = { name, input_schema: record(fn.parameters) ?? { type: 'object', properties: {} } };
    if (typeof fn.description === 'string') out.description = fn.description;
    if (fn.strict === true) out.strict = true;
    return out;
  });
}

/** Anthropic's tool_choice: auto/none/required/named become auto/none/any/tool. */
function anthropicToolChoice(choice: unknown, parallel: unknown): Json | undefined {
  let out: Json | undefined;
  if (choice === 'auto') out = { type: 'auto' };
  else if (choice === 'none') out = { type: 'none' };
  else if (choice === 'required') out = { type: 'any' };
  else if (choice !== undefined && choice !== null) {
    const c = record(choice);
    const name = c?.type === 'function' ? text(record(c.function)?.name) : undefined;
    if (!name)
      throw new TranslationError(`field "tool_choice" of this form cannot be translated for ${UPSTREAM}`);
    out = { type: 'tool', name };
  }
  // OpenAI's parallel_tool_calls:false is Anthropic's disable_parallel_tool_use on the choice.
  if (parallel === false && out?.type !== 'none')
    out = { ...(out ?? { type: 'auto' }), disable_parallel_tool_use: true };
  return out;
}

/** `output_config` for `response_format`: text needs none, json_schema maps, json_object is refused. */
function outputConfig(format: unknown): Json | undefined {
  const f = record(format);
  if (f === undefined || f.type === 'text') return undefined;
  if (f.type === 'json_schema') {
    const schema = record(record(f.json_schema)?.schema);
    if (!schema) throw new TranslationError('field "response_format.json_schema.schema" is missing');
    return { format: { type: 'json_schema', schema } };
  }
  throw new TranslationError(
    `field "response_format" of type ${JSON.stringify(f.type ?? null)} has no equivalent in ${UPSTREAM}; use json_schema`,
  );
}

function temperature(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || value < 0 || value > 1) {
    throw new TranslationError(`field "temperature" must be between 0 and 1 for ${UPSTREAM}`);
  }
  return value;
}

/** Sets `key` only when the value is defined, so the upstream body has no undefined holes. */
function put(out: Json, key: string, value: unknown): void {
  if (value !== undefined && value !== null) out[key] = value;
}

/** The Anthropic Messages body for an OpenAI chat request; throws TranslationError naming what cannot be sent. */
export function anthropicRequestFromOpenai(body: JsonBody, model: string): JsonBody {
  checkOpenAiFields(body, UPSTREAM, FIELDS);
  const { system, messages } = anthropicConversation(body.messages);
  const out: JsonBody = { model, max_tokens: maxTokens(body), messages };
  if (system.length > 0) out.system = system;
  put(out, 'temperature', temperature(body.temperature));
  put(out, 'top_p', body.top_p);
  put(out, 'stop_sequences', stopSequences(body.stop));
  if (body.stream === true) out.stream = true;
  const tools = Array.isArray(body.tools) ? body.tools : [];
  const hasTools = tools.length > 0;
  if (hasTools) out.tools = anthropicTools(tools);
  const choice = anthropicToolChoice(body.tool_choice, body.parallel_tool_calls);
  // A choice without tools only matters when it demands a call, which Anthropic then rejects itself.
  if (choice && (hasTools || (choice.type !== 'auto' && choice.type !== 'none'))) out.tool_choice = choice;
  const user = text(body.user) ?? text(body.safety_identifier);
  if (user) out.metadata = { user_id: user };
  put(out, 'output_config', outputConfig(body.response_format));
  return out;
}
