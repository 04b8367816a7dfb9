/**
 * The recorded-looking response fixtures under proxy/test/fixtures and what metering must
 * read from each: one table shared by the dialect tests and the split-point property tests.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Dialect, DialectRoute } from '../../src/dialects/dialect.js';
import { anthropic } from '../../src/dialects/anthropic.js';
import { createCustomDialect } from '../../src/dialects/custom.js';
import { gemini } from '../../src/dialects/gemini.js';
import { ollama } from '../../src/dialects/ollama.js';
import { openai } from '../../src/dialects/openai.js';
import type { Usage } from '../../src/usage/usage.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** The bytes of proxy/test/fixtures/<path>. */
export function fixture(path: string): Buffer {
  return readFileSync(FIXTURES + path);
}

/** A made-up in-house service ("acme-infer") declared the way a team would in YAML. */
export const acme = createCustomDialect({
  name: 'acme',
  match: { method: 'POST', path: '/infer/{model}/complete' },
  usage: { input: 'meter.in', output: 'meter.out', cached_input: 'meter.cache_hit' },
  stream: {
    flag: 'options.stream',
    format: 'sse',
    event: 'meter',
    usage: {},
    text: 't',
    model: 'engine',
  },
  system_prompt: 'context.system',
  max_output: 'options.max_len',
});

export interface FixtureCase {
  file: string;
  dialect: Dialect;
  method?: string;
  path: string;
  usage: Usage;
  model?: string;
  error?: string;
  /** Generated text the stream carries, when it reports no output count. */
  text?: string;
}

/** The route a case's request path maps to. */
export function routeOf(c: FixtureCase): DialectRoute {
  const route = c.dialect.match(c.method ?? 'POST', c.path);
  if (!route) throw new Error(`no route for ${c.path}`);
  return route;
}

export const STREAM_CASES: FixtureCase[] = [
  {
    file: 'openai/chat-stream-usage.sse',
    dialect: openai,
    path: '/v1/chat/completions',
    usage: { input: 19, output: 10, cachedInput: 0, reasoning: 0 },
    model: 'gpt-4o-mini-2024-07-18',
  },
  {
    file: 'openai/chat-stream-reasoning.sse',
    dialect: openai,
    path: '/v1/chat/completions',
    usage: { input: 1250, output: 320, cachedInput: 1024, reasoning: 256 },
    model: 'o4-mini-2025-04-16',
  },
  {
    file: 'openai/chat-stream-no-usage.sse',
    dialect: openai,
    path: '/v1/chat/completions',
    usage: {},
    model: 'gpt-4o-mini-2024-07-18',
    text: 'Hello! How can I help you today?',
  },
  {
    file: 'openai/chat-stream-tools-no-usage.sse',
    dialect: openai,
    path: '/v1/chat/completions',
    usage: {},
    model: 'gpt-4o-mini-2024-07-18',
    text: 'get_weather{"city":"Paris"}',
  },
  {
    file: 'openai/chat-stream-error.sse',
    dialect: openai,
    path: '/v1/chat/completions',
    usage: {},
    model: 'gpt-4o-mini-2024-07-18',
    error: 'The server had an error while processing your request.',
    text: 'Partial',
  },
  {
    file: 'openai/vllm-continuous-usage.sse',
    dialect: openai,
    path: '/v1/chat/completions',
    usage: { input: 31, output: 6, cachedInput: 16 },
    model: 'meta-llama/Llama-3.1-8B-Instruct',
  },
  {
    file: 'openai/completions-stream.sse',
    dialect: openai,
    path: '/v1/completions',
    usage: { input: 5, output: 7 },
    model: 'gpt-3.5-turbo-instruct',
  },
  {
    file: 'openai/responses-stream.sse',
    dialect: openai,
    path: '/v1/responses',
    usage: { input: 37, output: 11, cachedInput: 0, reasoning: 0 },
    model: 'gpt-4.1-2025-04-14',
  },
  {
    file: 'openai/responses-stream-failed.sse',
    dialect: openai,
    path: '/v1/responses',
    usage: { input: 120, output: 0, cachedInput: 0, reasoning: 0 },
    model: 'gpt-4.1-2025-04-14',
    error: 'The model failed to generate a response.',
  },
  {
    file: 'anthropic/messages-stream.sse',
    dialect: anthropic,
    path: '/v1/messages',
    usage: { input: 3312, output: 15, cachedInput: 3000, cacheWrite: 300 },
    model: 'claude-sonnet-4-5-20250929',
  },
  {
    file: 'anthropic/messages-stream-thinking.sse',
    dialect: anthropic,
    path: '/v1/messages',
    usage: { input: 472, output: 89, cachedInput: 0, cacheWrite: 0, reasoning: 41 },
    model: 'claude-sonnet-4-5-20250929',
  },
  {
    file: 'anthropic/messages-stream-error.sse',
    dialect: anthropic,
    path: '/v1/messages',
    usage: { input: 25 },
    model: 'claude-sonnet-4-5-20250929',
    error: 'Overloaded',
    text: 'Once upon a time',
  },
  {
    file: 'gemini/stream.sse',
    dialect: gemini,
    path: '/v1beta/models/gemini-2.5-flash:streamGenerateContent',
    usage: { input: 11, output: 52, reasoning: 40 },
    model: 'gemini-2.5-flash',
  },
  {
    file: 'ollama/chat-stream.ndjson',
    dialect: ollama,
    path: '/api/chat',
    usage: { input: 26, output: 282 },
    model: 'llama3.2',
  },
  {
    file: 'ollama/generate-stream.ndjson',
    dialect: ollama,
    path: '/api/generate',
    usage: { input: 26, output: 259 },
    model: 'llama3.2',
  },
  {
    file: 'ollama/chat-stream-error.ndjson',
    dialect: ollama,
    path: '/api/chat',
    usage: {},
    model: 'llama3.2',
    error: 'an error was encountered while running the model: unexpected EOF',
    text: 'The sky',
  },
  {
    file: 'custom/acme-stream.sse',
    dialect: acme,
    path: '/infer/acme-large/complete',
    usage: { input: 42, output: 7, cachedInput: 10 },
    model: 'acme-large-2',
  },
];

