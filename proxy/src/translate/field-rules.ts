/**
 * Which request fields a translator accepts, and with what type, and which it refuses. Every
 * field of the client's request must be listed: one the table does not know is refused,
 * because silently dropping a field the proxy has never seen could change what the client
 * gets back. A field the table accepts states the JSON type the CLIENT's API documents for
 * it, so a value of another type is refused with 400 naming the field, as the client's own
 * API would refuse it, instead of being dropped or forwarded by a builder that skips what it
 * cannot read.
 */
import { isRecord, shownType } from '../dialects/json-value.js';
import { TranslationError } from './translator.js';

/** A JSON type a field's value must have. */
export interface FieldType {
  /** The type, as an error names it: "a number", "an array of strings". */
  readonly expected: string;
  /** The alternatives `expected` lists, when it lists several (so `oneOf` can list them all). */
  readonly choices?: readonly string[];
  /** Undefined when the value has the type, else what it is instead ("a string", "an array holding 5"). */
  readonly mismatch: (value: unknown) => string | undefined;
  /** For a value of the type that the upstream still cannot take: why (see `limited`). */
  readonly unsupported?: (value: unknown) => string | undefined;
}

/**
 * A FieldType: the field is accepted when its value has that type (the translator then carries
 * it over, or leaves it out when it does not change the answer), unless `limited` says the
 * upstream cannot take that value. `refused`: the upstream has no equivalent. A function
 * refuses with the reason it returns, or accepts with undefined.
 */
export type FieldRule = FieldType | 'refused' | ((value: unknown) => string | undefined);

/** A JSON type, named as `expected` in an error, and the test a value of it passes. */
function typeOf(expected: string, has: (value: unknown) => boolean): FieldType {
  return { expected, mismatch: (value) => (has(value) ? undefined : shownType(value)) };
}

// The JSON types, named as the client APIs' references name them. JSON has no NaN or
// Infinity; `number`'s finiteness test only keeps a caller's own values honest.
export const string = typeOf('a string', (value) => typeof value === 'string');
export const number = typeOf('a number', (value) => typeof value === 'number' && Number.isFinite(value));
export const integer = typeOf('an integer', (value) => Number.isInteger(value));
export const boolean = typeOf('a boolean', (value) => typeof value === 'boolean');
export const object = typeOf('an object', isRecord);

/** "a string" -> "strings", "an array of integers" -> "arrays of integers". */
function plural(expected: string): string {
  const noun = expected.replace(/^an? /, '');
  return noun.startsWith('array ') ? `arrays${noun.slice('array'.length)}` : `${noun}s`;
}

/** An array whose every entry has `item`'s type (a null entry too is refused). */
export function arrayOf(item: FieldType): FieldType {
  return {
    expected: `an array of ${plural(item.expected)}`,
    mismatch(value) {
      if (!Array.isArray(value)) return shownType(value);
      for (const entry of value) {
        const found = item.mismatch(entry);
        if (found !== undefined) return `an array holding ${found}`;
      }
      return undefined;
    },
  };
}

/** An array of strings (a stop list). */
export const stringArray = arrayOf(string);

function listed(names: readonly string[]): string {
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

/** One of these strings, for a field whose every value the translator must understand. */
export function enumOf(...values: readonly string[]): FieldType {
  const choices = values.map((v) => JSON.stringify(v));
  return {
    expected: listed(choices),
    choices,
    mismatch(value) {
      if (typeof value !== 'string') return shownType(value);
      if (values.includes(value)) return undefined;
      return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
    },
  };
}

/** A value of any one of the types. */
export function oneOf(...types: readonly FieldType[]): FieldType {
  const choices = types.flatMap((t) => t.choices ?? [t.expected]);
  return {
    expected: listed(choices),
    choices,
    mismatch(value) {
      const found = types.map((t) => t.mismatch(value));
      if (found.some((m) => m === undefined)) return undefined;
      // A type that got past the value's kind says more: "an array holding 5", not "an array".
      return found.find((m) => m !== shownType(value)) ?? shownType(value);
    },
  };
}

/**
 * `type`, of whose values the upstream takes only those `why` returns undefined for: a value
 * of another type is refused as the client's own API would refuse it, and one of the type
 * for the reason `why` gives.
 */
export function limited(type: FieldType, why: (value: unknown) => string | undefined): FieldType {
  return { ...type, unsupported: why };
}

/** A rule that accepts only the field's default (no effect), refusing any other value. */
export function onlyDefault(...defaults: readonly unknown[]): FieldRule {
  return (value) =>
    defaults.some((d) => JSON.stringify(d) === JSON.stringify(value))
      ? undefined
      : `only ${defaults.map((d) => JSON.stringify(d)).join(' or ')} can be honoured`;
}

/**
 * Throws TranslationError for the first field that is refused, unknown or of the wrong type.
 * A null value is the same as an absent field, as both APIs read it. `where` prefixes the
 * field in the message (`messages[2].`), so the client learns exactly which one.
 */
export function checkFields(
  body: Record<string, unknown>,
  rules: Readonly<Record<string, FieldRule>>,
  upstream: string,
  where = '',
): void {
  for (const [key, value] of Object.entries(body)) {
    if (value === null || value === undefined) continue;
    const field = where + key;
    const rule = Object.hasOwn(rules, key) ? rules[key] : undefined;
    if (rule === undefined)
      throw new TranslationError(`unknown field "${field}" cannot be sent to ${upstream}`);
    if (rule === 'refused') throw new TranslationError(`field "${field}" has no equivalent in ${upstream}`);
    if (typeof rule === 'function') {
      const why = rule(value);
      if (why !== undefined)
        throw new TranslationError(`field "${field}" cannot be sent to ${upstream}: ${why}`);
      continue;
    }
    const found = rule.mismatch(value);
    if (found !== undefined)
      throw new TranslationError(`field "${field}" must be ${rule.expected}, not ${found}`);
    const why = rule.unsupported?.(value);
    if (why !== undefined)
      throw new TranslationError(`field "${field}" cannot be sent to ${upstream}: ${why}`);
  }
}
