/**
 * The Anthropic Messages dialect: `POST /v1/messages`, as JSON or as SSE with named events.
 * `/v1/messages/count_tokens`, batches and model listings are unmetered routes.
 *
 * Usage: `input_tokens` excludes the prompt cache, so metered input is
 * `input_tokens + cache_creation_input_tokens + cache_read_input_tokens`, with the cache
 * read as `cachedInput` and the cache write as `cacheWrite`. In a stream, `message_start`
 * carries the input counts and a placeholder output count (ignored: a stream cut off
 * after it reports no output rather than a wrong one), and each `message_delta` carries
 * cumulative totals whose non-null fields overwrite, never add.
 */
import type { Usage } from '../usage/usage.js';
import { count } from '../usage/usage.js';
import { positiveField } from './cap-fields.js';
import type { Dialect, DialectRoute } from './dialect.js';
import { errorMessage, isRecord, parseJson, record, text, type JsonRecord } from './json-value.js';
import { observation } from './observation.js';
import { promptFieldError, unset } from './prompt-fields.js';
import { addMediaSlot, estimateWithMedia, type MediaSlots } from './prompt-size.js';

const MESSAGES: DialectRoute = { endpoint: 'messages', metered: true };
const COUNT_TOKENS: DialectRoute = { endpoint: 'count_tokens', metered: false };
const MESSAGES_OTHER: DialectRoute = { endpoint: 'messages.other', metered: false };
const MODELS: DialectRoute = { endpoint: 'models', metered: false, fallback: true };
const OTHER: DialectRoute = { endpoint: 'other', metered: false, fallback: true };

const IMAGE_BLOCKS = new Set(['image']);

/** True when a content block list (or a tool result inside it) holds an image. */
function blocksHaveImage(content: unknown): boolean {
  if (!Array.isArray(content)) return false;
  return content.some(
    (block) =>
      isRecord(block) &&
      (IMAGE_BLOCKS.has(block.type as string) ||
        (block.type === 'tool_result' && blocksHaveImage(block.content))),
  );
}

/** Adds the base64 and URL sources of image and document blocks (also inside tool results) to `slots`. */
function addBlockMedia(content: unknown, slots: MediaSlots): void {
  if (!Array.isArray(content)) return;
  for (const block of content) {
    if (!isRecord(block)) continue;
    if (block.type === 'tool_result') addBlockMedia(block.content, slots);
    const source = record(block.source);
    if (block.type !== 'image' && block.type !== 'document') continue;
    if (source?.type === 'base64') addMediaSlot(slots, source, 'data', source.media_type);
    else if (source?.type === 'url') addMediaSlot(slots, source, 'url');
  }
}

/**
 * Normalised usage from an Anthropic usage object. `final` is false for `message_start`
 * (placeholder output); `delta` marks a `message_delta`, where null fields mean "unchanged".
 */
export function anthropicUsage(value: unknown, kind: 'final' | 'start' | 'delta'): Usage | undefined {
  const u = record(value);
  if (!u) return undefined;
  const usage: Usage = {};
  const base = count(u.input_tokens);
  const write = count(u.cache_creation_input_tokens);
  const read = count(u.cache_read_input_tokens);
  // In a delta a null cache field means "unchanged", so the sum is known only when all are there.
  const inputKnown =
    kind === 'delta' ? base !== undefined && write !== undefined && read !== undefined : base !== undefined;
  if (inputKnown) usage.input = (base ?? 0) + (write ?? 0) + (read ?? 0);
  if (write !== undefined) usage.cacheWrite = write;
  if (read !== undefined) usage.cachedInput = read;
  if (kind !== 'start') {
    const output = count(u.output_tokens);
    if (output !== undefined) usage.output = output;
    const thinking = count(record(u.output_tokens_details)?.thinking_tokens);
    if (thinking !== undefined) usage.reasoning = thinking;
  }
  return Object.keys(usage).length > 0 ? usage : undefined;
}

