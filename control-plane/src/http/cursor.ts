/**
 * Opaque pagination cursors: the last row's sort key, base64url-encoded so clients treat
 * it as a token rather than build one. A malformed cursor is a 400 naming `cursor`.
 *
 * Opaque is not trusted: anyone can encode a key, and the key goes into a query. So a key
 * must be one this API could have returned, an integer row id or text PostgreSQL can hold;
 * 1.5, 1e30 or U+0000 would otherwise fail in the database as a 500.
 */
import { BadRequestError } from '../errors.js';
import { isPlainText } from './plain-text.js';

function isSortKey(key: unknown, kind: 'string' | 'number'): boolean {
  return kind === 'number' ? Number.isSafeInteger(key) : typeof key === 'string' && isPlainText(key);
}

/** Encodes the sort key of the last row returned. */
export function encodeCursor(key: string | number): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** Decodes a cursor from the query string; undefined when absent. */
export function decodeCursor<T extends string | number>(
  cursor: string | undefined,
  kind: 'string' | 'number',
): T | undefined {
  if (cursor === undefined) return undefined;
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (isSortKey(key, kind)) return key as T;
  } catch {
    // fall through to the error below
  }
  throw new BadRequestError('querystring.cursor: not a cursor this API returned', [
    { field: 'querystring.cursor', message: 'not a cursor this API returned' },
  ]);
}

/** One page of a list endpoint. */
export interface Page<T> {
  items: T[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  next_cursor: string | null;
}

/** Builds a page from `limit + 1` fetched rows: the extra row only tells that more exist. */
export function pageOf<T>(rows: T[], limit: number, keyOf: (row: T) => string | number): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, next_cursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null };
}
