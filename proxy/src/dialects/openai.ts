/**
 * The OpenAI dialect: chat completions, legacy completions, the Responses API and
 * embeddings, plus every other `/v1/*` path as an unmetered route (model listings, files).
 * OpenAI-compatible servers (vLLM, Ollama's `/v1`, Gemini's `/v1beta/openai`) use it too,
 * so the metered endpoints match by path suffix.
 *
 * Streams are SSE. Chat and completions streams carry usage only when the request sets
 * `stream_options.include_usage`, in one `choices: []` chunk before `data: [DONE]`; the
 * proxy sets it when the client did not, and `hideInjectedUsage` gives the client back
 * exactly the stream it asked for. Responses streams always end with usage in
 * `response.completed` (or `.failed` / `.incomplete`).
 */
import { mostChoices, smallestCap } from './cap-fields.js';
import type { Dialect, DialectRequest, DialectRoute, JsonBody } from './dialect.js';
import { OPEN_BRACE, errorNearStart, valueAfterLastKey } from './hint.js';
import { errorMessage, isRecord, parseJson, record, text } from './json-value.js';
import { promptFieldError, unset } from './prompt-fields.js';
import { observation } from './observation.js';
import { fromResponseObject, openAiUsage, removeNullUsage } from './openai-usage.js';
import {
  addMediaSlot,
  estimateJsonTokens,
  estimateWithMedia,
  hasPartType,
  type MediaSlots,
} from './prompt-size.js';

export { openAiUsage, removeNullUsage } from './openai-usage.js';

const CHAT: DialectRoute = { endpoint: 'chat.completions', metered: true };
const COMPLETIONS: DialectRoute = { endpoint: 'completions', metered: true };
const RESPONSES: DialectRoute = { endpoint: 'responses', metered: true };
const EMBEDDINGS: DialectRoute = { endpoint: 'embeddings', metered: true, generates: false };
const MODELS: DialectRoute = { endpoint: 'models', metered: false, fallback: true };
const OTHER: DialectRoute = { endpoint: 'other', metered: false, fallback: true };

const IMAGE_PARTS = new Set(['image_url', 'input_image']);
/**
 * Every name an OpenAI-compatible server reads as an output cap on some endpoint. All are
 * read (the smallest wins) and only one is sent, whichever endpoint the client called.
 */
const CAP_FIELDS = ['max_completion_tokens', 'max_tokens', 'max_output_tokens'] as const;
type CapName = (typeof CAP_FIELDS)[number];

/** Where a chat or Responses request carries attachments: image URLs, input audio, inline files. */
function mediaSlots(b: JsonBody, route: DialectRoute): MediaSlots {
  const slots: MediaSlots = new Map();
  const part = (p: unknown) => {
    if (!isRecord(p)) return;
    if (IMAGE_PARTS.has(p.type as string)) {
      if (isRecord(p.image_url)) addMediaSlot(slots, p.image_url, 'url');
      else addMediaSlot(slots, p, 'image_url');
    } else if (p.type === 'input_audio' && isRecord(p.input_audio)) {
      addMediaSlot(slots, p.input_audio, 'data', `audio/${String(p.input_audio.format)}`);
    } else if (p.type === 'file') addMediaSlot(slots, p.file, 'file_data');
    else if (p.type === 'input_file')
      addMediaSlot(slots, p, typeof p.file_url === 'string' ? 'file_url' : 'file_data');
  };
  const items = route === CHAT ? b.messages : b.input;
  if (!Array.isArray(items)) return slots;
  for (const item of items) {
    if (route === RESPONSES) part(item);
    if (isRecord(item) && Array.isArray(item.content)) item.content.forEach(part);
  }
  return slots;
}

function generatesText(route: DialectRoute): boolean {
  return route === CHAT || route === COMPLETIONS || route === RESPONSES;
}
/** `"usage":` as bytes, for the block-level fast path of hiding injected usage. */
const USAGE_KEY = Buffer.from('"usage":');
/** How many trailing bytes of a block the byte loop of `lastUsageKey` covers. */
const USAGE_TAIL = 64;

