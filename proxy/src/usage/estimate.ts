/**
 * Counts output tokens with a real tokenizer, for the one case where the upstream never
 * reported them (a stream cut off before its usage event, a server that does not report).
 * It runs once per such response at stream end, never on the hot path. o200k_base is the
 * encoding of current OpenAI models; for other providers' models it is an approximation,
 * which is why such records are marked `estimated` or `partial`.
 */
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';

/**
 * Texts are counted in slices of this size, so word pieces rarely straddle a cut and the
 * time budget below is checked often enough to hold.
 */
const SLICE_CHARS = 8 * 1024;

/**
 * Beyond this many characters the rest is extrapolated from the tokens per character of
 * what was counted: tokenizing megabytes would block the event loop for most of a second.
 */
export const MAX_TOKENIZED_CHARS = 1024 * 1024;

/**
 * Counting also stops after this much time, whatever is left: CJK text costs the tokenizer
 * ~2 µs a character even cut into short runs, forty times English, so a megabyte of it
 * would still hold the event loop for two seconds.
 */
const TIME_BUDGET_MS = 50;

/**
 * The longest run of one kind (whitespace, or anything else) given to the tokenizer at once.
 * Its byte-pair merging grows with the square of a pre-token's length, and a run without a
 * break is one pre-token: 64 KiB of unpunctuated CJK took 10 s, of one repeated letter 2 s,
 * of spaces 1.9 s, every other tenant waiting. A model that degenerates into repeating a
 * character, or a tenant that asks for it and hangs up, made the proxy count it. Cut every
 * 256 characters, the same 64 KiB of CJK take 0.14 s and English is not cut at all.
 */
const RUN_CHARS = 256;

function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

/** Tokens in `text`, any run longer than RUN_CHARS counted in pieces. */
function countSlice(text: string): number {
  let total = 0;
  let start = 0;
  let run = 0;
  let space = false;
  for (let i = 0; i < text.length; i++) {
    const s = isSpace(text.charCodeAt(i));
    if (s !== space) {
      space = s;
      run = 0;
    }
    if (++run >= RUN_CHARS) {
      total += countTokens(text.slice(start, i + 1));
      start = i + 1;
      run = 0;
    }
  }
  return start === 0 ? countTokens(text) : total + countTokens(text.slice(start));
}

/** The number of tokens in the concatenation of `texts`. */
export function estimateOutputTokens(texts: readonly string[]): number {
  const started = performance.now();
  let total = 0;
  let counted = 0;
  let skipped = 0;
  let counting = true;
  let pending = '';
  const flush = () => {
    total += countSlice(pending);
    counted += pending.length;
    pending = '';
    if (counted >= MAX_TOKENIZED_CHARS || performance.now() - started > TIME_BUDGET_MS) counting = false;
  };
  for (const text of texts) {
    // Stream deltas are tiny; joining them keeps word pieces together and makes few calls. A
    // long text (a whole answer) is taken a slice at a time.
    for (let at = 0; at < text.length;) {
      if (!counting) {
        skipped += text.length - at;
        break;
      }
      const take = Math.min(text.length - at, SLICE_CHARS - pending.length);
      pending += text.slice(at, at + take);
      at += take;
      if (pending.length >= SLICE_CHARS) flush();
    }
  }
  if (pending !== '') flush();
  return skipped === 0 || counted === 0 ? total : Math.ceil(total + (total / counted) * skipped);
}
