/**
 * Counts output tokens with a real tokenizer, for the one case where the upstream never
 * reported them (a stream cut off before its usage event, a server that does not report).
 * It runs once per such response at stream end, never on the hot path. o200k_base is the
 * encoding of current OpenAI models; for other providers' models it is an approximation,
 * which is why such records are marked `estimated` or `partial`.
 */
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';

/** Texts longer than this are counted in slices, so one huge string cannot stall the loop. */
const SLICE_CHARS = 64 * 1024;

/** The number of tokens in the concatenation of `texts` (approximately: texts are counted separately). */
export function estimateOutputTokens(texts: readonly string[]): number {
  let total = 0;
  let pending = '';
  for (const text of texts) {
    // Stream deltas are tiny; joining them first keeps word pieces together and makes one call.
    pending += text;
    if (pending.length >= SLICE_CHARS) {
      total += countTokens(pending);
      pending = '';
    }
  }
  if (pending !== '') total += countTokens(pending);
  return total;
}
