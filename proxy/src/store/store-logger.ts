/**
 * The little a store needs from a logger. Pino satisfies it as is; tests pass a recorder.
 * Kept minimal so the store never depends on a logging library.
 */

/** A pino-compatible logger: structured fields first, then the message. */
export interface StoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** A logger that discards everything, for callers that pass none. */
export const silentLogger: StoreLogger = {
  info() {},
  warn() {},
  error() {},
};
