/**
 * A cheap, deliberately generous prompt-size estimate for admission checks (context limits,
 * token reservations). No tokenizer runs on the request path: text is counted by its runs
 * of letters, digits, spaces and marks in one pass (`textTokens`), object keys count a
 * quarter token per character (they stand in for the per-message
 * framing every provider adds) and numbers count one token each (token-id prompts are then
 * exact).
 *
 * Only an image counts less than its size, and only in a field its dialect sends to the
 * model as an image (a media slot): there it counts a fixed allowance. Everywhere else a
 * `data:` URL or a base64 string is counted as text, because the model may read it as text:
 * a tenant who could make a long prompt look like an image would pass max_context and
 * reserve almost nothing against tokens_per_hour and budgets.
 */

/**
 * Tokens counted for one inline image (generous: a large high-detail image), and the least
 * counted for any other attachment.
 */
export const BINARY_ALLOWANCE_TOKENS = 1600;

/**
 * A field that carries an attachment as base64: `holder[key]`, or, with no key, every string
 * in the array `holder` (Ollama's `images`).
 */
export interface MediaSlot {
  readonly key: string | undefined;
  /** The media type declared beside the payload. A `data:` URL's own type wins over it. */
  readonly mediaType: string | undefined;
}

/**
 * The media slots of one request, by the object or array that holds each payload. Holders
 * are found by identity, so a lookalike object elsewhere in the body (inside a tool's
 * arguments, say) is not a slot: the model reads that one as text.
 */
export type MediaSlots = Map<object, MediaSlot>;

/** Records a media slot; a holder that is not an object (the body was malformed) is skipped. */
export function addMediaSlot(
  slots: MediaSlots,
  holder: unknown,
  key: string | undefined,
  mediaType?: unknown,
): void {
  if (typeof holder !== 'object' || holder === null) return;
  slots.set(holder, { key, mediaType: typeof mediaType === 'string' ? mediaType : undefined });
}

/** Nesting deeper than this is not walked (no real prompt gets close). */
const MAX_DEPTH = 64;

/** `data:<type>[;param]...;base64,`. Matched against the first characters only. */
const DATA_URL_HEADER = /^data:([^;,]*)(?:;[^;,]*)*;base64,/i;
const DATA_URL_HEADER_MAX = 256;

/**
 * Standard or URL-safe base64, optionally padded, nothing else (no whitespace). One linear
 * regex pass over the whole payload: cheaper than decoding it, and a sample could miss text
 * between the samples.
 */
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Base64 characters decoded to tell binary from text: 48 bytes, past every image format's header. */
const SNIFF_CHARS = 64;

/** Character classes of the scan below. */
const NONE = 0;
const LETTER = 1;
const DIGIT = 2;
const SPACE = 3;
const MARK = 4;
const WIDE = 5;
const ASTRAL = 6;

function classOf(code: number): number {
  if (code < 0x80) {
    if ((code >= 0x61 && code <= 0x7a) || (code >= 0x41 && code <= 0x5a)) return LETTER;
    if (code >= 0x30 && code <= 0x39) return DIGIT;
    if (code === 0x20 || (code >= 0x09 && code <= 0x0d)) return SPACE;
    return MARK;
  }
  if (code < 0x800) return LETTER;
  if (code >= 0xd800 && code <= 0xdfff) return ASTRAL;
  return WIDE;
}

/**
 * Tokens of a run of one class, as a byte-pair tokenizer splits text before merging (the
 * o200k and cl100k patterns): a word is at least one token, a quarter per letter beyond
 * (two-byte letters, Cyrillic or Greek, a half); digits go in groups of three; punctuation
 * is about one token a character; a whitespace run is one token, unless it is the single
 * space or tab a following word or mark takes in; a character of three UTF-8 bytes (CJK,
 * Devanagari) three quarters of a token, as before, and one of four (emoji, rare scripts)
 * three: byte-level fallback makes it up to four, a common emoji one or two.
 */
function runTokens(kind: number, length: number, weight: number, next: number, lone: boolean): number {
  switch (kind) {
    case LETTER:
      return Math.max(1, weight);
    case DIGIT:
      return Math.ceil(length / 3);
    case SPACE:
      return lone && (next === LETTER || next === MARK || next === WIDE) ? 0 : 1;
    case MARK:
      return Math.max(1, length * 0.75);
    case WIDE:
      return length * 0.75;
    case ASTRAL:
      return length * 1.5;
    default:
      return 0;
  }
}

/**
 * Tokens of a string: a quarter token per UTF-8 byte, or what its runs count (one pass over
 * its characters) when that is more. A quarter per byte is what English costs, but spaced
 * digits, punctuation and rare scripts cost up to four times that: such a prompt passed
 * max_context at four times the limit and reserved a quarter of its tokens against
 * tokens_per_hour and budgets (docs/security.md). Checked against the o200k tokenizer in
 * prompt-size.test.ts: never far below it, but for unbroken runs of random letters (base64,
 * about half), and not far above it for prose, code or the common scripts.
 */
