/**
 * An Anthropic Messages request body as an OpenAI Chat Completions body.
 *
 * `max_tokens` becomes `max_completion_tokens`, the name OpenAI's current models require.
 * A stream asks for `stream_options.include_usage`, so the closing `message_delta` can carry
 * real counts. `output_config.format` (and the older `output_format`) json_schema becomes a
 * strict `response_format` json_schema, the same constraint in OpenAI's words.
 *
 * Dropped, because they do not change the answer: the top-level `cache_control` (a caching
 * hint), `service_tier`, `speed`, `diagnostics`, `thinking` when disabled, and the
 * per-block hints listed in anthropic-openai-messages.ts.
 *
 * Refused, because OpenAI has no equivalent: `top_k`, enabled `thinking`,
 * `output_config.effort`, `container`, `mcp_servers`, `context_management`,
 * `inference_geo` (a residency promise we cannot keep), `user_profile_id`,
 * `workspace_id`, and server tools (web search, code execution, computer use...).
 */
import type { JsonBody } from '../dialects/dialect.js';
import { record, text } from '../dialects/json-value.js';
import { openaiMessages } from './anthropic-openai-messages.js';
import {
  arrayOf,
  boolean,
  checkFields,
  integer,
  limited,
  number,
  object,
  oneOf,
  string,
  stringArray,
  type FieldRule,
} from './field-rules.js';
import { TranslationError } from './translator.js';

type Json = Record<string, unknown>;

const UPSTREAM = 'an OpenAI upstream';

const FIELDS: Record<string, FieldRule> = {
  model: string,
  max_tokens: integer,
  messages: arrayOf(object),
  system: oneOf(string, arrayOf(object)),
  stop_sequences: stringArray,
  stream: boolean,
  temperature: number,
  top_p: number,
  tools: arrayOf(object),
  tool_choice: object,
  metadata: object,
  output_config: object,
  output_format: object,
  thinking: limited(object, (value) =>
    record(value)?.type === 'disabled' ? undefined : 'OpenAI chat models take no thinking budget',
  ),
  // Dropped: they do not change the answer.
  cache_control: object,
  service_tier: string,
  speed: string,
  diagnostics: object,
  top_k: 'refused',
  container: 'refused',
  mcp_servers: 'refused',
  context_management: 'refused',
  inference_geo: 'refused',
  user_profile_id: 'refused',
  workspace_id: 'refused',
};

const METADATA_FIELDS: Record<string, FieldRule> = { user_id: string };
const OUTPUT_CONFIG_FIELDS: Record<string, FieldRule> = { format: object, effort: 'refused' };
const TOOL_CHOICE_FIELDS: Record<string, FieldRule> = {
  type: string,
  name: string,
  disable_parallel_tool_use: boolean,
};

function maxTokens(value: unknown): number {
  // FIELDS has checked it is an integer when present; Anthropic requires it, and at least 1.
  if (typeof value !== 'number' || value < 1) {
    throw new TranslationError('field "max_tokens" must be a positive integer');
  }
  return value;
}

function openaiTools(tools: readonly unknown[]): Json[] {
  return tools.map((tool, i) => {
    const t = record(tool);
    const custom = t?.type === undefined || t.type === null || t.type === 'custom';
    const name = text(t?.name);
    if (!t || !custom || !record(t.input_schema)) {
      throw new TranslationError(
        `tools[${i}].type ${JSON.stringify(t?.type ?? null)} cannot be translated for ${UPSTREAM} (only custom tools)`,
      );
    }
    if (!name) throw new TranslationError(`tools[${i}].name is missing`);
    const fn: Json = { name, parameters: t.input_schema };
    if (typeof t.description === 'string') fn.description = t.description;
    if (t.strict === true) fn.strict = true;
    return { type: 'function', function: fn };
  });
}

/** OpenAI's tool_choice for Anthropic's: auto/any/tool/none become auto/required/named/none. */
function openaiToolChoice(c: Json | undefined): unknown {
  if (!c) return undefined;
  checkFields(c, TOOL_CHOICE_FIELDS, UPSTREAM, 'tool_choice.');
  switch (c.type) {
    case undefined:
    case null:
      throw new TranslationError('field "tool_choice.type" is missing');
    case 'auto':
      return 'auto';
    case 'any':
      return 'required';
    case 'none':
      return 'none';
    case 'tool': {
      const name = text(c.name);
      if (!name) throw new TranslationError('field "tool_choice.name" is missing');
      return { type: 'function', function: { name } };
    }
    default:
      throw new TranslationError(
        `field "tool_choice" of type ${JSON.stringify(c.type)} cannot be translated`,
      );
  }
}

/** A strict json_schema `response_format` for Anthropic's output format. */
function responseFormat(body: JsonBody): Json | undefined {
  const config = record(body.output_config);
  if (config) checkFields(config, OUTPUT_CONFIG_FIELDS, UPSTREAM, 'output_config.');
  const field = record(config?.format) ? 'output_config.format' : 'output_format';
  const format = record(config?.format) ?? record(body.output_format);
  if (!format) return undefined;
  const schema = record(format.schema);
  if (format.type !== 'json_schema' || !schema) {
    throw new TranslationError(`field "${field}" must be a json_schema with a schema for ${UPSTREAM}`);
  }
  return { type: 'json_schema', json_schema: { name: 'output', schema, strict: true } };
}

function put(out: Json, key: string, value: unknown): void {
  if (value !== undefined && value !== null) out[key] = value;
}

/** The OpenAI chat body for an Anthropic Messages request; throws TranslationError naming what cannot be sent. */
export function openaiRequestFromAnthropic(body: JsonBody, model: string): JsonBody {
  checkFields(body, FIELDS, UPSTREAM);
  const metadata = record(body.metadata);
  if (metadata) checkFields(metadata, METADATA_FIELDS, UPSTREAM, 'metadata.');
  const out: JsonBody = {
    model,
    messages: openaiMessages(body.system, body.messages),
    max_completion_tokens: maxTokens(body.max_tokens),
  };
  put(out, 'temperature', body.temperature);
  put(out, 'top_p', body.top_p);
  if (Array.isArray(body.stop_sequences) && body.stop_sequences.length > 0) out.stop = body.stop_sequences;
  if (body.stream === true) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  const choice = record(body.tool_choice);
  const tools = Array.isArray(body.tools) ? body.tools : [];
  const hasTools = tools.length > 0;
  if (hasTools) {
    out.tools = openaiTools(tools);
    if (choice?.disable_parallel_tool_use === true) out.parallel_tool_calls = false;
  }
  const openaiChoice = openaiToolChoice(choice);
  // OpenAI rejects tool_choice without tools; auto and none then mean nothing anyway.
  if (hasTools || (openaiChoice !== 'auto' && openaiChoice !== 'none')) put(out, 'tool_choice', openaiChoice);
  put(out, 'user', text(metadata?.user_id));
  put(out, 'response_format', responseFormat(body));
  return out;
}
