/**
 * A guard both services run before JSON.parse on text someone else sent. V8 parses nested
 * arrays at about half a microsecond a level, seven times slower than the same bytes of an
 * ordinary document: a 1 MiB body of `[` held the control plane's event loop for ~0.1 s,
 * and 10 MiB the proxy's for three seconds, before any depth check on the parsed value could
 * refuse it. Counting brackets first costs one pass over the text.
 */

/**
 * True when `text` nests arrays and objects deeper than `maxDepth` outside strings: one pass
 * that stops at the first level too deep. `text` may also be bytes read as latin1 (bracket
 * and quote bytes are ASCII in UTF-8).
 */
export function nestsDeeperThan(text: string, maxDepth: number): boolean {
  const length = text.length;
  let depth = 0;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip the string, honouring escapes.
      for (i++; i < length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}
