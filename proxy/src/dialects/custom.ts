/**
 * A dialect built from configuration, for a team's own model service: its route pattern,
 * where the model, system prompt and output cap live in the body (dotted paths), where
 * usage lives in a JSON answer and in stream events. Everything is compiled once when the
 * config loads; matching a request walks precompiled segments, with no regular expressions.
 *
 * Path patterns: literal segments, `*` or `{name}` for exactly one segment, and a final
 * `**` for any rest. A `{model}` segment holds the model when no `model` body path is set
 * (rewritten URL-encoded). Usage keys: `input`, `output`, `cached_input`, `cache_write`,
 * `reasoning` (camelCase accepted); unknown keys are ignored.
 */
import type { CustomDialectConfig, CustomDialectInput } from '../config/schema.js';
import type { ErrorStyle } from '../errors.js';
import { count, type Usage } from '../usage/usage.js';
import { positiveField } from './cap-fields.js';
import type { Dialect, DialectRequest, DialectRoute, JsonBody, Observation, StreamEvent } from './dialect.js';
import { errorMessage, getPath, isRecord, parseJson, record, text } from './json-value.js';
import { promptFieldError, unset } from './prompt-fields.js';
import { estimateJsonTokens } from './prompt-size.js';

/**
 * Optional fields this module understands beyond the current config schema (proposed for
 * `customDialectSchema`): an output-cap path, an error path, the error style, and per
 * stream the text and model paths used for estimates.
 */
export interface CustomDialectExtras {
  max_output?: string;
  error?: string;
  error_style?: ErrorStyle;
  stream?: NonNullable<CustomDialectConfig['stream']> & { text?: string; model?: string };
}

type UsageField = keyof Usage;

const USAGE_KEYS: Readonly<Record<string, UsageField>> = {
  input: 'input',
  output: 'output',
  cached_input: 'cachedInput',
  cachedInput: 'cachedInput',
  cache_write: 'cacheWrite',
  cacheWrite: 'cacheWrite',
  reasoning: 'reasoning',
};

type Segment = { kind: 'literal'; value: string } | { kind: 'any'; name?: string } | { kind: 'rest' };

function compilePattern(pattern: string): Segment[] {
  return pattern
    .split('/')
    .filter((s) => s !== '')
    .map((s): Segment => {
      if (s === '**') return { kind: 'rest' };
      if (s === '*') return { kind: 'any' };
      if (s.startsWith('{') && s.endsWith('}')) return { kind: 'any', name: s.slice(1, -1) };
      return { kind: 'literal', value: s };
    });
}

/** The request path's segments when it matches, else undefined. */
function matchSegments(pattern: readonly Segment[], path: string): string[] | undefined {
  const parts = path.split('/').filter((s) => s !== '');
  for (let i = 0; i < pattern.length; i++) {
    const seg = pattern[i] as Segment;
    if (seg.kind === 'rest') return parts;
    const part = parts[i];
    if (part === undefined) return undefined;
    if (seg.kind === 'literal' && seg.value !== part) return undefined;
  }
  return parts.length === pattern.length ? parts : undefined;
}

function splitPath(path: string | undefined): string[] | undefined {
  return path === undefined || path === '' ? undefined : path.split('.');
}

/** Sets a dotted path, creating objects on the way; false when a non-object is in the way. */
function setPath(root: JsonBody, path: readonly string[], value: unknown): boolean {
  let current: Record<string, unknown> = root;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i] as string;
    const next = current[key];
    if (next === undefined) current[key] = {};
    else if (!isRecord(next)) return false;
    current = current[key] as Record<string, unknown>;
  }
  current[path[path.length - 1] as string] = value;
  return true;
}

function compileUsage(map: Readonly<Record<string, string | undefined>>): [UsageField, string[]][] {
  const out: [UsageField, string[]][] = [];
  for (const [key, path] of Object.entries(map)) {
    const field = USAGE_KEYS[key];
    const parts = splitPath(path);
    if (field && parts) out.push([field, parts]);
  }
  return out;
}

function readUsage(value: unknown, paths: readonly [UsageField, string[]][]): Usage | undefined {
  let usage: Usage | undefined;
  for (const [field, path] of paths) {
    const n = count(getPath(value, path));
    if (n !== undefined) (usage ??= {})[field] = n;
  }
  return usage;
}

