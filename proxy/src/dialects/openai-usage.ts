/**
 * Reading OpenAI usage: the chat/completions shape (`prompt_tokens`...) and the Responses
 * shape (`input_tokens`...), Responses objects with their failure, and the byte-safe edit
 * that takes back the `"usage":null` which `include_usage` adds to every chunk.
 */
import type { Usage } from '../usage/usage.js';
import { count } from '../usage/usage.js';
import type { Observation } from './dialect.js';
import { errorMessage, record, type JsonRecord } from './json-value.js';
import { observation } from './observation.js';

/** Usage in either OpenAI shape (chat `prompt_tokens` or Responses `input_tokens`). */
export function openAiUsage(value: unknown, generates = true): Usage | undefined {
  const u = record(value);
  if (!u) return undefined;
  const usage: Usage = {};
  const responsesShape = 'input_tokens' in u || 'output_tokens' in u;
  const input = count(responsesShape ? u.input_tokens : u.prompt_tokens);
  const output = count(responsesShape ? u.output_tokens : u.completion_tokens);
  const inDetails = record(responsesShape ? u.input_tokens_details : u.prompt_tokens_details);
  const outDetails = record(responsesShape ? u.output_tokens_details : u.completion_tokens_details);
  if (input !== undefined) usage.input = input;
  if (output !== undefined) usage.output = output;
  else if (!generates && input !== undefined) usage.output = 0;
  const cached = count(inDetails?.cached_tokens);
  if (cached !== undefined) usage.cachedInput = cached;
  const cacheWrite = count(inDetails?.cache_write_tokens);
  if (cacheWrite !== undefined) usage.cacheWrite = cacheWrite;
  const reasoning = count(outDetails?.reasoning_tokens);
  if (reasoning !== undefined) usage.reasoning = reasoning;
  return Object.keys(usage).length > 0 ? usage : undefined;
}

/** Observation from a Responses API `response` object (body or terminal event). */
export function fromResponseObject(response: JsonRecord): Observation | undefined {
  const failed =
    response.status === 'failed' ? (errorMessage(response.error) ?? 'response failed') : undefined;
  return observation(openAiUsage(response.usage), response.model, failed);
}

/** Removes `"usage":null` (added by include_usage) from a chunk by a byte-safe string edit. */
export function removeNullUsage(data: string): string {
  const key = data.indexOf('"usage":');
  if (key === -1) return data;
  let end = key + 8;
  while (data.charCodeAt(end) === 0x20) end++;
  if (!data.startsWith('null', end)) return data;
  end += 4;
  let start = key;
  let before = key - 1;
  while (data.charCodeAt(before) === 0x20) before--;
  if (data.charCodeAt(before) === 0x2c) start = before;
  else {
    let after = end;
    while (data.charCodeAt(after) === 0x20) after++;
    if (data.charCodeAt(after) === 0x2c) end = after + 1;
  }
  return data.slice(0, start) + data.slice(end);
}
