/**
 * The structured logger (pino, JSON lines on stdout). One place decides the level and the
 * redaction rules, so no credential can reach a log line through a careless field.
 */
import { pino } from 'pino';

export type Logger = Pick<pino.Logger, 'info' | 'warn' | 'error' | 'debug' | 'child'>;

export function createLogger(level: string = 'info'): pino.Logger {
  return pino({
    level,
    base: { service: 'lanekeeper-proxy' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['*.authorization', '*["x-api-key"]', '*["api-key"]', '*["x-goog-api-key"]', 'headers', 'body'],
      remove: true,
    },
  });
}
