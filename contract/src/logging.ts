/**
 * What the proxy's and the control plane's log lines share: one JSON shape (ISO-8601
 * `time`, `level` as a word, `service`, `msg`, and `request_id` / `tenant` where a line is
 * about a request), and one way to report a dependency that is down.
 *
 * A dependency that fails on every retry (a control plane polled every few seconds, Redis
 * reconnecting) must not fill the log: `createOutageLog` writes one warning when it starts
 * failing, then at most one summary per minute with the count, and one info line when it is
 * back. Errors go in as their message only, never as an Error, so no stack trace is written
 * per retry.
 */

/** The options both services give pino, so their lines parse with one schema. */
export function logShape(service: string) {
  return {
    base: { service },
    // A word, as people and log pipelines read levels; pino's default is a number.
    formatters: { level: (label: string) => ({ level: label }) },
  } as const;
}

/**
 * pino's `err` serializer without the stack: the error's type, message and code. A
 * dependency failing on every retry, or every API call failing while the database is away,
 * wrote a stack trace per line; at `debug` a service keeps pino's full serializer.
 */
export function errorSummary(error: unknown): unknown {
  // An outage log's `err` is already a message.
  if (!(error instanceof Error)) return error;
  const summary: Record<string, unknown> = { type: error.name, message: error.message };
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') summary.code = code;
  // undici's "fetch failed" says nothing without its cause (ECONNREFUSED, a reset, a timeout).
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const causeCode = (cause as { code?: unknown }).code;
    summary.cause = typeof causeCode === 'string' ? `${cause.message} (${causeCode})` : cause.message;
  }
  return summary;
}

/** The part of a logger an outage log needs. */
export interface OutageLogger {
  warn(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
}

export interface OutageLog {
  /** One failed attempt to reach the dependency. */
  failed(error: unknown): void;
  /** One attempt that reached it: logs the recovery if it was down, with `fields` (e.g. work left to do). */
  succeeded(fields?: Record<string, unknown>): void;
  /** True while the dependency is failing. */
  readonly down: boolean;
}

/** Default: at most one "still failing" line a minute. */
export const OUTAGE_SUMMARY_MS = 60_000;

export interface OutageLogOptions {
  /** Least time between two "still unavailable" lines (default OUTAGE_SUMMARY_MS). */
  readonly summaryMs?: number;
  /** The clock; tests pass one to live through minutes of outage at once. */
  readonly now?: () => number;
  /** Written on every line, e.g. which endpoint the dependency is. */
  readonly fields?: Record<string, unknown>;
}

function messageOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // One line, bounded: an upstream's error text is not ours to print at length.
  return message.replace(/\s+/g, ' ').slice(0, 300);
}

/** Reports the outages of one dependency (e.g. "control plane", "redis") through `logger`. */
export function createOutageLog(
  logger: OutageLogger,
  dependency: string,
  options: OutageLogOptions = {},
): OutageLog {
  const summaryMs = options.summaryMs ?? OUTAGE_SUMMARY_MS;
  const now = options.now ?? Date.now;
  const constant = options.fields ?? {};
  let since = 0;
  let failures = 0;
  let lastLine = 0;
  let lastError = '';
  let down = false;
  return {
    get down() {
      return down;
    },
    failed(error) {
      const at = now();
      failures++;
      lastError = messageOf(error);
      if (!down) {
        down = true;
        since = at;
        lastLine = at;
        logger.warn({ ...constant, dependency, err: lastError }, `${dependency} unavailable`);
        return;
      }
      if (at - lastLine >= summaryMs) {
        lastLine = at;
        logger.warn(
          { ...constant, dependency, failures, down_for_s: Math.round((at - since) / 1000), err: lastError },
          `${dependency} still unavailable`,
        );
      }
    },
    succeeded(fields) {
      if (!down) return;
      const at = now();
      logger.info(
        { ...constant, ...fields, dependency, failures, down_for_s: Math.round((at - since) / 1000) },
        `${dependency} available again`,
      );
      down = false;
      failures = 0;
    },
  };
}
