/**
 * Anthropic's `system` plus `messages[]` as OpenAI chat `messages[]`.
 *
 * - `system` (a string or text blocks) becomes the first system message; a `role:"system"`
 *   message inside `messages` stays where it is.
 * - `tool_result` blocks become `role:"tool"` messages placed before the rest of their user
 *   message, since OpenAI wants each result right after the assistant's tool calls.
 * - `tool_use` blocks become the assistant's `tool_calls`, input serialised as arguments.
 * - Dropped: `cache_control` and `citations` (caching hints and source markers), thinking
 *   blocks of earlier turns (Chat Completions takes no reasoning back), and a tool result's
 *   `is_error` (OpenAI has no flag; the result text still says what went wrong).
 */
import { record, text } from '../dialects/json-value.js';
import { openaiUrlFromImage } from './image-sources.js';
import { TranslationError } from './translator.js';

type Json = Record<string, unknown>;

const UPSTREAM = 'an OpenAI upstream';

function cannot(where: string, type: unknown): TranslationError {
  return new TranslationError(
    `${where}.type ${JSON.stringify(type ?? null)} cannot be translated for ${UPSTREAM}`,
  );
}

/** Text-only Anthropic content (system, tool results) as an OpenAI string or text parts. */
function textContent(content: unknown, where: string): string | Json[] {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw new TranslationError(`${where} must be a string or an array`);
  const parts = content.map((entry, j) => {
    const block = record(entry);
    if (block?.type !== 'text' || typeof block.text !== 'string') throw cannot(`${where}[${j}]`, block?.type);
    return { type: 'text', text: block.text };
  });
  return parts.length === 1 ? (parts[0] as { text: string }).text : parts;
}

/** The system message for Anthropic's top-level `system`, or undefined for none. */
export function openaiSystemMessage(system: unknown): Json | undefined {
  if (system === undefined || system === null || system === '') return undefined;
  const content = textContent(system, 'system');
  return Array.isArray(content) && content.length === 0 ? undefined : { role: 'system', content };
}

function userPart(block: Json, where: string): Json {
  if (block.type === 'text' && typeof block.text === 'string') return { type: 'text', text: block.text };
  if (block.type === 'image') {
    return { type: 'image_url', image_url: { url: openaiUrlFromImage(block.source, where) } };
  }
  throw cannot(where, block.type);
}

/** One user message: its tool results as tool messages first, then what the user said. */
function userMessages(content: unknown, where: string): Json[] {
  if (typeof content === 'string') return [{ role: 'user', content }];
  if (!Array.isArray(content)) throw new TranslationError(`${where}.content must be a string or an array`);
  const tools: Json[] = [];
  const parts: Json[] = [];
  content.forEach((entry, j) => {
    const block = record(entry);
    const at = `${where}.content[${j}]`;
    if (!block) throw new TranslationError(`${at} must be an object`);
    if (block.type !== 'tool_result') {
      parts.push(userPart(block, at));
      return;
    }
    const id = text(block.tool_use_id);
    if (!id) throw new TranslationError(`${at}.tool_use_id is missing`);
    const result = block.content === undefined ? '' : textContent(block.content, `${at}.content`);
    tools.push({ role: 'tool', tool_call_id: id, content: result });
  });
  return parts.length > 0 ? [...tools, { role: 'user', content: parts }] : tools;
}

function assistantMessage(content: unknown, where: string): Json {
  if (typeof content === 'string') return { role: 'assistant', content };
  if (!Array.isArray(content)) throw new TranslationError(`${where}.content must be a string or an array`);
  let said = '';
  const calls: Json[] = [];
  content.forEach((entry, j) => {
    const block = record(entry);
    const at = `${where}.content[${j}]`;
    switch (block?.type) {
      case 'text':
        said += typeof block.text === 'string' ? block.text : '';
        return;
      case 'tool_use': {
        const id = text(block.id);
        const name = text(block.name);
        if (!id || !name) throw new TranslationError(`${at} needs an id and a name`);
        calls.push({
          id,
          type: 'function',
          function: { name, arguments: JSON.stringify(block.input ?? {}) },
        });
        return;
      }
      case 'thinking':
      case 'redacted_thinking':
        return;
      default:
        throw cannot(at, block?.type);
    }
  });
  const message: Json = { role: 'assistant', content: said === '' && calls.length > 0 ? null : said };
  if (calls.length > 0) message.tool_calls = calls;
  return message;
}

/** Translates Anthropic `system` and `messages[]`; throws TranslationError naming the first block that cannot be. */
export function openaiMessages(system: unknown, value: unknown): Json[] {
  if (!Array.isArray(value)) throw new TranslationError('field "messages" must be an array');
  const first = openaiSystemMessage(system);
  const out: Json[] = first ? [first] : [];
  value.forEach((entry, i) => {
    const where = `messages[${i}]`;
    const msg = record(entry);
    if (!msg) throw new TranslationError(`${where} must be an object`);
    if (msg.role === 'user') out.push(...userMessages(msg.content, where));
    else if (msg.role === 'assistant') out.push(assistantMessage(msg.content, where));
    else if (msg.role === 'system')
      out.push({ role: 'system', content: textContent(msg.content, `${where}.content`) });
    else throw new TranslationError(`${where}.role ${JSON.stringify(msg.role ?? null)} cannot be translated`);
  });
  return out;
}
