/**
 * The refusal for a request whose prompt field has a type the plan's system prompt cannot be
 * put into. Replacing such a value silently would hide the client's error, and leaving it
 * alone would send the request without the plan's prompt to an upstream that may read it
 * leniently: either way the plan's instructions would not be what governs the answer.
 */
import { InvalidRequestError, type ProxyError } from '../errors.js';
import { shownType } from './json-value.js';

/** A 400 naming the field, the type it must have and what it held (never its text: shownType). */
export function promptFieldError(field: string, expected: string, value: unknown): ProxyError {
  return new InvalidRequestError(`"${field}" must be ${expected}, not ${shownType(value)}.`);
}

/** True for a value that means "no such field" to every API: absent, null or empty. */
export function unset(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}
