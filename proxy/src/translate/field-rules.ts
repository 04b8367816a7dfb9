/**
 * Which top-level request fields a translator maps, drops or refuses. Every field of the
 * client's request must be listed: one the table does not know is refused, because silently
 * dropping a field the proxy has never seen could change what the client gets back.
 */
import { TranslationError } from './translator.js';

/**
 * `mapped`: the translator carries it over itself. `dropped`: it does not change the answer
 * (caching hints, storage, tracing), so it is left out. `refused`: the upstream has no
 * equivalent. A function refuses with the reason it returns, or accepts with undefined.
 */
export type FieldRule = 'mapped' | 'dropped' | 'refused' | ((value: unknown) => string | undefined);

/** A rule that accepts only the field's default (no effect), refusing any other value. */
export function onlyDefault(...defaults: readonly unknown[]): FieldRule {
  return (value) =>
    defaults.some((d) => JSON.stringify(d) === JSON.stringify(value))
      ? undefined
      : `only ${defaults.map((d) => JSON.stringify(d)).join(' or ')} can be honoured`;
}

/**
 * Throws TranslationError for the first field that is refused or unknown. A null value is
 * the same as an absent field, as both APIs read it. `where` prefixes the field in the
 * message (`messages[2].`), so the client learns exactly which one.
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
    }
  }
}
