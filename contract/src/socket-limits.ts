/**
 * What both services' listeners size themselves by: the process's open-files limit, which a
 * listener that accepts sockets past it leaves none of for the database, Redis or the log (a
 * thousand clients trickling bytes then lock everyone out), and how often node checks its
 * header and request deadlines.
 */
import { readFileSync } from 'node:fs';

/** The soft open-files limit from /proc (Linux); undefined where it cannot be read or is unlimited. */
export function openFilesLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  const n = Number(soft);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * A connection cap where none is configured: what the open-files limit leaves once `reserved`
 * descriptors are kept for everything else, within [min, max]; `max` when the limit is unknown.
 */
export function connectionCap(
  reserved: number,
  bounds: { min: number; max: number },
  fdLimit = openFilesLimit(),
): number {
  if (fdLimit === undefined) return bounds.max;
  return Math.max(bounds.min, Math.min(bounds.max, fdLimit - reserved));
}

/**
 * How often node checks header and request deadlines (`connectionsCheckingInterval`, 30 s by
 * default, so a timeout fires up to that much late): often enough for the headers deadline
 * to mean it.
 */
export function deadlineCheckIntervalMs(headersTimeoutMs: number): number {
  return Math.max(100, Math.min(1_000, Math.floor(headersTimeoutMs / 4)));
}
