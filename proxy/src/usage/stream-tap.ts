/**
 * Meters a streamed response as it passes: cuts it into raw event blocks (event-framer.ts,
 * the same pass the usage hider reads when both run), parses as JSON only the events the
 * dialect's cheap `usageHint` selects (plus the first event, which names the model), and
 * folds every observation into one Usage with `mergeUsage` (later fields win; reports are
 * running totals and are never summed). A byte search for usage keys before decoding an
 * event was tried and cost more than the decode it saved (docs/performance.md).
 *
 * It keeps the raw blocks, bounded, only so that output tokens can be estimated when the
 * stream never reports them; they are decoded and their text extracted once, at the end,
 * and only if needed. A bad event is skipped, a dialect that throws is contained: metering
 * never breaks a stream.
 */
import type { Dialect, DialectRoute, Observation, StreamEvent } from '../dialects/dialect.js';
import { createEventFramer, type EventFramer } from './event-framer.js';
import { tooDeepForJson } from './json-depth.js';
import { hasUsage, mergeUsage, type Usage } from './usage.js';

/** What a finished stream told the meter. */
export interface TapResult {
  /** Usage as reported, field by field; empty when the stream reported none. */
  usage: Usage;
  /** The latest non-empty model id the stream named. */
  model?: string;
  /** The latest in-band error (a failure after a 200 status). */
  error?: string;
  /** True when at least one usage figure was reported. */
  reported: boolean;
  /**
   * The generated text, for estimating output with `estimateOutputTokens`. Filled only
   * when no output count above 0 was reported (otherwise empty); covers at most `maxRetainedBytes`.
   */
  texts: string[];
  /** Events seen, and how many of them were parsed as JSON (for tests and benchmarks). */
  events: number;
  parsed: number;
  /** Bytes of event blocks still held for an estimate when the stream ended (memory cost). */
  retainedBytes: number;
}

/** Meters one response stream: feed it every chunk (or the framer's blocks), then call `end` once. */
export interface StreamTap {
  /** The framer the tap cuts with; a stage that frames the same bytes may share its blocks. */
  readonly framer: EventFramer;
  push(chunk: Buffer): void;
  /** Blocks already cut by `framer` (push and end of it), instead of `push`. */
  pushBlocks(blocks: readonly Buffer[]): void;
  end(): TapResult;
}

/** Options of `createStreamTap`. */
export interface StreamTapOptions {
  /** Event blocks kept for estimating output, then extracted text kept. Default 4 MiB each. */
  maxRetainedBytes?: number;
}

/** Default bound on event data (and then text) kept per stream for output estimates. */
export const DEFAULT_MAX_RETAINED_BYTES = 4 * 1024 * 1024;

/**
 * What one kept block (a Buffer view) costs beyond its bytes, charged against the bound:
 * without it a stream of 2-byte events kept 4 MiB of them as two million views, over 200 MB
 * of heap.
 */
const BLOCK_COST = 96;

/** Kept texts are joined in groups of this many, for the same reason (one string each). */
const TEXTS_PER_JOIN = 256;

