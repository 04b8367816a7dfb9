/**
 * The Google Gemini dialect (Developer API and Vertex-style paths):
 * `/{v1beta|v1|v1alpha}/models/{model}:generateContent` and `:streamGenerateContent`,
 * `:countTokens` (unmetered) and `:embedContent` / `:batchEmbedContents`. The model lives in
 * the PATH, so readModel/rewriteModel work on `req.path` (URL-encoded; a `models/` prefix on
 * a configured model name is accepted and dropped). `/v1beta/openai/*` is OpenAI's dialect.
 *
 * Streaming: with `?alt=sse` each SSE event is a whole GenerateContentResponse whose
 * `usageMetadata` is a running total (keep the last, never sum). Without `alt=sse` Gemini
 * streams one JSON array with `application/json`: it is metered as a JSON body when it
 * ends (`usageFromJson` accepts the array and a truncated array is read up to its last
 * complete element by the stream tap's JSON fallback), within the JSON size cap.
 *
 * Usage: input = promptTokenCount (which includes cachedContentTokenCount, the
 * `cachedInput`) + toolUsePromptTokenCount; output = candidatesTokenCount +
 * thoughtsTokenCount; reasoning = thoughtsTokenCount.
 *
 * Credentials may come as `x-goog-api-key` or as `?key=` in the query: the server must
 * strip `key` from the query it forwards and logs.
 */
import type { Usage } from '../usage/usage.js';
import { count } from '../usage/usage.js';
import { mostChoices, smallestCap, type CapField } from './cap-fields.js';
import type { Dialect, DialectRequest, DialectRoute, JsonBody, Observation } from './dialect.js';
import { errorMessage, isRecord, parseJson, record } from './json-value.js';
import { promptFieldError, unset } from './prompt-fields.js';
import { OPEN_BRACE, errorNearStart, valueAfterLastKey } from './hint.js';
import { observation } from './observation.js';
import { addMediaSlot, estimateWithMedia, type MediaSlots } from './prompt-size.js';

const GENERATE: DialectRoute = { endpoint: 'generateContent', metered: true };
const STREAM: DialectRoute = { endpoint: 'streamGenerateContent', metered: true };
const EMBED: DialectRoute = { endpoint: 'embedContent', metered: true, generates: false };
const BATCH_EMBED: DialectRoute = { endpoint: 'batchEmbedContents', metered: true, generates: false };
const COUNT_TOKENS: DialectRoute = { endpoint: 'countTokens', metered: false };
const OTHER: DialectRoute = { endpoint: 'other', metered: false };
const OTHER_V1: DialectRoute = { endpoint: 'other', metered: false, fallback: true };

const METHODS: Readonly<Record<string, DialectRoute>> = {
  generateContent: GENERATE,
  streamGenerateContent: STREAM,
  embedContent: EMBED,
  batchEmbedContents: BATCH_EMBED,
  countTokens: COUNT_TOKENS,
};

const MODEL_MARKERS = ['/models/', '/tunedModels/'];
const ENCODED_COLON = /%3a/i;

/** Where the model id sits in a path: [start, end) of its (encoded) text, and the method. */
interface ModelSpan {
  start: number;
  end: number;
  method: string;
}

function modelSpan(path: string): ModelSpan | undefined {
  for (const marker of MODEL_MARKERS) {
    const at = path.lastIndexOf(marker);
    if (at === -1) continue;
    const start = at + marker.length;
    let colon = path.indexOf(':', start);
    let sepLength = 1;
    if (colon === -1) {
      const encoded = path.slice(start).search(ENCODED_COLON);
      if (encoded === -1) return undefined;
      colon = start + encoded;
      sepLength = 3;
    }
    if (colon === start || path.indexOf('/', start) !== -1) return undefined;
    return { start, end: colon, method: path.slice(colon + sepLength) };
  }
  return undefined;
}

function versioned(path: string): boolean {
  return path.startsWith('/v1beta/') || path.startsWith('/v1/') || path.startsWith('/v1alpha/');
}

/** The bare model id for a configured name, which may carry a `models/` prefix. */
function bareModel(model: string): string {
  return model.startsWith('models/') ? model.slice('models/'.length) : model;
}

/** Normalised usage from a `usageMetadata` object. */
export function geminiUsage(value: unknown): Usage | undefined {
  const u = record(value);
  if (!u) return undefined;
  const usage: Usage = {};
  const prompt = count(u.promptTokenCount);
  const toolPrompt = count(u.toolUsePromptTokenCount);
  if (prompt !== undefined || toolPrompt !== undefined) usage.input = (prompt ?? 0) + (toolPrompt ?? 0);
  const cached = count(u.cachedContentTokenCount);
  if (cached !== undefined) usage.cachedInput = cached;
  const candidates = count(u.candidatesTokenCount);
  const thoughts = count(u.thoughtsTokenCount);
  if (candidates !== undefined || thoughts !== undefined) usage.output = (candidates ?? 0) + (thoughts ?? 0);
  if (thoughts !== undefined) usage.reasoning = thoughts;
  return Object.keys(usage).length > 0 ? usage : undefined;
}

