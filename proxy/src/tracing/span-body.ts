/**
 * The export body spans are written into: one buffer with room kept in front of the spans
 * for the envelope, which protobuf can only write once it knows their total length. Writers
 * (otlp-proto.ts, otlp-json.ts) write at `pos` after asking for `room`.
 *
 * Writing spans in place is part of why tracing is cheaper (issue 18 asks for under 10 µs a
 * request): built as strings first (~40 attribute strings a request, a rope V8 flattened
 * again when the batch copied it in), tracing cost 48.7 µs a request side by side against
 * 38.8 written in place (docs/observability.md).
 *
 * Bounded: a span that outgrows the room left goes on at the start of a fresh body, and the
 * full one is handed to `onReady`; a span bigger than a whole body is written to a scratch
 * buffer and dropped (counted) when it ends.
 */
import type { Envelope } from './span-format.js';

/** A ready export body: the bytes, and how many spans they hold. */
export interface Body {
  bytes: Buffer;
  spans: number;
  /** The whole buffer `bytes` is part of, to `recycle` once sent. */
  buffer: Buffer;
}

export interface SpanBodyOptions {
  envelope: Envelope;
  /** Bytes per body, envelope included. */
  capacity: number;
  /** A body holding this many spans is ready at once. */
  maxSpans: number;
  /** A body is ready to send: it filled up, or reached `maxSpans`. */
  onReady(body: Body): void;
  /** The first span went into an empty body (the batch starts its delay). */
  onFirstSpan(): void;
}

export class SpanBody {
  /** The buffer being written and the next byte to write. Only valid until the next `room`. */
  buf: Buffer;
  pos: number;
  /** Where the open span starts in `buf`, -1 between spans. */
  spanStart = -1;
  /** Spans in the body. */
  spans = 0;
  /** Spans dropped: bigger than a body, or ended after `close`. */
  dropped = 0;
  private readonly maxHead: number;
  /** The last byte spans may use: the tail follows them. */
  private readonly limit: number;
  /** Set while an oversized span is written to a scratch buffer: the body to go back to. */
  private parked: { buf: Buffer; pos: number } | undefined;
  private closed = false;
  /** Buffers sent and handed back, to fill again. */
  private readonly spare: Buffer[] = [];

  constructor(private readonly options: SpanBodyOptions) {
    this.maxHead = options.envelope.maxHead;
    this.limit = options.capacity - options.envelope.tail.length;
    this.buf = Buffer.allocUnsafe(options.capacity);
    this.pos = this.maxHead;
  }

  /** Opens a span at `pos`. */
  begin(): void {
    this.spanStart = this.pos;
  }

  /** Makes room for `n` more bytes at `pos`; `buf` and `pos` may change. */
  room(n: number): void {
    if (this.pos + n > this.limit) this.overflow(n);
  }

  /** Closes the open span: it is in the body, or dropped when it was too big or the body is closed. */
  end(): void {
    const start = this.spanStart;
    this.spanStart = -1;
    if (this.unpark()) {
      this.dropped++;
      return;
    }
    if (this.closed) {
      this.pos = start;
      this.dropped++;
      return;
    }
    this.spans++;
    if (this.spans >= this.options.maxSpans) this.options.onReady(this.take()!);
    else if (this.spans === 1) this.options.onFirstSpan();
  }

  /** Takes the open span, if any, back out: `pos` returns to where it began. */
  abort(): void {
    if (this.spanStart < 0) return;
    if (!this.unpark()) this.pos = this.spanStart;
    this.spanStart = -1;
  }

  /** Leaves the scratch buffer of an oversized span for the body; false when there was none. */
  private unpark(): boolean {
    if (!this.parked) return false;
    ({ buf: this.buf, pos: this.pos } = this.parked);
    this.parked = undefined;
    return true;
  }

  /** The body's spans inside their envelope, ready to send, and a fresh body; undefined when empty. */
  take(): Body | undefined {
    if (this.spans === 0) return undefined;
    return this.takeUpTo(this.pos);
  }

  /**
   * Takes back the buffer of a body the transport is done with. Filling the same few
   * buffers again, rather than a fresh megabyte every few hundred requests, spares a page
   * fault every 4 KiB written and the garbage collector's work on external memory.
   */
  recycle(buffer: Buffer): void {
    if (this.spare.length < 4 && buffer.length === this.options.capacity) this.spare.push(buffer);
  }

  /** From now on every span is dropped. */
  close(): void {
    this.closed = true;
  }

  private takeUpTo(end: number): Body {
    const { envelope, capacity } = this.options;
    const full = this.buf;
    const head = envelope.head(end - this.maxHead);
    const start = this.maxHead - head.length;
    head.copy(full, start);
    end += envelope.tail.copy(full, end);
    const ready = { bytes: full.subarray(start, end), spans: this.spans, buffer: full };
    this.buf = this.spare.pop() ?? Buffer.allocUnsafe(capacity);
    this.pos = this.maxHead;
    this.spans = 0;
    return ready;
  }

  private overflow(n: number): void {
    const open = this.spanStart < 0 ? 0 : this.pos - this.spanStart;
    if (this.parked) {
      // Already oversized: the scratch buffer grows, to be dropped at `end`.
      const grown = Buffer.allocUnsafe(2 * (this.pos + n));
      this.buf.copy(grown, 0, 0, this.pos);
      this.buf = grown;
      return;
    }
    const from = this.buf;
    const start = this.spanStart < 0 ? this.pos : this.spanStart;
    if (this.maxHead + open + n > this.limit) {
      this.parked = { buf: this.buf, pos: start };
      this.buf = Buffer.allocUnsafe(2 * (open + n));
      from.copy(this.buf, 0, start, this.pos);
      this.spanStart = 0;
      this.pos = open;
      return;
    }
    // The open span moves to a fresh body; the spans before it go.
    const ready = this.spans > 0 ? this.takeUpTo(start) : undefined;
    from.copy(this.buf, this.maxHead, start, start + open);
    if (this.spanStart >= 0) this.spanStart = this.maxHead;
    this.pos = this.maxHead + open;
    if (ready) this.options.onReady(ready);
  }
}
