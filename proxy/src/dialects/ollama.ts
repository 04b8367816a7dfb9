/**
 * The Ollama native dialect: `/api/chat`, `/api/generate`, `/api/embed` and the legacy
 * `/api/embeddings`; every other `/api/*` path (tags, show, ps, pull...) is unmetered.
 * Ollama's OpenAI-compatible `/v1/*` is served by the OpenAI dialect (the registry falls
 * back to it when `ollama` is configured).
 *
 * Chat and generate STREAM BY DEFAULT: absent `stream` means true, as NDJSON (one JSON
 * object per line). Usage is on the final `done: true` object: `prompt_eval_count` is the
 * input and `eval_count` the output; `/api/embed` reports `prompt_eval_count`. An absent
 * count stays absent (Ollama omits `prompt_eval_count` when the whole prompt came from its
 * cache), so the meter estimates it instead of recording 0. Errors are `{"error":"text"}`,
 * also as a line in the middle of a stream.
 */
import type { Usage } from '../usage/usage.js';
import { count } from '../usage/usage.js';
import { positiveField } from './cap-fields.js';
import type { Dialect, DialectRoute, Observation } from './dialect.js';
import { errorMessage, isRecord, parseJson, record, text } from './json-value.js';
import { promptFieldError, unset } from './prompt-fields.js';
import { errorNearStart, valueAfterLastKey } from './hint.js';
import { addMediaSlot, estimateJsonTokens, estimateWithMedia, type MediaSlots } from './prompt-size.js';

const CHAT: DialectRoute = { endpoint: 'chat', metered: true };
const GENERATE: DialectRoute = { endpoint: 'generate', metered: true };
const EMBED: DialectRoute = { endpoint: 'embed', metered: true, generates: false };
const EMBEDDINGS: DialectRoute = { endpoint: 'embeddings', metered: true, generates: false };
const OTHER: DialectRoute = { endpoint: 'other', metered: false };
/** `t` of `true`, after the `"done":` key. */
const LETTER_T = 0x74;