function textTokens(value: string): number {
  return Math.max(Buffer.byteLength(value, 'utf8') / 4, runsTokens(value));
}

function runsTokens(value: string): number {
  let tokens = 0;
  let kind = NONE;
  let length = 0;
  let weight = 0;
  let lone = false;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    const next = classOf(code);
    if (next !== kind) {
      tokens += runTokens(kind, length, weight, next, lone);
      kind = next;
      length = 0;
      weight = 0;
      lone = code === 0x20 || code === 0x09;
    } else lone = false;
    length++;
    weight += code < 0x80 ? 0.25 : 0.5;
  }
  return tokens + runTokens(kind, length, weight, NONE, lone);
}

function isBase64(payload: string): boolean {
  return payload.length % 4 !== 1 && BASE64.test(payload);
}

/**
 * False when the payload's first bytes decode to text (UTF-8 without control characters).
 * Every image format starts with a binary signature or length field, so a payload labelled
 * as an image that decodes to text is counted as text, in case some server takes the label
 * less strictly than the big providers (which refuse a non-image).
 */
function startsAsBinary(payload: string): boolean {
  const head = Buffer.from(payload.slice(0, SNIFF_CHARS), 'base64');
  if (head.length === 0) return false;
  for (const byte of head) {
    if ((byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) || byte === 0x7f) return true;
  }
  try {
    // stream: a multi-byte character cut at the end of the sample is not an error.
    new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: true });
    return false;
  } catch {
    return true;
  }
}

/**
 * An attachment by reference (`https://`, `gs://`): the provider fetches it and bills its
 * content, which the proxy never sees. No whitespace, so a prompt with a scheme in front is
 * still text.
 */
const REMOTE_URL = /^[a-z][a-z0-9+.-]{0,31}:\/\/\S+$/i;

/**
 * Tokens for a string in a media slot. A real base64 image counts the allowance. Anything
 * else is counted by its size: what is not base64 is sent as is and may be read as text.
 * Documents, audio and video are billed by their content (a PDF per page and per word
 * extracted, audio by the second), which cannot be read without decoding them: their size
 * is the fair share counted, a third of a token per decoded byte, and at least one allowance
 * (a page or a short clip). An attachment by URL counts one allowance, or its text if
 * longer: counted as the twenty-odd tokens of its text, a request of hundreds of image URLs
 * was admitted as a short prompt and billed hundreds of thousands of tokens afterwards.
 */
function mediaTokens(value: string, declared: string | undefined): number {
  let mediaType = declared;
  let payload = value;
  if (REMOTE_URL.test(value)) return Math.max(BINARY_ALLOWANCE_TOKENS, textTokens(value));
  if (value.startsWith('data:')) {
    const header = DATA_URL_HEADER.exec(value.slice(0, DATA_URL_HEADER_MAX));
    if (!header) return textTokens(value);
    mediaType = header[1];
    payload = value.slice(header[0].length);
  }
  if (!isBase64(payload)) return textTokens(value);
  if (!mediaType?.toLowerCase().startsWith('image/')) {
    return Math.max(BINARY_ALLOWANCE_TOKENS, textTokens(value));
  }
  return startsAsBinary(payload) ? BINARY_ALLOWANCE_TOKENS : textTokens(value);
}

function walk(
  value: unknown,
  holder: object | undefined,
  key: string | undefined,
  slots: ReadonlyMap<object, MediaSlot>,
  depth: number,
): number {
  if (typeof value === 'string') {
    const slot = holder === undefined ? undefined : slots.get(holder);
    return slot !== undefined && slot.key === key ? mediaTokens(value, slot.mediaType) : textTokens(value);
  }
  if (typeof value === 'number') return 1;
  if (typeof value !== 'object' || value === null || depth > MAX_DEPTH) return 0;
  let sum = 0;
  if (Array.isArray(value)) {
    for (const item of value) sum += walk(item, value, undefined, slots, depth + 1);
    return sum;
  }
  sum += 1;
  for (const name in value) {
    sum += name.length / 4 + walk((value as Record<string, unknown>)[name], value, name, slots, depth + 1);
  }
  return sum;
}

const NO_MEDIA: ReadonlyMap<object, MediaSlot> = new Map();

/**
 * Estimated tokens of the given parts of a request body, every string counted as text. Pass
 * only the fields that reach the model (messages, tools, instructions...), not sampling
 * settings.
 */
export function estimateJsonTokens(...values: unknown[]): number {
  return estimateWithMedia(NO_MEDIA, ...values);
}

/** {@link estimateJsonTokens}, with images in the given media slots counted as one allowance each. */
export function estimateWithMedia(slots: ReadonlyMap<object, MediaSlot>, ...values: unknown[]): number {
  let sum = 0;
  for (const value of values) sum += walk(value, undefined, undefined, slots, 0);
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
