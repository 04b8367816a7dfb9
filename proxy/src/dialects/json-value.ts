/**
 * Small, total helpers for reading untrusted JSON: upstream bodies and events can be
 * anything, and metering must skip what it cannot read instead of throwing.
 */

/**
 * What a refused value is, as an error message may say it: its JSON type, or the value
 * itself when it is a number, a boolean or null. Never a string's text: a field of the wrong
 * type may hold the prompt.
 */
export function shownType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'object') return 'an object';
  return String(value).slice(0, 24);
}

/** A plain JSON object. */
export type JsonRecord = Record<string, unknown>;

/** True for a non-null, non-array object. */
export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The object at `value`, or undefined when it is not one. */
export function record(value: unknown): JsonRecord | undefined {
  return isRecord(value) ? value : undefined;
}

/** A non-empty string, or undefined. */
export function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** JSON.parse that returns undefined instead of throwing. */
export function parseJson(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}

/** The value at a dotted path (`usage.in`, `choices.0.text`), or undefined. */
export function getPath(value: unknown, path: readonly string[]): unknown {
  let current = value;
  for (const key of path) {
    if (Array.isArray(current)) current = current[Number(key)];
    else if (isRecord(current)) current = current[key];
    else return undefined;
  }
  return current;
}

/** A human-readable message from an error value: a string, or an object with `message`. */
export function errorMessage(value: unknown): string | undefined {
  if (typeof value === 'string') return value === '' ? undefined : value;
  const obj = record(value);
  if (!obj) return undefined;
  return text(obj.message) ?? text(obj.type) ?? text(obj.code) ?? text(obj.status) ?? 'error';
}
