/**
 * The refusal for a request whose prompt field has a type the plan's system prompt cannot be
 * put into. Replacing such a value silently would hide the client's error, and leaving it
 * alone would send the request without the plan's prompt to an upstream that may read it
 * leniently: either way the plan's instructions would not be what governs the answer.
 */
import { InvalidRequestError, type ProxyError } from '../errors.js';

/** What a value is, for an error: its kind, never its text (it may be a whole prompt). */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return 'a string';
  return `${typeof value} ${String(value).slice(0, 20)}`;
}

export function promptFieldError(field: string, expected: string, value: unknown): ProxyError {
  return new InvalidRequestError(`"${field}" must be ${expected}, not ${kindOf(value)}.`);
}

/** True for a value that means "no such field" to every API: absent, null or empty. */
export function unset(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}