export const JSON_CASES: FixtureCase[] = [
  {
    file: 'openai/chat.json',
    dialect: openai,
    path: '/v1/chat/completions',
    usage: { input: 1117, output: 46, cachedInput: 1024, reasoning: 0 },
    model: 'gpt-4o-2024-08-06',
  },
  {
    file: 'openai/completions.json',
    dialect: openai,
    path: '/v1/completions',
    usage: { input: 5, output: 7 },
    model: 'gpt-3.5-turbo-instruct',
  },
  {
    file: 'openai/responses.json',
    dialect: openai,
    path: '/v1/responses',
    usage: { input: 328, output: 52, cachedInput: 128, reasoning: 32 },
    model: 'gpt-4.1-2025-04-14',
  },
  {
    file: 'openai/embeddings.json',
    dialect: openai,
    path: '/v1/embeddings',
    usage: { input: 8, output: 0 },
    model: 'text-embedding-3-small',
  },
  {
    file: 'openai/error.json',
    dialect: openai,
    path: '/v1/chat/completions',
    usage: {},
    error: 'Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM).',
  },
  {
    file: 'anthropic/messages.json',
    dialect: anthropic,
    path: '/v1/messages',
    usage: { input: 3312, output: 80, cachedInput: 3000, cacheWrite: 300 },
    model: 'claude-sonnet-4-5-20250929',
  },
  { file: 'anthropic/error.json', dialect: anthropic, path: '/v1/messages', usage: {}, error: 'Overloaded' },
  {
    file: 'gemini/generate.json',
    dialect: gemini,
    path: '/v1beta/models/gemini-2.5-pro:generateContent',
    usage: { input: 2048, output: 267, cachedInput: 1024, reasoning: 40 },
    model: 'gemini-2.5-pro',
  },
  {
    file: 'gemini/stream-array.json',
    dialect: gemini,
    path: '/v1beta/models/gemini-2.5-flash:streamGenerateContent',
    usage: { input: 11, output: 52, reasoning: 40 },
    model: 'gemini-2.5-flash',
  },
  {
    file: 'gemini/error.json',
    dialect: gemini,
    path: '/v1beta/models/gemini-2.5-pro:generateContent',
    usage: {},
    error: 'Resource has been exhausted (e.g. check quota).',
  },
  {
    file: 'ollama/chat.json',
    dialect: ollama,
    path: '/api/chat',
    usage: { input: 26, output: 298 },
    model: 'llama3.2',
  },
  {
    file: 'ollama/embed.json',
    dialect: ollama,
    path: '/api/embed',
    usage: { input: 8, output: 0 },
    model: 'all-minilm',
  },
  {
    file: 'ollama/error.json',
    dialect: ollama,
    path: '/api/chat',
    usage: {},
    error: "model 'llama9' not found",
  },
  {
    file: 'custom/acme-complete.json',
    dialect: acme,
    path: '/infer/acme-large/complete',
    usage: { input: 42, output: 7, cachedInput: 10 },
  },
];
