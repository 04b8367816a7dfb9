/**
 * What the admin API accepts as text. JSON and query strings can carry U+0000 and unpaired
 * UTF-16 surrogates, but PostgreSQL stores neither: text and jsonb refuse U+0000, jsonb
 * refuses an unpaired surrogate, and text silently turns one into U+FFFD. Refusing them at
 * the edge makes such input a 400 naming the field, instead of a 500 from the database or a
 * value stored differently from what was sent.
 */

// With the u flag a surrogate pair is one code point, so \p{Cs} matches only an unpaired half.
// eslint-disable-next-line no-control-regex -- U+0000 is exactly what is looked for
export const NOT_STORABLE = /\u0000|\p{Cs}/u;

/** What a field is told when isPlainText refuses it. */
export const PLAIN_TEXT_MESSAGE = 'must not contain U+0000 or an unpaired UTF-16 surrogate';

/** True when PostgreSQL can store `text` as sent. */
export function isPlainText(text: string): boolean {
  return !NOT_STORABLE.test(text);
}
