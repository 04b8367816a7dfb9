/**
 * The dialect registry: every built-in dialect in the order `auto` tries them, and the
 * one function that picks a dialect and route for a request. Adding a dialect is one file
 * plus one line in `dialects` below.
 */
import type { Dialect, DialectRoute } from './dialect.js';
import { anthropic } from './anthropic.js';
import { gemini } from './gemini.js';
import { ollama } from './ollama.js';
import { createOpenAiDialect, openai } from './openai.js';

/**
 * Built-in dialects, in the order `auto` tries them. A route marked `fallback` (a catch-all
 * such as OpenAI's and Anthropic's other `/v1/*` paths) loses to any specific route, and
 * among catch-alls the first dialect here wins, so `/v1/models` goes to OpenAI.
 */
export const dialects: readonly Dialect[] = [openai, anthropic, gemini, ollama];

/** Names that configure an existing module under another name. */
const ALIASES: Readonly<Record<string, string>> = { vllm: 'openai' };

/**
 * Modules a forced dialect falls back to for paths it does not speak itself: an Ollama
 * server also serves the OpenAI-compatible `/v1/*` API.
 */
const FALLBACKS: Readonly<Record<string, readonly Dialect[]>> = {
  // Ollama's OpenAI API reads only max_tokens as the chat output cap.
  ollama: [createOpenAiDialect({ chatReadsOnly: 'max_tokens' })],
};

/** A dialect and the route it recognised. */
export interface DialectMatch {
  readonly dialect: Dialect;
  readonly route: DialectRoute;
}

/** The built-in or custom dialect with this name (aliases resolved), if any. */
export function dialectByName(name: string, customDialects: readonly Dialect[] = []): Dialect | undefined {
  const resolved = ALIASES[name] ?? name;
  return customDialects.find((d) => d.name === resolved) ?? dialects.find((d) => d.name === resolved);
}

/**
 * Picks the dialect for a request. `configured` is `auto` (custom dialects first, then the
 * built-ins by path) or a dialect name (`openai`, `vllm`, `anthropic`, `gemini`, `ollama`
 * or a custom name), which forces that module. Undefined when nothing speaks the path:
 * the caller decides whether to pass it through unmetered or refuse it.
 */
export function selectDialect(
  configured: string,
  method: string,
  path: string,
  customDialects: readonly Dialect[] = [],
): DialectMatch | undefined {
  if (configured === 'auto') {
    let fallback: DialectMatch | undefined;
    for (const list of [customDialects, dialects]) {
      for (const dialect of list) {
        const route = dialect.match(method, path);
        if (!route) continue;
        if (!route.fallback) return { dialect, route };
        fallback ??= { dialect, route };
      }
    }
    return fallback;
  }
  const dialect = dialectByName(configured, customDialects);
  if (!dialect) return undefined;
  const route = dialect.match(method, path);
  if (route) return { dialect, route };
  for (const fallback of FALLBACKS[dialect.name] ?? []) {
    const fallbackRoute = fallback.match(method, path);
    if (fallbackRoute) return { dialect: fallback, route: fallbackRoute };
  }
  return undefined;
}