/** Observation from one GenerateContentResponse (or an error body). */
function fromResponse(value: unknown, generates: boolean): Observation | undefined {
  const r = record(value);
  if (!r) return undefined;
  if (r.error !== undefined && r.error !== null)
    return observation(undefined, undefined, errorMessage(r.error));
  let usage = geminiUsage(r.usageMetadata);
  if (!generates && usage && usage.output === undefined) usage = { ...usage, output: 0 };
  return observation(usage, r.modelVersion, undefined);
}

/** `systemInstruction` or its snake_case proto-JSON spelling, whichever the client used. */
function systemKey(b: JsonBody): 'systemInstruction' | 'system_instruction' {
  return b.system_instruction !== undefined && b.systemInstruction === undefined
    ? 'system_instruction'
    : 'systemInstruction';
}

function generationConfig(b: JsonBody, create: boolean): Record<string, unknown> | undefined {
  const snake = record(b.generation_config);
  if (snake && b.generationConfig === undefined) return snake;
  const camel = record(b.generationConfig);
  if (camel || !create) return camel;
  const fresh = {};
  b.generationConfig = fresh;
  return fresh;
}

const CAP_NAMES = ['maxOutputTokens', 'max_output_tokens'] as const;
const CHOICE_NAMES = ['candidateCount', 'candidate_count'] as const;

/** Every spelling of a generation setting, in both spellings of its parent object. */
function configFields(b: JsonBody, names: readonly string[]): CapField[] {
  const fields: CapField[] = [];
  for (const parent of ['generationConfig', 'generation_config']) {
    const config = record(b[parent]);
    if (config) for (const name of names) fields.push([`${parent}.${name}`, config[name]]);
  }
  return fields;
}

function partsHaveImage(parts: unknown): boolean {
  if (!Array.isArray(parts)) return false;
  return parts.some((p) => {
    if (!isRecord(p)) return false;
    const blob = record(p.inlineData) ?? record(p.inline_data) ?? record(p.fileData) ?? record(p.file_data);
    const mime = blob?.mimeType ?? blob?.mime_type;
    return typeof mime === 'string' && mime.startsWith('image/');
  });
}

/**
 * Adds the inline blobs and file URIs of a Content's parts to `slots`. A blob that spells its media type
 * both ways, differently, has no declared type: which one Gemini reads is not known.
 */
function addInlineMedia(content: unknown, slots: MediaSlots): void {
  const parts = record(content)?.parts;
  if (!Array.isArray(parts)) return;
  for (const p of parts) {
    if (!isRecord(p)) continue;
    for (const blob of [record(p.inlineData), record(p.inline_data)]) {
      if (!blob) continue;
      const agreed =
        blob.mimeType === undefined || blob.mime_type === undefined || blob.mimeType === blob.mime_type;
      addMediaSlot(slots, blob, 'data', agreed ? (blob.mimeType ?? blob.mime_type) : undefined);
    }
    // A file by URI (Files API, Cloud Storage, YouTube): billed by content the proxy never sees.
    const file = record(p.fileData);
    if (file) addMediaSlot(slots, file, 'fileUri');
    const snake = record(p.file_data);
    if (snake) addMediaSlot(slots, snake, 'file_uri');
  }
}

function isGeneration(route: DialectRoute): boolean {
  return route === GENERATE || route === STREAM;
}