function normalise(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** The Anthropic Messages dialect. */
export const anthropic: Dialect = {
  name: 'anthropic',
  errorStyle: 'anthropic',
  lowercaseKeys: true,
  streamFormat: 'sse',

  match(method, rawPath) {
    const path = normalise(rawPath);
    if (path === '/v1/messages') return method === 'POST' ? MESSAGES : MESSAGES_OTHER;
    if (path === '/v1/messages/count_tokens') return COUNT_TOKENS;
    if (path.startsWith('/v1/messages/')) return MESSAGES_OTHER;
    if (path === '/v1/models' || path.startsWith('/v1/models/')) return MODELS;
    if (path.startsWith('/v1/')) return OTHER;
    return undefined;
  },

  readModel(req) {
    return text(req.body?.model);
  },
  rewriteModel(req, _route, model) {
    if (req.body) req.body.model = model;
  },

  injectSystemPrompt(req, route, prompt) {
    const b = req.body;
    if (!b || route !== MESSAGES) return;
    if (typeof b.system === 'string' && b.system !== '') b.system = `${prompt}\n\n${b.system}`;
    else if (Array.isArray(b.system)) b.system.unshift({ type: 'text', text: prompt });
    else if (unset(b.system)) b.system = prompt;
    else throw promptFieldError('system', 'a string or an array of text blocks', b.system);
  },

  estimatePromptTokens(req, route) {
    const b = req.body;
    if (!b || (route !== MESSAGES && route !== COUNT_TOKENS)) return 0;
    const slots: MediaSlots = new Map();
    if (Array.isArray(b.messages)) for (const m of b.messages) addBlockMedia(record(m)?.content, slots);
    return estimateWithMedia(slots, b.system, b.messages, b.tools);
  },

  hasImageInput(req) {
    const messages = req.body?.messages;
    return Array.isArray(messages) && messages.some((m) => isRecord(m) && blocksHaveImage(m.content));
  },

  readMaxOutput(req, route) {
    return route === MESSAGES ? positiveField('max_tokens', req.body?.max_tokens) : undefined;
  },
  setMaxOutput(req, route, tokens) {
    if (req.body && route === MESSAGES) req.body.max_tokens = tokens;
  },

  isStream(req) {
    return req.body?.stream === true;
  },

  usageFromJson(json) {
    const b = record(json);
    if (!b) return undefined;
    if (b.type === 'error') return observation(undefined, undefined, errorMessage(b.error) ?? 'error');
    return observation(anthropicUsage(b.usage, 'final'), b.model, undefined);
  },

  usageHint(event) {
    const name = event.event;
    if (name === 'message_start' || name === 'message_delta' || name === 'error') return true;
    if (name !== '') return false;
    // Some relays drop `event:` lines; the type is then only in the data.
    const data = event.data;
    return data.includes('"message_start"') || data.includes('"message_delta"') || data.includes('"error"');
  },

  usageFromEvent(event) {
    const obj = record(parseJson(event.data));
    if (!obj) return undefined;
    const type = obj.type;
    if (type === 'message_start') {
      const message: JsonRecord | undefined = record(obj.message);
      return observation(anthropicUsage(message?.usage, 'start'), message?.model, undefined);
    }
    if (type === 'message_delta')
      return observation(anthropicUsage(obj.usage, 'delta'), undefined, undefined);
    if (type === 'error' || event.event === 'error') {
      return observation(undefined, undefined, errorMessage(obj.error) ?? 'stream error');
    }
    return undefined;
  },

  textFromEvent(event) {
    if (event.event !== 'content_block_delta' && event.event !== '') return '';
    const delta = record(record(parseJson(event.data))?.delta);
    if (!delta) return '';
    if (typeof delta.text === 'string') return delta.text;
    if (typeof delta.thinking === 'string') return delta.thinking;
    if (typeof delta.partial_json === 'string') return delta.partial_json;
    return '';
  },

  cutoffEvent(_route, reason, usage) {
    const delta = {
      type: 'message_delta',
      delta: { stop_reason: 'max_tokens', stop_sequence: null },
      usage: { output_tokens: usage?.output ?? 0 },
      lanekeeper_cutoff: { reason },
    };
    return (
      `event: message_delta\ndata: ${JSON.stringify(delta)}\n\n` +
      `event: message_stop\ndata: {"type":"message_stop"}\n\n`
    );
  },
};
