/**
 * The request target as routing sees it: the canonical path and the raw query. Runs before
 * anything else looks at a request, so no stage ever sees an unnormalised path.
 */
import { canonicalPath } from '../request/canonical-path.js';

/**
 * A request target the WHATWG URL parser would leave exactly as it is: an absolute path of
 * unreserved and sub-delim characters with no dot segment, then an optional query without
 * characters it would percent-encode. Anything else (dot segments, percent escapes,
 * backslashes, `//host` forms, spaces, non-ASCII) goes through `new URL`, so routing
 * always sees the normalised path.
 */
const PLAIN_TARGET = /^\/(?!\/)[A-Za-z0-9\-._~!$&'()*+,;=:@/]*(?:\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*)?$/;
const DOT_SEGMENT = /\/\.\.?(?:\/|\?|$)/;

/**
 * The canonical path (request/canonical-path.ts: escapes decoded once, dot segments
 * resolved) and the raw query (without `?`) of a request target, or why it has none. An origin-form target is
 * always read as a path, so `//host/x` is the path `//host/x`, never a URL naming a host.
 */
export function splitTarget(target: string): { path: string; query: string } | { error: string } {
  if (PLAIN_TARGET.test(target)) {
    const mark = target.indexOf('?');
    const path = mark === -1 ? target : target.slice(0, mark);
    if (!DOT_SEGMENT.test(path)) return { path, query: mark === -1 ? '' : target.slice(mark + 1) };
  }
  const url = URL.parse(target.startsWith('/') ? `http://lanekeeper.invalid${target}` : target);
  if (!url) return { error: 'The request target is not a valid path.' };
  const canonical = canonicalPath(url.pathname);
  if ('error' in canonical) return canonical;
  return { path: canonical.path, query: url.search.startsWith('?') ? url.search.slice(1) : url.search };
}
