/**
 * OpenAI chat `messages[]` as Anthropic's top-level `system` plus `messages[]`.
 *
 * - system and developer messages, wherever they stand, become `system` text blocks in
 *   order (Anthropic's `system` is the one place every API version reads).
 * - assistant `tool_calls` become `tool_use` blocks after the assistant's text.
 * - `role:"tool"` messages become `tool_result` blocks, consecutive ones merged into one
 *   user message, as Anthropic expects all results of one turn together.
 * - Images become `image` blocks (see image-sources.ts); a `file` part with an inline PDF
 *   becomes a `document` block. Audio and uploaded files (`file_id`) are refused.
 * - A message's `name` and an image's `detail` are dropped: Anthropic has no field for
 *   either, and neither changes what was said.
 */
import { isRecord, parseJson, record, text } from '../dialects/json-value.js';
import { arrayOf, checkFields, object, oneOf, string, type FieldRule } from './field-rules.js';
import { anthropicDocumentFromFile, anthropicImageFromUrl } from './image-sources.js';
import { TranslationError } from './translator.js';

type Json = Record<string, unknown>;

const UPSTREAM = 'an Anthropic upstream';

const CONTENT = oneOf(string, arrayOf(object));
/** `name` is dropped: Anthropic has no field for it. */
const SYSTEM_FIELDS: Record<string, FieldRule> = { role: string, content: CONTENT, name: string };
const USER_FIELDS = SYSTEM_FIELDS;
const ASSISTANT_FIELDS: Record<string, FieldRule> = {
  ...SYSTEM_FIELDS,
  tool_calls: arrayOf(object),
  refusal: string,
  audio: 'refused',
  function_call: 'refused',
};
const TOOL_FIELDS: Record<string, FieldRule> = { role: string, content: CONTENT, tool_call_id: string };

/** The translated conversation. */
export interface AnthropicConversation {
  readonly system: Json[];
  readonly messages: Json[];
}

/** Anthropic text blocks for OpenAI content that may only hold text (system, tool). Empty strings are skipped: Anthropic refuses empty text blocks. */
function textBlocks(content: unknown, where: string): Json[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  if (!Array.isArray(content)) throw new TranslationError(`${where}.content must be a string or an array`);
  return content.map((part, j) => {
    const p = record(part);
    if (p?.type !== 'text' || typeof p.text !== 'string') {
      throw new TranslationError(`${where}.content[${j}] must be a text part for ${UPSTREAM}`);
    }
    return { type: 'text', text: p.text };
  });
}

/** One user content part as an Anthropic block. */
function userBlock(part: unknown, where: string): Json {
  const p = record(part);
  switch (p?.type) {
    case 'text':
      if (typeof p.text !== 'string') throw new TranslationError(`${where}.text must be a string`);
      return { type: 'text', text: p.text };
    case 'image_url':
      return anthropicImageFromUrl(record(p.image_url)?.url, where);
    case 'file':
      return anthropicDocumentFromFile(p.file, where);
    default:
      throw new TranslationError(
        `${where}.type ${JSON.stringify(p?.type ?? null)} cannot be translated for ${UPSTREAM}`,
      );
  }
}

function userContent(content: unknown, where: string): unknown {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw new TranslationError(`${where}.content must be a string or an array`);
  return content.map((part, j) => userBlock(part, `${where}.content[${j}]`));
}

/** The JSON object in a tool call's `arguments` string ("" reads as no arguments). */
function toolInput(args: unknown, where: string): Json {
  if (args === undefined || args === null || args === '') return {};
  const parsed: unknown = typeof args === 'string' ? parseJson(args) : undefined;
  if (!isRecord(parsed)) {
    throw new TranslationError(`${where}.function.arguments must be a JSON object for ${UPSTREAM}`);
  }
  return parsed;
}