/** The Gemini dialect (model in the path). */
export const gemini: Dialect = {
  name: 'gemini',
  errorStyle: 'gemini',
  streamFormat: 'sse',

  match(method, path) {
    if (!versioned(path) || path.startsWith('/v1beta/openai/') || path.startsWith('/v1/openai/'))
      return undefined;
    const span = modelSpan(path);
    if (span) {
      const route = METHODS[span.method];
      if (route && route !== COUNT_TOKENS && method !== 'POST') return OTHER;
      return route ?? OTHER;
    }
    // Model listings and other paths: Gemini's own under /v1beta, shared with OpenAI under /v1.
    return path.startsWith('/v1/') ? OTHER_V1 : OTHER;
  },

  readModel(req: DialectRequest) {
    const span = modelSpan(req.path);
    if (!span) return undefined;
    const encoded = req.path.slice(span.start, span.end);
    try {
      return decodeURIComponent(encoded);
    } catch {
      return encoded;
    }
  },
  rewriteModel(req, _route, model) {
    const span = modelSpan(req.path);
    if (!span) return;
    req.path =
      req.path.slice(0, span.start) + encodeURIComponent(bareModel(model)) + req.path.slice(span.end);
  },

  injectSystemPrompt(req, route, prompt) {
    const b = req.body;
    if (!b || !isGeneration(route)) return;
    const key = systemKey(b);
    const existing = b[key];
    if (typeof existing === 'string' && existing !== '') {
      b[key] = { parts: [{ text: prompt }, { text: existing }] };
      return;
    }
    const content = record(existing);
    if (content && Array.isArray(content.parts)) content.parts.unshift({ text: prompt });
    else if (content && unset(content.parts)) content.parts = [{ text: prompt }];
    else if (content) throw promptFieldError(`${key}.parts`, 'an array', content.parts);
    else if (unset(existing)) b[key] = { parts: [{ text: prompt }] };
    else throw promptFieldError(key, 'a Content object', existing);
  },

  promptBypass(req, route) {
    const b = req.body;
    if (!b || !isGeneration(route)) return undefined;
    // A cached content carries its own system instruction, and Gemini refuses a request
    // that sets one beside it: the plan's prompt could not be added.
    for (const key of ['cachedContent', 'cached_content'])
      if (b[key] !== undefined && b[key] !== null && b[key] !== '') return key;
    return undefined;
  },

  estimatePromptTokens(req, route) {
    const b = req.body;
    if (!b) return 0;
    const slots: MediaSlots = new Map();
    if (route === EMBED) {
      addInlineMedia(b.content, slots);
      return estimateWithMedia(slots, b.content);
    }
    if (route === BATCH_EMBED) {
      if (Array.isArray(b.requests)) for (const r of b.requests) addInlineMedia(record(r)?.content, slots);
      return estimateWithMedia(slots, b.requests);
    }
    if (Array.isArray(b.contents)) for (const c of b.contents) addInlineMedia(c, slots);
    addInlineMedia(b.systemInstruction, slots);
    addInlineMedia(b.system_instruction, slots);
    return estimateWithMedia(slots, b.contents, b.systemInstruction, b.system_instruction, b.tools);
  },

  hasImageInput(req) {
    const contents = req.body?.contents;
    return Array.isArray(contents) && contents.some((c) => isRecord(c) && partsHaveImage(c.parts));
  },

  readMaxOutput(req, route) {
    if (!req.body || !isGeneration(route)) return undefined;
    return smallestCap(configFields(req.body, CAP_NAMES));
  },
  setMaxOutput(req, route, tokens) {
    if (!req.body || !isGeneration(route)) return;
    const config = generationConfig(req.body, true) as Record<string, unknown>;
    const field =
      config.max_output_tokens !== undefined && config.maxOutputTokens === undefined
        ? 'max_output_tokens'
        : 'maxOutputTokens';
    // Google's JSON reader takes both spellings of a field and of its parent: the cap is left
    // in one place only, so no spelling the proxy did not set can be read instead.
    for (const other of [record(req.body.generationConfig), record(req.body.generation_config)]) {
      if (other) for (const name of CAP_NAMES) delete other[name];
    }
    config[field] = tokens;
  },
  readChoices(req, route) {
    if (!req.body || !isGeneration(route)) return undefined;
    return mostChoices(configFields(req.body, CHOICE_NAMES));
  },

  isStream(_req, route) {
    return route === STREAM;
  },

  usageFromJson(json, route) {
    const generates = route.generates !== false;
    if (!Array.isArray(json)) return fromResponse(json, generates);
    // A streamed JSON array: usage is a running total, so the last report wins field by field.
    let merged: Observation | undefined;
    for (const item of json) {
      const obs = fromResponse(item, generates);
      if (!obs) continue;
      merged = {
        ...merged,
        ...obs,
        ...(obs.usage || merged?.usage ? { usage: { ...merged?.usage, ...obs.usage } } : {}),
      };
    }
    return merged;
  },

  usageHint(event) {
    const data = event.data;
    return valueAfterLastKey(data, '"usageMetadata"') === OPEN_BRACE || errorNearStart(data);
  },

  usageFromEvent(event, route) {
    return fromResponse(parseJson(event.data), route.generates !== false);
  },

  textFromEvent(event) {
    const candidates = record(parseJson(event.data))?.candidates;
    if (!Array.isArray(candidates)) return '';
    let out = '';
    for (const candidate of candidates) {
      const parts = record(record(candidate)?.content)?.parts;
      if (!Array.isArray(parts)) continue;
      for (const part of parts) {
        const p = record(part);
        if (typeof p?.text === 'string') out += p.text;
        else if (p?.functionCall !== undefined) out += JSON.stringify(p.functionCall);
      }
    }
    return out;
  },

  cutoffEvent(_route, reason, usage) {
    const input = usage?.input ?? 0;
    const output = usage?.output ?? 0;
    const chunk = {
      candidates: [
        { content: { role: 'model', parts: [{ text: '' }] }, finishReason: 'MAX_TOKENS', index: 0 },
      ],
      ...(usage && {
        usageMetadata: {
          promptTokenCount: input,
          candidatesTokenCount: output,
          totalTokenCount: input + output,
        },
      }),
      lanekeeper_cutoff: { reason },
    };
    return `data: ${JSON.stringify(chunk)}\r\n\r\n`;
  },
};