/** Creates a dialect for one `dialects:` entry of the config. */
export function createCustomDialect(config: CustomDialectInput & CustomDialectExtras): Dialect {
  const method = (config.match.method ?? 'POST').toUpperCase();
  const pattern = compilePattern(config.match.path);
  const route: DialectRoute = { endpoint: config.name, metered: true };
  const modelPath = splitPath(config.model);
  const modelSegment = modelPath ? -1 : pattern.findIndex((s) => s.kind === 'any' && s.name === 'model');
  const systemPath = splitPath(config.system_prompt);
  const maxPath = splitPath(config.max_output);
  const errorPath = splitPath(config.error);
  const jsonUsage = compileUsage(config.usage ?? {});
  const stream = config.stream;
  const streamUsage =
    stream && Object.keys(stream.usage ?? {}).length > 0 ? compileUsage(stream.usage) : jsonUsage;
  const streamFlag = splitPath(stream?.flag);
  const streamText = splitPath(stream?.text);
  const streamModel = splitPath(stream?.model) ?? modelPath;
  const streamEvent = stream?.event;
  // Cheap hint: the first key of each usage path, quoted, must appear in the event's data.
  const needles = [...new Set(streamUsage.map(([, path]) => `"${path[0]}"`))];
  if (errorPath) needles.push(`"${errorPath[0]}"`);
  else needles.push('"error"');

  function observe(
    value: unknown,
    usagePaths: readonly [UsageField, string[]][],
    model: string[] | undefined,
  ) {
    const obs: Observation = {};
    const usage = readUsage(value, usagePaths);
    if (usage) obs.usage = usage;
    const m = model ? text(getPath(value, model)) : undefined;
    if (m) obs.model = m;
    const errorValue = errorPath ? getPath(value, errorPath) : record(value)?.error;
    const error = errorValue === undefined || errorValue === null ? undefined : errorMessage(errorValue);
    if (error) obs.error = error;
    return obs.usage || obs.model || obs.error ? obs : undefined;
  }

  function pathModel(req: DialectRequest): string | undefined {
    if (modelSegment < 0) return undefined;
    const part = req.path.split('/').filter((s) => s !== '')[modelSegment];
    if (part === undefined) return undefined;
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  }

  return {
    name: config.name,
    errorStyle: config.error_style ?? 'openai',
    streamFormat: stream?.format ?? 'sse',
    match(m, path) {
      return (method === '*' || m === method) && matchSegments(pattern, path) ? route : undefined;
    },
    readModel(req) {
      return modelPath ? text(getPath(req.body, modelPath)) : pathModel(req);
    },
    rewriteModel(req, _route, model) {
      if (modelPath) {
        if (req.body) setPath(req.body, modelPath, model);
      } else if (modelSegment >= 0) {
        const leading = req.path.startsWith('/') ? '/' : '';
        const parts = req.path.split('/').filter((s) => s !== '');
        if (parts[modelSegment] === undefined) return;
        parts[modelSegment] = encodeURIComponent(model);
        req.path = leading + parts.join('/');
      }
    },
    injectSystemPrompt(req, _route, prompt) {
      if (!systemPath || !req.body) return;
      const existing = getPath(req.body, systemPath);
      if (typeof existing === 'string' && existing !== '')
        setPath(req.body, systemPath, `${prompt}\n\n${existing}`);
      else if (Array.isArray(existing)) existing.unshift(prompt);
      else if (unset(existing)) setPath(req.body, systemPath, prompt);
      else throw promptFieldError(systemPath.join('.'), 'a string or an array', existing);
    },
    estimatePromptTokens(req) {
      return estimateJsonTokens(req.body);
    },
    hasImageInput() {
      return false;
    },
    readMaxOutput(req) {
      return maxPath ? positiveField(maxPath.join('.'), getPath(req.body, maxPath)) : undefined;
    },
    setMaxOutput(req, _route, tokens) {
      if (maxPath && req.body) setPath(req.body, maxPath, tokens);
    },
    isStream(req) {
      return streamFlag ? getPath(req.body, streamFlag) === true : false;
    },
    usageFromJson(body) {
      return observe(body, jsonUsage, modelPath);
    },
    usageHint(event: StreamEvent) {
      if (streamEvent !== undefined && event.event === streamEvent) return true;
      if (event.event === 'error') return true;
      for (const needle of needles) if (event.data.includes(needle)) return true;
      return false;
    },
    usageFromEvent(event) {
      if (streamEvent !== undefined && event.event !== streamEvent && event.event !== 'error') {
        // Named-event streams report usage only in their usage event; errors still count.
        const value = parseJson(event.data);
        const obs = observe(value, [], streamModel);
        return obs?.error || obs?.model ? obs : undefined;
      }
      return observe(parseJson(event.data), streamUsage, streamModel);
    },
    textFromEvent(event) {
      if (!streamText) return '';
      const value = getPath(parseJson(event.data), streamText);
      return typeof value === 'string' ? value : '';
    },
  };
}