function toolUseBlock(call: unknown, where: string): Json {
  const c = record(call);
  if (c?.type !== undefined && c.type !== 'function') {
    throw new TranslationError(
      `${where}.type ${JSON.stringify(c.type)} cannot be translated for ${UPSTREAM}`,
    );
  }
  const fn = record(c?.function);
  const id = text(c?.id);
  const name = text(fn?.name);
  if (!id || !name) throw new TranslationError(`${where} needs an id and a function name`);
  return { type: 'tool_use', id, name, input: toolInput(fn?.arguments, where) };
}

/** Assistant text (content parts, or a refusal) then its tool calls, as Anthropic blocks; a lone string stays a string. */
function assistantContent(msg: Json, where: string): unknown {
  const calls = Array.isArray(msg.tool_calls) ? msg.tool_calls : [];
  const refusal = text(msg.refusal);
  if (typeof msg.content === 'string' && calls.length === 0 && !refusal) return msg.content;
  const blocks: Json[] = [];
  if (Array.isArray(msg.content)) {
    msg.content.forEach((part, j) => {
      const p = record(part);
      const value = p?.type === 'text' ? p.text : p?.type === 'refusal' ? p.refusal : undefined;
      if (typeof value !== 'string') {
        throw new TranslationError(`${where}.content[${j}] must be a text or refusal part for ${UPSTREAM}`);
      }
      if (value !== '') blocks.push({ type: 'text', text: value });
    });
  } else if (typeof msg.content === 'string' && msg.content !== '') {
    blocks.push({ type: 'text', text: msg.content });
  } else if (msg.content !== undefined && msg.content !== null && typeof msg.content !== 'string') {
    throw new TranslationError(`${where}.content must be a string or an array`);
  }
  if (refusal) blocks.push({ type: 'text', text: refusal });
  calls.forEach((call, j) => blocks.push(toolUseBlock(call, `${where}.tool_calls[${j}]`)));
  return blocks.length === 0 ? '' : blocks;
}

function toolResultBlock(msg: Json, where: string): Json {
  const id = text(msg.tool_call_id);
  if (!id) throw new TranslationError(`${where}.tool_call_id is missing`);
  const content = typeof msg.content === 'string' ? msg.content : textBlocks(msg.content, where);
  return { type: 'tool_result', tool_use_id: id, content };
}

/** Translates OpenAI `messages[]`; throws TranslationError naming the first message part that cannot be. */
export function anthropicConversation(value: unknown): AnthropicConversation {
  if (!Array.isArray(value)) throw new TranslationError('field "messages" must be an array');
  const system: Json[] = [];
  const messages: Json[] = [];
  /** The content of the user message the current run of tool results goes into. */
  let toolResults: Json[] | undefined;
  value.forEach((entry, i) => {
    const where = `messages[${i}]`;
    const msg = record(entry);
    if (!msg) throw new TranslationError(`${where} must be an object`);
    const role = msg.role;
    if (role !== 'tool') toolResults = undefined;
    switch (role) {
      case 'system':
      case 'developer':
        checkFields(msg, SYSTEM_FIELDS, UPSTREAM, `${where}.`);
        system.push(...textBlocks(msg.content, where));
        return;
      case 'user':
        checkFields(msg, USER_FIELDS, UPSTREAM, `${where}.`);
        messages.push({ role: 'user', content: userContent(msg.content, where) });
        return;
      case 'assistant':
        checkFields(msg, ASSISTANT_FIELDS, UPSTREAM, `${where}.`);
        messages.push({ role: 'assistant', content: assistantContent(msg, where) });
        return;
      case 'tool':
        checkFields(msg, TOOL_FIELDS, UPSTREAM, `${where}.`);
        if (!toolResults) {
          toolResults = [];
          messages.push({ role: 'user', content: toolResults });
        }
        toolResults.push(toolResultBlock(msg, where));
        return;
      default:
        throw new TranslationError(
          `${where}.role ${JSON.stringify(role ?? null)} cannot be translated for ${UPSTREAM}`,
        );
    }
  });
  return { system, messages };
}
