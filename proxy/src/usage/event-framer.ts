/**
 * Cuts a response stream into raw event blocks, byte for byte, so the proxy can drop or
 * rewrite one event (the usage-only chunk it asked for on the client's behalf) and forward
 * every other byte untouched. Concatenating everything `push` and `end` return equals the
 * input exactly; only the incomplete tail of the stream is ever held back.
 *
 * SSE: a block is everything up to and including the terminator of a blank line (comments,
 * `id:` lines and the blank line itself included). When that terminator is a \r at the end
 * of a chunk the block is held until the next byte shows whether a \n belongs to it, so a
 * dropped block never leaves half a line ending behind. NDJSON: a block is one line with
 * its \n. Blocks inside one chunk are zero-copy views (`subarray`) of that chunk.
 */
import type { Dialect, StreamEvent } from '../dialects/dialect.js';
import { createNdjsonParser } from './ndjson.js';
import { CR, DEFAULT_MAX_LINE_BYTES, LF, createSseParser, type StreamParser } from './sse.js';

/** The two stream formats a dialect can speak (`Dialect.streamFormat`). */
export type StreamFormat = 'sse' | 'ndjson';

/** Splits a byte stream into complete raw event blocks. */
export interface EventFramer {
  /** The complete blocks this chunk finishes, in order. Never throws. */
  push(chunk: Buffer): Buffer[];
  /** The held-back remainder (possibly empty); resets the framer. */
  end(): Buffer;
  /** The event inside one raw block, or undefined for a comment-only or blank block. */
  eventOf(block: Buffer): StreamEvent | undefined;
}

const EMPTY = Buffer.alloc(0);

/**
 * Most bytes held for one unfinished block (the SSE parser's line cap): past it they go out
 * as a block of their own, so an upstream that never ends an event cannot make the proxy
 * hold its stream. Such a block is forwarded as it is, and metered as the bytes it is.
 */
export const MAX_HELD_BYTES = DEFAULT_MAX_LINE_BYTES;

/** Holds the bytes of an unfinished block across chunks. */
class Held {
  private pieces: Buffer[] = [];
  bytes = 0;

  get empty(): boolean {
    return this.pieces.length === 0;
  }

  add(chunk: Buffer, start: number, end: number): void {
    if (end > start) {
      this.pieces.push(Buffer.from(chunk.subarray(start, end)));
      this.bytes += end - start;
    }
  }

  /** The held bytes followed by chunk[start, end). */
  take(chunk: Buffer, start: number, end: number): Buffer {
    if (this.pieces.length === 0) {
      // A chunk that is one whole block (the usual case) goes on as the same Buffer.
      return start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end);
    }
    const pieces = this.pieces;
    this.pieces = [];
    this.bytes = 0;
    if (end > start) pieces.push(chunk.subarray(start, end));
    return pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces);
  }
}

function createSseFramer(maxHeld: number): Omit<EventFramer, 'eventOf'> {
  const held = new Held();
  /** The current line already has bytes from an earlier chunk. */
  let lineCarried = false;
  /** The previous chunk ended in a \r; a leading \n belongs to that line ending. */
  let afterCr = false;
  /** ...and that \r ended a blank line, so the held bytes are a finished block. */
  let blockAwaitingLf = false;

  return {
    push(chunk) {
      const blocks: Buffer[] = [];
      const length = chunk.length;
      if (length === 0) return blocks;
      let pos = 0;
      let blockStart = 0;
      if (afterCr) {
        afterCr = false;
        if (chunk[0] === LF) pos = 1;
        if (blockAwaitingLf) {
          blockAwaitingLf = false;
          blocks.push(held.take(chunk, 0, pos));
          blockStart = pos;
        }
      }
      let lineStart = pos;
      let cr = chunk.indexOf(CR, pos);
      let lf = chunk.indexOf(LF, pos);
      while (cr !== -1 || lf !== -1) {
        const eol = cr !== -1 && (lf === -1 || cr < lf) ? cr : lf;
        const blank = eol === lineStart && !lineCarried;
        lineCarried = false;
        pos = eol + 1;
        if (eol === cr) {
          if (pos === length) afterCr = true;
          else if (chunk[pos] === LF) pos++;
        }
        if (blank) {
          if (afterCr) {
            blockAwaitingLf = true;
            held.add(chunk, blockStart, pos);
            blockStart = pos;
          } else {
            blocks.push(held.take(chunk, blockStart, pos));
            blockStart = pos;
          }
        }
        lineStart = pos;
        if (cr !== -1 && cr < pos) cr = chunk.indexOf(CR, pos);
        if (lf !== -1 && lf < pos) lf = chunk.indexOf(LF, pos);
      }
      if (blockStart < length) held.add(chunk, blockStart, length);
      if (lineStart < length) lineCarried = true;
      if (held.bytes > maxHeld && !blockAwaitingLf) blocks.push(held.take(EMPTY, 0, 0));
      return blocks;
    },
    end() {
      lineCarried = false;
      afterCr = false;
      blockAwaitingLf = false;
      return held.empty ? EMPTY : held.take(EMPTY, 0, 0);
    },
  };
}

