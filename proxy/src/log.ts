/**
 * The structured logger (pino, JSON lines on stdout). One place decides the level and the
 * redaction rules, so no credential can reach a log line through a careless field.
 *
 * Redaction runs as pino's `formatters.log` hook rather than pino's `redact` option. The
 * rules are the same (drop top-level `headers` and `body`; drop `authorization`,
 * `x-api-key`, `api-key` and `x-goog-api-key` from any top-level object), but the `redact`
 * option's wildcard paths sent every field of every line through a clone-and-stringify
 * redactor: 19 of the 28 µs a line cost, paid on each request's access-log line. This hook
 * reads the keys once and copies nothing unless there is something to remove.
 *
 * Lines go to stdout in blocks of about 32 KiB (LineBatcher: flushed at least every 250 ms,
 * and synchronously on exit): one write per access-log line, and then sonic-boom's own
 * per-line buffering, were the next largest costs under load.
 */
import { errorSummary, logShape } from '@lanekeeper/contract';
import { pino, type DestinationStream } from 'pino';

export type Logger = Pick<pino.Logger, 'info' | 'warn' | 'error' | 'debug' | 'child'>;

/** Top-level fields never logged. */
const REMOVED_FIELDS = new Set(['headers', 'body']);
/** Credential fields removed from any top-level object. */
const SECRET_FIELDS = ['authorization', 'x-api-key', 'api-key', 'x-goog-api-key'] as const;

function hasSecret(value: object): boolean {
  for (const field of SECRET_FIELDS) if (Object.hasOwn(value, field)) return true;
  return false;
}

/** A copy of `value` (same prototype and property descriptors, so an Error stays an Error) without its credential fields. */
function withoutSecrets(value: object): object {
  const copy = Object.create(
    Object.getPrototypeOf(value) as object | null,
    Object.getOwnPropertyDescriptors(value),
  ) as Record<string, unknown>;
  for (const field of SECRET_FIELDS) delete copy[field];
  return copy;
}

/**
 * The log object with the redaction rules applied. Never mutates its argument; returns it
 * unchanged (no copy) when nothing had to go, which is the case for every access-log line.
 */
export function redactLogObject(object: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const key of Object.keys(object)) {
    if (REMOVED_FIELDS.has(key)) {
      out ??= { ...object };
      delete out[key];
      continue;
    }
    const value = object[key];
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && hasSecret(value)) {
      out ??= { ...object };
      out[key] = withoutSecrets(value);
    }
  }
  return out ?? object;
}

/**
 * Gathers whole lines and hands them to sonic-boom in blocks of about LOG_BATCH_BYTES.
 * sonic-boom's own buffering re-measures its buffered string on every write (a
 * Buffer.byteLength over up to minLength bytes per line) and issues a write per few
 * lines; here a line costs an array push, and sonic-boom sees one string per block, which
 * it writes asynchronously (retrying EAGAIN) and flushes synchronously on exit.
 */
export class LineBatcher implements DestinationStream {
  private lines: string[] = [];
  private chars = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly inner: pino.DestinationStream & { flushSync(): void; end(): void },
    private readonly batchChars = LOG_BATCH_BYTES,
    flushMs = LOG_FLUSH_MS,
  ) {
    // Lines wait for a full block only while traffic is high; at any rate they are out
    // within flushMs.
    this.timer = setInterval(() => this.flush(), flushMs).unref();
    exitFlushes.add(this);
  }

  write(line: string): void {
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= this.batchChars) this.flush();
  }

  /** Hands the gathered lines to the destination (written asynchronously). */
  flush(): void {
    if (this.lines.length === 0) return;
    const block = this.lines.length === 1 ? (this.lines[0] as string) : this.lines.join('');
    this.lines = [];
    this.chars = 0;
    this.inner.write(block);
  }

  /** Writes everything gathered so far before returning (pino calls it on fatal logs). */
  flushSync(): void {
    this.flush();
    this.inner.flushSync();
  }

  end(): void {
    clearInterval(this.timer);
    exitFlushes.delete(this);
    this.flush();
    this.inner.end();
  }
}

/** Batchers still open: their lines are written synchronously when the process exits. */
const exitFlushes = new Set<LineBatcher>();
process.on('exit', () => {
  for (const batcher of exitFlushes) {
    try {
      batcher.flushSync();
    } catch {
      // stdout is gone; nothing left to tell.
    }
  }
});

/** The proxy's logger; `destination` defaults to stdout (tests pass a stream to read the lines). */
export function createLogger(level: string = 'info', destination?: DestinationStream): pino.Logger {
  const shape = logShape('lanekeeper-proxy');
  const options: pino.LoggerOptions = {
    level,
    base: shape.base,
    timestamp: pino.stdTimeFunctions.isoTime,
    // As the control plane's: an error is its type, message, code and cause, its stack only
    // at debug. Each Qdrant call that failed, and a start while the control plane was down,
    // wrote a stack here. Read at each line, not at start: the level follows reloads.
    serializers: {
      err: (error: unknown) =>
        logger.isLevelEnabled('debug') ? pino.stdSerializers.err(error as Error) : errorSummary(error),
    },
    formatters: { ...shape.formatters, log: redactLogObject },
  };
  const logger = destination
    ? pino(options, destination)
    : pino(options, new LineBatcher(pino.destination({ dest: 1, sync: false })));
  return logger;
}

/** Characters of log lines gathered before a write (about 60 access-log lines). */
const LOG_BATCH_BYTES = 32 * 1024;
/** Longest a line waits before it is written. */
const LOG_FLUSH_MS = 250;
