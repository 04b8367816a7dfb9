/**
 * Strings PostgreSQL cannot store. JSON allows U+0000 and a lone UTF-16 surrogate, and an
 * upstream or a client can put either into what a proxy relays (a reported or requested model
 * name), but PostgreSQL refuses U+0000 in text and jsonb (SQLSTATE 22P05/22021) and a lone
 * surrogate's escape in jsonb (22P02). The ledger escapes them before booking (the event's
 * usage is real and billed), so such an event neither fails its whole batch nor goes unbilled.
 */

import { NOT_STORABLE } from '../http/plain-text.js';

const UNSTORABLE_ALL = new RegExp(NOT_STORABLE.source, 'gu');

/**
 * `text` with every unstorable character written as its JSON escape (`\u0000`, `\ud800`): an
 * event, or the record of a refused one, can then always be stored.
 */
export function storableText(text: string): string {
  return text.replace(UNSTORABLE_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