function createNdjsonFramer(maxHeld: number): Omit<EventFramer, 'eventOf'> {
  const held = new Held();
  return {
    push(chunk) {
      const blocks: Buffer[] = [];
      let start = 0;
      let lf = chunk.indexOf(LF);
      while (lf !== -1) {
        blocks.push(held.take(chunk, start, lf + 1));
        start = lf + 1;
        lf = chunk.indexOf(LF, start);
      }
      if (start < chunk.length) held.add(chunk, start, chunk.length);
      if (held.bytes > maxHeld) blocks.push(held.take(EMPTY, 0, 0));
      return blocks;
    },
    end() {
      return held.empty ? EMPTY : held.take(EMPTY, 0, 0);
    },
  };
}

const DATA_PREFIX = Buffer.from('data: ');

/**
 * The data of a block that is exactly `data: <line>\n\n` (no other field, no CR, no second
 * data line), decoded; undefined for anything else, which the parser then reads.
 */
function singleDataLine(block: Buffer): string | undefined {
  const length = block.length;
  if (length < 8 || block[length - 1] !== LF || block[length - 2] !== LF) return undefined;
  for (let i = 0; i < 6; i++) if (block[i] !== DATA_PREFIX[i]) return undefined;
  const lf = block.indexOf(LF, 6);
  if (lf !== length - 2 || block.indexOf(CR, 6) !== -1) return undefined;
  return block.toString('utf8', 6, length - 2);
}

/** Creates a framer for the given stream format. */
export function createEventFramer(format: StreamFormat, maxHeld = MAX_HELD_BYTES): EventFramer {
  const framer = format === 'sse' ? createSseFramer(maxHeld) : createNdjsonFramer(maxHeld);
  const parser: StreamParser = format === 'sse' ? createSseParser() : createNdjsonParser();
  return {
    push: framer.push,
    end: framer.end,
    eventOf(block) {
      // The usual SSE block, `data: <one line>` and a blank line, is read without the
      // parser: one decode, as the parser itself would make.
      if (format === 'sse') {
        const data = singleDataLine(block);
        if (data !== undefined) return { event: '', data };
      }
      const events = parser.push(block);
      const rest = parser.end();
      return events[0] ?? rest[0];
    },
  };
}

/**
 * Writes an event back as a raw block in the given format, with `lineEnding` ("\n" or
 * "\r\n", normally the one the original block used). Used only for rewritten events.
 */
export function serializeEvent(event: StreamEvent, format: StreamFormat, lineEnding = '\n'): Buffer {
  if (format === 'ndjson') return Buffer.from(event.data + lineEnding, 'utf8');
  let text = event.event === '' ? '' : `event: ${event.event}${lineEnding}`;
  for (const line of event.data.split('\n')) text += `data: ${line}${lineEnding}`;
  return Buffer.from(text + lineEnding, 'utf8');
}

/** The line ending a raw block uses: "\r\n" if its first line ending is one, else "\n". */
export function lineEndingOf(block: Buffer): string {
  const lf = block.indexOf(LF);
  return lf > 0 && block[lf - 1] === CR ? '\r\n' : '\n';
}

/**
 * Applies a dialect's per-event rewrite to one raw block: the block itself when the rewrite
 * leaves the event alone (same object back), null to drop it, or the re-serialised event.
 */
export function rewriteBlock(
  framer: EventFramer,
  format: StreamFormat,
  block: Buffer,
  rewrite: (event: StreamEvent) => StreamEvent | null,
): Buffer | null {
  const event = framer.eventOf(block);
  if (!event) return block;
  const rewritten = rewrite(event);
  if (rewritten === event) return block;
  if (rewritten === null) return null;
  return serializeEvent(rewritten, format, lineEndingOf(block));
}

/**
 * Hides usage the proxy requested on the client's behalf in one raw block: the block to
 * forward (unchanged bytes when nothing needs hiding) or null to drop it. Tries the
 * dialect's byte-level fast path, then its event-level `hideInjectedUsage`.
 */
export function hideInjectedUsageBlock(framer: EventFramer, dialect: Dialect, block: Buffer): Buffer | null {
  if (dialect.hideInjectedUsageInBlock) {
    const fast = dialect.hideInjectedUsageInBlock(block);
    if (fast !== undefined) return fast;
  }
  if (!dialect.hideInjectedUsage) return block;
  return rewriteBlock(framer, dialect.streamFormat, block, dialect.hideInjectedUsage.bind(dialect));
}
