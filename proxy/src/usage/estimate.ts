/**
 * Counts output tokens with a real tokenizer, for the one case where the upstream never
 * reported them (a stream cut off before its usage event, a server that does not report).
 * It runs once per such response at stream end, never on the hot path. o200k_base is the
 * encoding of current OpenAI models; for other providers' models it is an approximation,
 * which is why such records are marked `estimated` or `partial`.
 */
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';

/** Texts are counted in slices of this size, so word pieces rarely straddle a cut. */
const SLICE_CHARS = 64 * 1024;

/**
 * Beyond this many characters the rest is extrapolated from the tokens per character of
 * what was counted: tokenizing megabytes would block the event loop for most of a second.
 */
export const MAX_TOKENIZED_CHARS = 1024 * 1024;

/** The number of tokens in the concatenation of `texts`. */
export function estimateOutputTokens(texts: readonly string[]): number {
  let total = 0;
  let counted = 0;
  let skipped = 0;
  let pending = '';
  for (const text of texts) {
    if (counted >= MAX_TOKENIZED_CHARS) {
      skipped += text.length;
      continue;
    }
    // Stream deltas are tiny; joining them keeps word pieces together and makes few calls.
    pending += text;
    if (pending.length >= SLICE_CHARS) {
      total += countTokens(pending);
      counted += pending.length;
      pending = '';
    }
  }
  if (pending !== '') {
    total += countTokens(pending);
    counted += pending.length;
  }
  return skipped === 0 || counted === 0 ? total : Math.ceil(total + (total / counted) * skipped);
}