/** Creates a tap for one response stream of `route`. */
export function createStreamTap(
  dialect: Dialect,
  route: DialectRoute,
  options: StreamTapOptions = {},
): StreamTap {
  const maxRetained = options.maxRetainedBytes ?? DEFAULT_MAX_RETAINED_BYTES;
  const framer = createEventFramer(dialect.streamFormat);
  let usage: Usage = {};
  let model: string | undefined;
  let error: string | undefined;
  let events = 0;
  let parsed = 0;
  let firstParsed = false;
  /** Raw blocks kept while under the cap; after it, their text (extracted as they come). */
  let retained: Buffer[] | undefined = [];
  let retainedBytes = 0;
  const texts: string[] = [];
  /** The latest texts, not yet joined into one entry of `texts`. */
  let pieces: string[] = [];
  let textChars = 0;

  function observe(observation: Observation | undefined): void {
    if (!observation) return;
    usage = mergeUsage(usage, observation.usage);
    if (observation.model) model = observation.model;
    if (observation.error) error = observation.error;
  }

  function keepText(event: StreamEvent | undefined): void {
    if (!event || textChars >= maxRetained) return;
    const text = safeText(dialect, event, route);
    if (text === '') return;
    pieces.push(text);
    textChars += text.length;
    if (pieces.length >= TEXTS_PER_JOIN) {
      texts.push(pieces.join(''));
      pieces = [];
    }
  }

  function retain(block: Buffer, event: StreamEvent): void {
    if (usage.output) {
      // Output is reported (running totals, or a final report): no estimate will be needed.
      // Not a zero: some OpenAI-compatible servers (Ollama's /v1/completions) put an all-zero
      // usage on every early chunk, and a stream cut off before its last would have left
      // nothing to estimate the text delivered from.
      if (retainedBytes > 0 || texts.length > 0 || pieces.length > 0) {
        retained = [];
        retainedBytes = 0;
        texts.length = 0;
        pieces = [];
      }
      return;
    }
    if (retained) {
      retainedBytes += block.length + BLOCK_COST;
      if (retainedBytes <= maxRetained) {
        retained.push(block);
        return;
      }
      // Past the cap: keep only the text, which is a fraction of the raw JSON.
      for (const kept of retained) keepText(framer.eventOf(kept));
      retained = undefined;
    }
    keepText(event);
  }

  function handle(block: Buffer): void {
    if (block.length === 0) return;
    const event = framer.eventOf(block);
    // A comment or a blank block: nothing to meter or keep. An event nested too deep to be
    // any provider's is not parsed at all (json-depth.ts).
    if (!event || tooDeepForJson(event.data)) return;
    events++;
    if (!firstParsed || safeHint(dialect, event)) {
      firstParsed = true;
      parsed++;
      observe(safeObserve(dialect, event, route));
    }
    retain(block, event);
  }

  return {
    framer,
    push(chunk) {
      for (const block of framer.push(chunk)) handle(block);
    },
    pushBlocks(blocks) {
      for (const block of blocks) handle(block);
    },
    end() {
      handle(framer.end());
      const held = retained ? retainedBytes : 0;
      const result: TapResult = {
        usage,
        reported: hasUsage(usage),
        texts: [],
        events,
        parsed,
        retainedBytes: held,
      };
      if (model) result.model = model;
      if (error) result.error = error;
      if (!usage.output) {
        if (retained) for (const block of retained) keepText(framer.eventOf(block));
        texts.push(...pieces);
        result.texts = texts;
      }
      retained = [];
      return result;
    },
  };
}

function safeHint(dialect: Dialect, event: StreamEvent): boolean {
  try {
    return dialect.usageHint(event);
  } catch {
    return true;
  }
}

function safeObserve(dialect: Dialect, event: StreamEvent, route: DialectRoute): Observation | undefined {
  try {
    return dialect.usageFromEvent(event, route);
  } catch {
    return undefined;
  }
}

function safeText(dialect: Dialect, event: StreamEvent, route: DialectRoute): string {
  try {
    return dialect.textFromEvent(event, route);
  } catch {
    return '';
  }
}

/**
 * The complete top-level elements of a JSON array that was cut off (Gemini's streamed JSON
 * array without `alt=sse`, ended early), or undefined when `bytes` is not such an array.
 * A byte scan that tracks strings and nesting; only used when JSON.parse already failed.
 */
export function completeArrayElements(bytes: Buffer): unknown[] | undefined {
  let i = 0;
  while (
    i < bytes.length &&
    (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)
  )
    i++;
  if (bytes[i] !== 0x5b) return undefined;
  const elements: unknown[] = [];
  let depth = 0;
  let inString = false;
  let start = -1;
  for (i = i + 1; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === 0x5c) i++;
      else if (b === 0x22) inString = false;
      continue;
    }
    if (b === 0x22) inString = true;
    else if (b === 0x7b || b === 0x5b) {
      if (depth === 0) start = i;
      depth++;
    } else if (b === 0x7d || b === 0x5d) {
      if (depth === 0) break;
      depth--;
      if (depth === 0 && start !== -1) {
        try {
          elements.push(JSON.parse(bytes.toString('utf8', start, i + 1)));
        } catch {
          return undefined;
        }
        start = -1;
      }
    }
  }
  return elements;
}

/**
 * Usage, model and error from a complete (non-streamed) response body. Never throws. A
 * JSON array that was cut off is read up to its last complete element; a body that is not
 * JSON but a stream in the dialect's format (a server that streamed without saying so) is
 * metered as a stream.
 */
export function usageFromJsonBody(
  dialect: Dialect,
  route: DialectRoute,
  bytes: Buffer,
): Observation | undefined {
  const text = bytes.toString('utf8');
  if (tooDeepForJson(text)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    const elements = completeArrayElements(bytes);
    if (elements) {
      try {
        return dialect.usageFromJson(elements, route);
      } catch {
        return undefined;
      }
    }
    const tap = createStreamTap(dialect, route, { maxRetainedBytes: 0 });
    tap.push(bytes);
    const result = tap.end();
    if (!result.reported && !result.model && !result.error) return undefined;
    const observation: Observation = {};
    if (result.reported) observation.usage = result.usage;
    if (result.model) observation.model = result.model;
    if (result.error) observation.error = result.error;
    return observation;
  }
  try {
    return dialect.usageFromJson(json, route);
  } catch {
    return undefined;
  }
}
