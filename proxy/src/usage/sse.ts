/**
 * An incremental Server-Sent Events parser for metering. It runs on every chunk of every
 * streamed response, so it works on bytes: it finds line ends with Buffer.indexOf, decodes
 * only complete lines (a UTF-8 character split across chunks is therefore never an issue)
 * and copies only the unfinished tail of a chunk.
 *
 * It follows the WHATWG "server-sent events" parsing rules: lines end in \r\n, \n or a lone
 * \r (a \r at the end of a chunk may be half of a \r\n, so a following \n is skipped);
 * an empty line dispatches; `name:value` loses exactly one leading space from the value;
 * a line without a colon is a field with an empty value; `:` lines are comments; several
 * `data:` lines join with "\n"; a leading UTF-8 BOM is dropped; an event with no `data:`
 * line is not dispatched.
 *
 * Deliberate differences from the spec, both in favour of metering:
 * - `event` stays "" when no `event:` line came (the spec says "message"), so a dialect can
 *   tell a data-only stream from one that names its events.
 * - `end()` dispatches an unterminated final event (the spec discards it): a usage report in
 *   a stream that lost its last blank line is still a usage report.
 * - A line longer than `maxLineBytes` is skipped instead of buffered without bound.
 */
import type { StreamEvent } from '../dialects/dialect.js';

/** Parses a byte stream into events, chunk by chunk. */
export interface StreamParser {
  /** Feeds the next chunk; returns the events it completed (often none). Never throws. */
  push(chunk: Buffer): readonly StreamEvent[];
  /** Ends the stream: returns whatever the buffered tail completes, and resets the parser. */
  end(): readonly StreamEvent[];
}

/** Options shared by the SSE and NDJSON parsers. */
export interface StreamParserOptions {
  /** Longest line kept, in bytes; longer lines are dropped whole. Default 16 MiB. */
  maxLineBytes?: number;
}

/** Default cap on one line: generous enough for a Responses `response.completed` with images. */
export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

/** Line feed and carriage return, the bytes lines end with. */
export const LF = 0x0a;
/** See LF. */
export const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;

/** The shared "no events" answer; frozen so a caller cannot fill it by mistake. */
export const NO_EVENTS: readonly StreamEvent[] = Object.freeze([]);

/** True when bytes [start, start+3) are a UTF-8 byte order mark. */
export function isBom(buf: Buffer, start: number, end: number): boolean {
  return end - start >= 3 && buf[start] === 0xef && buf[start + 1] === 0xbb && buf[start + 2] === 0xbf;
}

/**
 * Collects the bytes of a line that spans chunks. Pieces are copied (the caller may reuse
 * its chunk buffers) and joined once, when the line ends, so a long line costs O(n).
 */
export class LineCarry {
  private pieces: Buffer[] = [];
  private bytes = 0;
  /** Set when the carried line outgrew the cap; the rest of it is ignored. */
  overflow = false;

  constructor(private readonly maxBytes: number) {}

  get empty(): boolean {
    return this.bytes === 0 && !this.overflow;
  }

  add(chunk: Buffer, start: number, end: number): void {
    if (this.overflow || start >= end) return;
    if (this.bytes + (end - start) > this.maxBytes) {
      this.overflow = true;
      this.pieces = [];
      this.bytes = 0;
      return;
    }
    this.pieces.push(Buffer.from(chunk.subarray(start, end)));
    this.bytes += end - start;
  }

  /** The carried bytes followed by chunk[start, end), or undefined when the line overflowed. */
  take(chunk: Buffer, start: number, end: number): Buffer | undefined {
    const overflow = this.overflow || this.bytes + (end - start) > this.maxBytes;
    const pieces = this.pieces;
    this.pieces = [];
    this.bytes = 0;
    this.overflow = false;
    if (overflow) return undefined;
    if (end > start) pieces.push(chunk.subarray(start, end));
    return pieces.length === 1 ? pieces[0] : Buffer.concat(pieces);
  }
}

/** Creates an SSE parser. See the file header for the exact rules. */
export function createSseParser(options: StreamParserOptions = {}): StreamParser {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const carry = new LineCarry(maxLineBytes);
  let skipLf = false;
  let firstLine = true;
  let eventName = '';
  let data = '';
  let hasData = false;
  let out: StreamEvent[] | undefined;

  function dispatch(): void {
    if (hasData) (out ??= []).push({ event: eventName, data });
    eventName = '';
    data = '';
    hasData = false;
  }

  function line(buf: Buffer, start: number, end: number): void {
    if (firstLine) {
      firstLine = false;
      if (isBom(buf, start, end)) start += 3;
    }
    if (start === end) return dispatch();
    if (buf[start] === COLON) return;
    let colon = buf.indexOf(COLON, start);
    if (colon === -1 || colon > end) colon = end;
    let valueStart = colon + 1;
    if (valueStart < end && buf[valueStart] === SPACE) valueStart++;
    if (valueStart > end) valueStart = end;
    const nameLength = colon - start;
    if (
      nameLength === 4 &&
      buf[start] === 0x64 &&
      buf[start + 1] === 0x61 &&
      buf[start + 2] === 0x74 &&
      buf[start + 3] === 0x61
    ) {
      const value = valueStart < end ? buf.toString('utf8', valueStart, end) : '';
      data = hasData ? `${data}\n${value}` : value;
      hasData = true;
    } else if (
      nameLength === 5 &&
      buf[start] === 0x65 &&
      buf[start + 1] === 0x76 &&
      buf[start + 2] === 0x65 &&
      buf[start + 3] === 0x6e &&
      buf[start + 4] === 0x74
    ) {
      eventName = valueStart < end ? buf.toString('utf8', valueStart, end) : '';
    }
    // `id`, `retry` and unknown fields carry nothing the meter needs.
  }

  function completeLine(chunk: Buffer, start: number, end: number): void {
    if (carry.empty) return line(chunk, start, end);
    const whole = carry.take(chunk, start, end);
    if (whole) line(whole, 0, whole.length);
  }

  return {
    push(chunk) {
      out = undefined;
      const length = chunk.length;
      if (length === 0) return NO_EVENTS;
      let pos = 0;
      if (skipLf) {
        skipLf = false;
        if (chunk[0] === LF) pos = 1;
      }
      let cr = chunk.indexOf(CR, pos);
      let lf = chunk.indexOf(LF, pos);
      while (cr !== -1 || lf !== -1) {
        const eol = cr !== -1 && (lf === -1 || cr < lf) ? cr : lf;
        completeLine(chunk, pos, eol);
        pos = eol + 1;
        if (eol === cr) {
          if (pos === length) skipLf = true;
          else if (chunk[pos] === LF) pos++;
        }
        if (cr !== -1 && cr < pos) cr = chunk.indexOf(CR, pos);
        if (lf !== -1 && lf < pos) lf = chunk.indexOf(LF, pos);
      }
      if (pos < length) carry.add(chunk, pos, length);
      return out ?? NO_EVENTS;
    },
    end() {
      out = undefined;
      if (!carry.empty) {
        const whole = carry.take(chunk0, 0, 0);
        if (whole) line(whole, 0, whole.length);
      }
      dispatch();
      skipLf = false;
      firstLine = true;
      return out ?? NO_EVENTS;
    },
  };
}

const chunk0 = Buffer.alloc(0);