/**
 * `block.lastIndexOf('"usage":')`, cheaper for where the key sits in OpenAI chunks: in the
 * last few bytes (`,"usage":null}` then the blank line). The tail is scanned by a plain
 * loop, which costs less than a native call's set-up; only a block whose key is not there
 * pays for the native search of the rest.
 */
export function lastUsageKey(block: Buffer): number {
  const stop = Math.max(0, block.length - USAGE_TAIL);
  for (let i = block.length - USAGE_KEY.length; i >= stop; i--) {
    if (
      block[i] === 0x22 &&
      block[i + 1] === 0x75 &&
      block[i + 2] === 0x73 &&
      block[i + 3] === 0x61 &&
      block[i + 4] === 0x67 &&
      block[i + 5] === 0x65 &&
      block[i + 6] === 0x22 &&
      block[i + 7] === 0x3a
    )
      return i;
  }
  return stop === 0 ? -1 : block.lastIndexOf(USAGE_KEY, stop - 1);
}
const TERMINAL_RESPONSE_EVENTS = new Set(['response.completed', 'response.failed', 'response.incomplete']);

/** Options of `createOpenAiDialect`. */
export interface OpenAiDialectOptions {
  /**
   * The field `setMaxOutput` writes on chat requests that set no cap of their own.
   * `max_completion_tokens` (default) is what OpenAI's reasoning models require; choose
   * `max_tokens` for older OpenAI-compatible servers that ignore the newer name. A client
   * that sent `max_tokens` always gets `max_tokens` back.
   */
  chatMaxField?: 'max_completion_tokens' | 'max_tokens';
  /**
   * Set when the upstream reads only this one chat cap name (Ollama's OpenAI API reads only
   * `max_tokens`): then it is always the field written, whatever the client sent, so a cap
   * the server would ignore cannot leave the answer unbounded.
   */
  chatReadsOnly?: 'max_completion_tokens' | 'max_tokens';
}

