/**
 * The process's open-files limit, which both services size their connection caps from: a
 * listener that accepts sockets past it leaves none for the database, Redis or the log, and
 * a thousand clients trickling bytes then lock everyone out.
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
