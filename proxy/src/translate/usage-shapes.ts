/**
 * Token usage between the two shapes. Anthropic's `input_tokens` excludes the prompt cache
 * (reads and writes are separate counters) while OpenAI's `prompt_tokens` includes the cached
 * part, so translating moves the cache counts into or out of the input total.
 */
import { record } from '../dialects/json-value.js';
import { count } from '../usage/usage.js';

/** OpenAI `usage` for an Anthropic usage object (absent counters read as 0). */
export function openaiUsageFromAnthropic(value: unknown): Record<string, unknown> {
  const u = record(value);
  const read = count(u?.cache_read_input_tokens) ?? 0;
  const write = count(u?.cache_creation_input_tokens) ?? 0;
  const prompt = (count(u?.input_tokens) ?? 0) + read + write;
  const completion = count(u?.output_tokens) ?? 0;
  const usage: Record<string, unknown> = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: read },
  };
  const thinking = count(record(u?.output_tokens_details)?.thinking_tokens);
  if (thinking !== undefined) usage.completion_tokens_details = { reasoning_tokens: thinking };
  return usage;
}

/**
 * Anthropic `usage` for an OpenAI usage object. `cache_write_tokens` (listed by the OpenAI
 * SDK, rarely sent) is moved out of the input like the cache read, as Anthropic counts it.
 */
export function anthropicUsageFromOpenai(value: unknown): Record<string, number> {
  const u = record(value);
  const details = record(u?.prompt_tokens_details);
  const read = count(details?.cached_tokens) ?? 0;
  const write = count(details?.cache_write_tokens) ?? 0;
  const prompt = count(u?.prompt_tokens) ?? 0;
  return {
    input_tokens: Math.max(0, prompt - read - write),
    cache_creation_input_tokens: write,
    cache_read_input_tokens: read,
    output_tokens: count(u?.completion_tokens) ?? 0,
  };
}