/** Strips one trailing slash so `/v1/chat/completions/` matches too. */
function normalise(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** The route for a path, or undefined when it is not an OpenAI path. */
function matchOpenAi(method: string, rawPath: string): DialectRoute | undefined {
  const path = normalise(rawPath);
  if (method === 'POST') {
    // Not any path ending in /chat/completions: Azure-style `/openai/deployments/{name}/…`
    // and `/v1/engines/{name}/…` pick the model by a path segment the plan never checks.
    // Bare `/chat/completions` is DeepSeek's own path.
    if (path.endsWith('/v1/chat/completions') || path.endsWith('/openai/chat/completions')) return CHAT;
    if (path === '/chat/completions') return CHAT;
    if (path.endsWith('/v1/completions') || path.endsWith('/openai/completions')) return COMPLETIONS;
    if (path.endsWith('/v1/responses') || path.endsWith('/openai/responses')) return RESPONSES;
    if (path.endsWith('/v1/embeddings') || path.endsWith('/openai/embeddings')) return EMBEDDINGS;
  }
  if (path === '/v1/models' || path.startsWith('/v1/models/')) return MODELS;
  if (path.startsWith('/v1/')) return OTHER;
  return undefined;
}

function body(req: DialectRequest): JsonBody | undefined {
  return req.body;
}

function prependText(prompt: string, existing: unknown): unknown {
  return typeof existing === 'string' && existing !== '' ? `${prompt}\n\n${existing}` : existing;
}

/** Creates an OpenAI dialect; `openai` below is the default instance. */
export function createOpenAiDialect(options: OpenAiDialectOptions = {}): Dialect {
  const chatMaxField = options.chatReadsOnly ?? options.chatMaxField ?? 'max_completion_tokens';
  const chatFieldFixed = options.chatReadsOnly !== undefined;
  return {
    name: 'openai',
    errorStyle: 'openai',
    lowercaseKeys: true,
    streamFormat: 'sse',
    match: matchOpenAi,

    readModel(req) {
      return text(body(req)?.model);
    },
    rewriteModel(req, _route, model) {
      const b = body(req);
      if (b) b.model = model;
    },

    injectSystemPrompt(req, route, prompt) {
      const b = body(req);
      if (!b) return;
      if (route === CHAT) {
        if (!Array.isArray(b.messages)) throw promptFieldError('messages', 'an array', b.messages);
        b.messages.unshift({ role: 'system', content: prompt });
      } else if (route === RESPONSES) {
        if (!unset(b.instructions) && typeof b.instructions !== 'string')
          throw promptFieldError('instructions', 'a string', b.instructions);
        b.instructions =
          typeof b.instructions === 'string' && b.instructions !== ''
            ? `${prompt}\n\n${b.instructions}`
            : prompt;
      } else if (route === COMPLETIONS) {
        if (typeof b.prompt === 'string') b.prompt = prependText(prompt, b.prompt) ?? prompt;
        else if (Array.isArray(b.prompt) && b.prompt.every((p) => typeof p === 'string')) {
          b.prompt = b.prompt.map((p: string) => (p === '' ? prompt : `${prompt}\n\n${p}`));
        }
        // Token-id prompts cannot take text without a tokenizer: left unchanged.
      }
    },

    promptBypass(req, route) {
      // vLLM takes prompt embeddings in place of text: nothing to put the plan's prompt before.
      if (route === COMPLETIONS && body(req)?.prompt_embeds !== undefined) return 'prompt_embeds';
      const prompt = body(req)?.prompt;
      if (route !== COMPLETIONS || prompt === undefined || typeof prompt === 'string') return undefined;
      // Token ids take no text: the plan's prompt could not be put in front of them.
      return Array.isArray(prompt) && prompt.every((p) => typeof p === 'string') ? undefined : 'prompt';
    },

    estimatePromptTokens(req, route) {
      const b = body(req);
      if (!b) return 0;
      if (route === CHAT) {
        return estimateWithMedia(mediaSlots(b, route), b.messages, b.tools, b.functions, b.response_format);
      }
      if (route === RESPONSES) {
        return estimateWithMedia(mediaSlots(b, route), b.instructions, b.input, b.tools, b.text);
      }
      if (route === COMPLETIONS) return estimateJsonTokens(b.prompt, b.suffix);
      if (route === EMBEDDINGS) return estimateJsonTokens(b.input);
      return 0;
    },

    hasImageInput(req, route) {
      const b = body(req);
      if (!b) return false;
      if (route === CHAT && Array.isArray(b.messages)) {
        return b.messages.some((m) => isRecord(m) && hasPartType(m.content, IMAGE_PARTS));
      }
      if (route === RESPONSES && Array.isArray(b.input)) {
        return b.input.some(
          (item) => isRecord(item) && (item.type === 'input_image' || hasPartType(item.content, IMAGE_PARTS)),
        );
      }
      return false;
    },

    readMaxOutput(req, route) {
      const b = body(req);
      if (!b || !generatesText(route)) return undefined;
      return smallestCap(CAP_FIELDS.map((name) => [name, b[name]]));
    },
    setMaxOutput(req, route, tokens) {
      const b = body(req);
      if (!b || !generatesText(route)) return;
      let field: CapName =
        route === RESPONSES ? 'max_output_tokens' : route === CHAT ? chatMaxField : 'max_tokens';
      if (route === CHAT && !chatFieldFixed) {
        // Reasoning models refuse max_tokens, older compatible servers know only it: a client
        // that sent just one of the two keeps it, otherwise the configured one is written.
        const hasNew = b.max_completion_tokens !== undefined && b.max_completion_tokens !== null;
        const hasOld = b.max_tokens !== undefined && b.max_tokens !== null;
        field = hasNew !== hasOld ? (hasNew ? 'max_completion_tokens' : 'max_tokens') : chatMaxField;
      }
      // Exactly one cap field goes upstream, so no server can read a cap the proxy did not reserve.
      for (const name of CAP_FIELDS) delete b[name];
      b[field] = tokens;
    },
    readChoices(req, route) {
      const b = body(req);
      if (!b) return undefined;
      // best_of makes the upstream generate that many completions and return the best n.
      if (route === COMPLETIONS)
        return mostChoices([
          ['n', b.n],
          ['best_of', b.best_of],
        ]);
      if (route === CHAT) return mostChoices([['n', b.n]]);
      return undefined;
    },

    isStream(req) {
      return body(req)?.stream === true;
    },

    requestStreamUsage(req, route) {
      const b = body(req);
      if (!b || b.stream !== true || (route !== CHAT && route !== COMPLETIONS)) return false;
      const options = record(b.stream_options);
      if (options?.include_usage === true) return false;
      b.stream_options = { ...options, include_usage: true };
      return true;
    },
    streamReportsUsage(req, route) {
      // The Responses stream's closing event always carries usage.
      if (route !== CHAT && route !== COMPLETIONS) return true;
      return record(body(req)?.stream_options)?.include_usage === true;
    },
    withoutStreamUsage(req) {
      const b = body(req);
      const options = record(b?.stream_options);
      if (!b || !options) return;
      const { include_usage: _dropped, ...rest } = options;
      if (Object.keys(rest).length === 0) delete b.stream_options;
      else b.stream_options = rest;
    },

    hideInjectedUsage(event) {
      const data = event.data;
      if (valueAfterLastKey(data, '"usage"') === OPEN_BRACE) {
        const chunk = record(parseJson(data));
        if (chunk && Array.isArray(chunk.choices) && chunk.choices.length === 0) return null;
        return event;
      }
      const edited = removeNullUsage(data);
      return edited === data ? event : { event: event.event, data: edited };
    },
    hideInjectedUsageInBlock(block) {
      const at = lastUsageKey(block);
      if (at === -1) return block;
      let end = at + USAGE_KEY.length;
      while (block[end] === 0x20) end++;
      if (block[end] !== 0x6e) return undefined; // not `null`: let the event path decide
      if (block[end + 1] !== 0x75 || block[end + 2] !== 0x6c || block[end + 3] !== 0x6c) return block;
      end += 4;
      let start = at;
      let before = at - 1;
      while (block[before] === 0x20) before--;
      if (block[before] === 0x2c) start = before;
      else {
        let after = end;
        while (block[after] === 0x20) after++;
        if (block[after] !== 0x2c) return block;
        end = after + 1;
      }
      // Every chunk of an OpenAI stream ends in `,"usage":null}` once usage is requested:
      // one allocation and two copies (TypedArray#set, cheaper than Buffer#copy's checks).
      const out = Buffer.allocUnsafe(block.length - (end - start));
      out.set(block.subarray(0, start), 0);
      out.set(block.subarray(end), start);
      return out;
    },

    usageFromJson(json, route) {
      const b = record(json);
      if (!b) return undefined;
      // An error answer can still report what it consumed: booked like any other usage.
      if (b.error !== undefined && b.error !== null)
        return observation(openAiUsage(b.usage, route.generates !== false), b.model, errorMessage(b.error));
      // vLLM's older error shape: {"object":"error","message":...,"code":400}
      if (b.object === 'error') return observation(undefined, undefined, errorMessage(b));
      if (route === RESPONSES && b.object === 'response') return fromResponseObject(b);
      return observation(openAiUsage(b.usage, route.generates !== false), b.model, undefined);
    },

    usageHint(event) {
      const name = event.event;
      // Named events are the Responses API: only terminal events and errors matter. (An
      // explicit `event: message` is the SSE default name, so it counts as unnamed.)
      if (name !== '' && name !== 'message') return TERMINAL_RESPONSE_EVENTS.has(name) || name === 'error';
      const data = event.data;
      if (data.charCodeAt(0) !== OPEN_BRACE) return false;
      if (valueAfterLastKey(data, '"usage"') === OPEN_BRACE || errorNearStart(data)) return true;
      // A relay that dropped the `event:` lines of a Responses stream.
      return (
        data.startsWith('{"type":"response.') &&
        (data.startsWith('completed"', 18) ||
          data.startsWith('failed"', 18) ||
          data.startsWith('incomplete"', 18))
      );
    },

    usageFromEvent(event, route) {
      const data = event.data;
      if (data === '[DONE]') return undefined;
      const obj = record(parseJson(data));
      if (!obj) return undefined;
      if (event.event === 'error' || obj.type === 'error' || obj.object === 'error') {
        return observation(
          undefined,
          undefined,
          errorMessage(obj.error) ?? errorMessage(obj) ?? 'stream error',
        );
      }
      const response = record(obj.response);
      if (response && typeof obj.type === 'string' && obj.type.startsWith('response.')) {
        return fromResponseObject(response);
      }
      const error = obj.error !== undefined && obj.error !== null ? errorMessage(obj.error) : undefined;
      return observation(openAiUsage(obj.usage, route.generates !== false), obj.model, error);
    },

    textFromEvent(event) {
      if (event.data === '[DONE]') return '';
      const obj = record(parseJson(event.data));
      if (!obj) return '';
      if (typeof obj.type === 'string')
        // Text deltas of every kind, but not base64 audio (`response.audio.delta`).
        return obj.type.endsWith('.delta') &&
          obj.type !== 'response.audio.delta' &&
          typeof obj.delta === 'string'
          ? obj.delta
          : '';
      if (!Array.isArray(obj.choices)) return '';
      let out = '';
      for (const choice of obj.choices) {
        const c = record(choice);
        if (!c) continue;
        if (typeof c.text === 'string') out += c.text;
        const delta = record(c.delta);
        if (!delta) continue;
        for (const field of ['content', 'reasoning_content', 'reasoning', 'refusal']) {
          if (typeof delta[field] === 'string') out += delta[field];
        }
        if (Array.isArray(delta.tool_calls)) {
          for (const call of delta.tool_calls) {
            const fn = record(record(call)?.function);
            if (typeof fn?.name === 'string') out += fn.name;
            if (typeof fn?.arguments === 'string') out += fn.arguments;
          }
        }
      }
      return out;
    },

    cutoffEvent(route, reason, usage) {
      const note = { reason };
      const input = usage?.input ?? 0;
      const output = usage?.output ?? 0;
      if (route === RESPONSES) {
        const payload = {
          type: 'response.incomplete',
          response: {
            object: 'response',
            status: 'incomplete',
            incomplete_details: { reason: 'max_output_tokens' },
            output: [],
            usage: usage
              ? { input_tokens: input, output_tokens: output, total_tokens: input + output }
              : null,
          },
          lanekeeper_cutoff: note,
        };
        return `event: response.incomplete\ndata: ${JSON.stringify(payload)}\n\n`;
      }
      const object = route === COMPLETIONS ? 'text_completion' : 'chat.completion.chunk';
      const choice =
        route === COMPLETIONS
          ? { index: 0, text: '', logprobs: null, finish_reason: 'length' }
          : { index: 0, delta: {}, logprobs: null, finish_reason: 'length' };
      const chunk = {
        id: 'lanekeeper-cutoff',
        object,
        created: 0,
        model: '',
        choices: [choice],
        lanekeeper_cutoff: note,
      };
      // OpenAI's own order: the finish reason, then usage alone in a chunk with no choices.
      const usageChunk = usage && {
        id: 'lanekeeper-cutoff',
        object,
        created: 0,
        model: '',
        choices: [],
        usage: { prompt_tokens: input, completion_tokens: output, total_tokens: input + output },
      };
      return (
        `data: ${JSON.stringify(chunk)}\n\n` +
        (usageChunk ? `data: ${JSON.stringify(usageChunk)}\n\n` : '') +
        'data: [DONE]\n\n'
      );
    },
  } satisfies Dialect &
    Pick<Required<Dialect>, 'withoutStreamUsage' | 'streamReportsUsage' | 'hideInjectedUsageInBlock'>;
}

/** The OpenAI dialect with default options. */
export const openai: Dialect = createOpenAiDialect();
