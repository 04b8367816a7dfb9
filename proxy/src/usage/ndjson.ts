/**
 * An incremental NDJSON (newline-delimited JSON) splitter for metering Ollama's native
 * streams: one JSON object per line, each returned as an event named "". It only splits;
 * dialects parse the JSON, and only for lines their cheap usage hint selects.
 *
 * Lines end in \n; a \r before it is dropped (\r\n tolerated). Empty and whitespace-only
 * lines are skipped, a leading UTF-8 BOM is dropped, a partial last line is buffered, and
 * `end()` returns an unterminated final line (metering prefers its usage to strictness).
 * Like the SSE parser it decodes only complete lines, so split UTF-8 is never an issue.
 */
import type { StreamEvent } from '../dialects/dialect.js';
import {
  CR,
  DEFAULT_MAX_LINE_BYTES,
  LF,
  LineCarry,
  NO_EVENTS,
  isBom,
  type StreamParser,
  type StreamParserOptions,
} from './sse.js';

/** True when bytes [start, end) are only spaces, tabs and carriage returns. */
function isBlank(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = buf[i];
    if (b !== 0x20 && b !== 0x09 && b !== CR) return false;
  }
  return true;
}

/** Creates an NDJSON parser with the same API as the SSE parser. */
export function createNdjsonParser(options: StreamParserOptions = {}): StreamParser {
  const carry = new LineCarry(options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
  let firstLine = true;
  let out: StreamEvent[] | undefined;

  function line(buf: Buffer, start: number, end: number): void {
    if (firstLine) {
      firstLine = false;
      if (isBom(buf, start, end)) start += 3;
    }
    if (end > start && buf[end - 1] === CR) end--;
    if (isBlank(buf, start, end)) return;
    (out ??= []).push({ event: '', data: buf.toString('utf8', start, end) });
  }

  return {
    push(chunk) {
      out = undefined;
      let pos = 0;
      let lf = chunk.indexOf(LF);
      while (lf !== -1) {
        if (carry.empty) line(chunk, pos, lf);
        else {
          const whole = carry.take(chunk, pos, lf);
          if (whole) line(whole, 0, whole.length);
        }
        pos = lf + 1;
        lf = chunk.indexOf(LF, pos);
      }
      if (pos < chunk.length) carry.add(chunk, pos, chunk.length);
      return out ?? NO_EVENTS;
    },
    end() {
      out = undefined;
      if (!carry.empty) {
        const whole = carry.take(EMPTY, 0, 0);
        if (whole) line(whole, 0, whole.length);
      }
      firstLine = true;
      return out ?? NO_EVENTS;
    },
  };
}

const EMPTY = Buffer.alloc(0);
