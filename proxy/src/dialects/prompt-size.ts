/**
 * A cheap, deliberately generous prompt-size estimate for admission checks (context limits,
 * token reservations). No tokenizer runs on the request path: text counts as a quarter
 * token per UTF-8 byte, object keys count like text (they stand in for the per-message
 * framing every provider adds), numbers count one token each (token-id prompts are then
 * exact) and binary payloads (images, audio, files as base64 or data URIs) count a fixed
 * allowance each instead of by their size.
 */

/** Tokens counted for one image or other binary attachment. Generous: a large high-detail image. */
export const BINARY_ALLOWANCE_TOKENS = 1600;

/** Keys whose long string values (or arrays of them) are base64 payloads, never text. */
const BINARY_KEYS = new Set(['data', 'images', 'image_url', 'file_data', 'b64_json', 'image', 'audio']);

/** Strings shorter than this are always counted as text, whatever their key. */
const BINARY_MIN_LENGTH = 256;

/** Nesting deeper than this is not walked (no real prompt gets close). */
const MAX_DEPTH = 64;

/** Tokens for one string value under `key`. */
function stringTokens(value: string, key: string | undefined): number {
  if (
    value.length >= BINARY_MIN_LENGTH &&
    ((key !== undefined && BINARY_KEYS.has(key)) || value.startsWith('data:'))
  ) {
    return BINARY_ALLOWANCE_TOKENS;
  }
  return Buffer.byteLength(value, 'utf8') / 4;
}

function walk(value: unknown, key: string | undefined, depth: number): number {
  if (typeof value === 'string') return stringTokens(value, key);
  if (typeof value === 'number') return 1;
  if (typeof value !== 'object' || value === null || depth > MAX_DEPTH) return 0;
  let sum = 0;
  if (Array.isArray(value)) {
    for (const item of value) sum += walk(item, key, depth + 1);
    return sum;
  }
  sum += 1;
  for (const name in value) {
    sum += name.length / 4 + walk((value as Record<string, unknown>)[name], name, depth + 1);
  }
  return sum;
}

/**
 * Estimated tokens of the given parts of a request body. Pass only the fields that reach
 * the model (messages, tools, instructions...), not sampling settings.
 */
export function estimateJsonTokens(...values: unknown[]): number {
  let sum = 0;
  for (const value of values) sum += walk(value, undefined, 0);
  return Math.ceil(sum);
}

/** True when `parts` (an array of content parts) has a part whose `type` is one of `types`. */
export function hasPartType(parts: unknown, types: ReadonlySet<string>): boolean {
  if (!Array.isArray(parts)) return false;
  for (const part of parts) {
    if (typeof part === 'object' && part !== null && types.has((part as { type?: unknown }).type as string)) {
      return true;
    }
  }
  return false;
}
