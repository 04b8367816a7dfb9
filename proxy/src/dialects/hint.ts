/**
 * Cheap tests on raw event data for the dialects' usage hints. They run on every event of
 * every stream, so each looks only where the thing it seeks sits in real payloads (usage
 * keys near the end of a chunk, error keys at its start) and none scans a payload twice.
 */

/** How far into the data an in-band error's key may start (`{"error":` or `{"object":"error"`). */
const ERROR_WINDOW = 48;

/**
 * The char code of the first non-blank character after the LAST `key` (a quoted name, such
 * as `"usage"`) and its colon, or -1 when the key is absent. Searching from the end finds
 * a trailing usage field after a short scan.
 */
export function valueAfterLastKey(data: string, key: string): number {
  const at = data.lastIndexOf(key);
  if (at === -1) return -1;
  let i = at + key.length;
  let code = data.charCodeAt(i);
  while (code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09) code = data.charCodeAt(++i);
  if (code !== 0x3a) return -1;
  code = data.charCodeAt(++i);
  while (code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09) code = data.charCodeAt(++i);
  return Number.isNaN(code) ? -1 : code;
}

/** The code of `{`, for `valueAfterLastKey(...) === OPEN_BRACE`. */
export const OPEN_BRACE = 0x7b;

/** True when an `"error"` key or value starts near the beginning of the data. */
export function errorNearStart(data: string): boolean {
  return data.lastIndexOf('"error"', ERROR_WINDOW) !== -1;
}