function normalise(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** Normalised usage from a final (`done: true`) object or an embed response. */
export function ollamaUsage(obj: Record<string, unknown>, generates: boolean): Usage | undefined {
  const usage: Usage = {};
  const input = count(obj.prompt_eval_count);
  if (input !== undefined) usage.input = input;
  const output = count(obj.eval_count);
  if (output !== undefined) usage.output = output;
  else if (!generates && input !== undefined) usage.output = 0;
  return Object.keys(usage).length > 0 ? usage : undefined;
}

function observe(value: unknown, route: DialectRoute): Observation | undefined {
  const obj = record(value);
  if (!obj) return undefined;
  const obs: Observation = {};
  if (obj.error !== undefined && obj.error !== null) {
    const error = errorMessage(obj.error);
    if (error) obs.error = error;
  }
  const usage = ollamaUsage(obj, route.generates !== false);
  if (usage) obs.usage = usage;
  const model = text(obj.model);
  if (model) obs.model = model;
  return obs.usage || obs.model || obs.error ? obs : undefined;
}

function generates(route: DialectRoute): boolean {
  return route === CHAT || route === GENERATE;
}

/** The Ollama native dialect (NDJSON streams, streaming by default). */
export const ollama: Dialect = {
  name: 'ollama',
  errorStyle: 'ollama',
  lowercaseKeys: true,
  streamFormat: 'ndjson',

  match(method, rawPath) {
    const path = normalise(rawPath);
    if (!path.startsWith('/api/')) return undefined;
    if (method === 'POST') {
      if (path === '/api/chat') return CHAT;
      if (path === '/api/generate') return GENERATE;
      if (path === '/api/embed') return EMBED;
      if (path === '/api/embeddings') return EMBEDDINGS;
    }
    return OTHER;
  },

  readModel(req) {
    return text(req.body?.model);
  },
  rewriteModel(req, _route, model) {
    if (req.body) req.body.model = model;
  },

  injectSystemPrompt(req, route, prompt) {
    const b = req.body;
    if (!b) return;
    if (route === CHAT) {
      if (!Array.isArray(b.messages)) throw promptFieldError('messages', 'an array', b.messages);
      b.messages.unshift({ role: 'system', content: prompt });
    } else if (route === GENERATE) {
      if (!unset(b.system) && typeof b.system !== 'string')
        throw promptFieldError('system', 'a string', b.system);
      // Note: a `system` field replaces the Modelfile's SYSTEM prompt, so when the client
      // set none, the model's default system prompt is replaced by the injected one.
      b.system = typeof b.system === 'string' && b.system !== '' ? `${prompt}\n\n${b.system}` : prompt;
    }
  },

  promptBypass(req, route) {
    const b = req.body;
    if (!b || route !== GENERATE) return undefined;
    // raw sends the prompt without the template (where the system prompt goes); a template
    // of the client's own can leave it out.
    if (b.raw !== undefined && b.raw !== false && b.raw !== null) return 'raw';
    if (b.template !== undefined && b.template !== null && b.template !== '') return 'template';
    return undefined;
  },

  estimatePromptTokens(req, route) {
    const b = req.body;
    if (!b) return 0;
    // Ollama takes raw base64 images only, in `images` lists.
    const slots: MediaSlots = new Map();
    if (route === CHAT) {
      if (Array.isArray(b.messages)) {
        for (const m of b.messages) addMediaSlot(slots, record(m)?.images, undefined, 'image/*');
      }
      return estimateWithMedia(slots, b.messages, b.tools);
    }
    if (route === GENERATE) {
      addMediaSlot(slots, b.images, undefined, 'image/*');
      return estimateWithMedia(slots, b.system, b.prompt, b.suffix, b.images);
    }
    if (route === EMBED) return estimateJsonTokens(b.input);
    if (route === EMBEDDINGS) return estimateJsonTokens(b.prompt);
    return 0;
  },

  hasImageInput(req, route) {
    const b = req.body;
    if (!b) return false;
    if (route === GENERATE) return Array.isArray(b.images) && b.images.length > 0;
    if (route === CHAT && Array.isArray(b.messages)) {
      return b.messages.some((m) => isRecord(m) && Array.isArray(m.images) && m.images.length > 0);
    }
    return false;
  },

  readMaxOutput(req, route) {
    if (!generates(route)) return undefined;
    const predict = record(req.body?.options)?.num_predict;
    // -1 (unlimited) and -2 (fill the context) ask for no cap: the plan's applies.
    if (predict === -1 || predict === -2) return undefined;
    return positiveField('options.num_predict', predict);
  },
  setMaxOutput(req, route, tokens) {
    const b = req.body;
    if (!b || !generates(route)) return;
    // Ollama reads only options.num_predict; a top-level copy is dropped so no other
    // server behind this dialect can read a cap the proxy did not reserve.
    delete b.num_predict;
    const options = record(b.options);
    if (options) options.num_predict = tokens;
    else b.options = { num_predict: tokens };
  },

  isStream(req, route) {
    return generates(route) && req.body?.stream !== false;
  },

  usageFromJson(json, route) {
    return observe(json, route);
  },

  usageHint(event) {
    const data = event.data;
    return valueAfterLastKey(data, '"done"') === LETTER_T || errorNearStart(data);
  },

  usageFromEvent(event, route) {
    return observe(parseJson(event.data), route);
  },

  textFromEvent(event) {
    const obj = record(parseJson(event.data));
    if (!obj) return '';
    let out = typeof obj.response === 'string' ? obj.response : '';
    if (typeof obj.thinking === 'string') out += obj.thinking;
    const message = record(obj.message);
    if (message) {
      if (typeof message.content === 'string') out += message.content;
      if (typeof message.thinking === 'string') out += message.thinking;
      if (Array.isArray(message.tool_calls)) out += JSON.stringify(message.tool_calls);
    }
    return out;
  },

  cutoffEvent(route, reason, usage) {
    const line: Record<string, unknown> = {
      model: '',
      created_at: new Date(0).toISOString(),
      ...(route === CHAT ? { message: { role: 'assistant', content: '' } } : { response: '' }),
      done: true,
      done_reason: 'length',
      lanekeeper_cutoff: { reason },
    };
    if (usage?.output !== undefined) line.eval_count = usage.output;
    if (usage?.input !== undefined) line.prompt_eval_count = usage.input;
    return `${JSON.stringify(line)}\n`;
  },
};
