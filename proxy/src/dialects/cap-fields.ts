/**
 * Reading the body fields an upstream treats as an output cap (`max_tokens` and its cousins)
 * or as a number of choices (`n`, `best_of`, `candidateCount`). A client may set several
 * names for one thing, and each upstream honours a different one, so a dialect reads them
 * all: the smallest cap and the largest choice count are what the proxy reserves for, and
 * `setMaxOutput` then leaves exactly one cap field. A value no upstream reads the same way
 * (a string, a float, zero, a negative) is refused rather than guessed at: Python servers
 * coerce `"100"` to 100, Go ones refuse it, and proto3 reads 0 as "unset", i.e. no cap.
 */
import { InvalidRequestError } from '../errors.js';

/** One field as the client sent it: its dotted name (for the error) and its raw value. */
export type CapField = readonly [name: string, value: unknown];

/** What a request asks in choices, and the field that asked for the most. */
export interface Choices {
  readonly count: number;
  readonly field: string;
}

function shown(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 40 ? `${json.slice(0, 40)}…` : json;
}

/** The field's value when it is a positive integer, undefined when absent or null; throws otherwise. */
export function positiveField(name: string, value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  // Huge integers pass: the plan's max_output_tokens (or max_choices) bounds them next.
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1) return value;
  throw new InvalidRequestError(`"${name}" must be a positive integer, not ${shown(value)}.`);
}

/** The smallest cap among the fields (every one validated), or undefined when none is set. */
export function smallestCap(fields: readonly CapField[]): number | undefined {
  let cap: number | undefined;
  for (const [name, value] of fields) {
    const tokens = positiveField(name, value);
    if (tokens !== undefined && (cap === undefined || tokens < cap)) cap = tokens;
  }
  return cap;
}

/** The largest choice count among the fields (every one validated), or undefined when none is set. */
export function mostChoices(fields: readonly CapField[]): Choices | undefined {
  let most: Choices | undefined;
  for (const [name, value] of fields) {
    const count = positiveField(name, value);
    if (count !== undefined && (most === undefined || count > most.count)) most = { count, field: name };
  }
  return most;
}
