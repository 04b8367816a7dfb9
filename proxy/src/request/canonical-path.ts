/**
 * The one form of a request path the proxy routes, meters, allows and forwards. A client
 * that writes `/v1/chat/%63ompletions`, `/v1/chat%2Fcompletions` or `/api/%63hat` means
 * the plain path to any upstream that decodes it, so the proxy decodes every escape once,
 * resolves the dot segments that decoding may have made, and refuses what no path holds
 * (NUL and control characters, malformed escapes). The upstream is sent the same path,
 * re-encoded only where a character must be (`encodePath`), so what it reads is exactly
 * what the proxy checked. A double-encoded `%2563` stays the literal `%63`.
 */

/** Characters that need no encoding in a path (RFC 3986 pchar and "/"). */
const PLAIN_PATH = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;
// eslint-disable-next-line no-control-regex -- control characters are what this refuses
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Removes "." and ".." segments (RFC 3986 §5.2.4); ".." never climbs above the root. */
function removeDotSegments(path: string): string {
  const out: string[] = [];
  const segments = path.split('/');
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s === '.') {
      if (last) out.push('');
    } else if (s === '..') {
      out.pop();
      if (last) out.push('');
    } else out.push(s);
  }
  return `/${out.join('/')}`;
}

/** The canonical path, or an error message for a path that cannot be one. */
export function canonicalPath(path: string): { path: string } | { error: string } {
  if (!path.includes('%') && PLAIN_PATH.test(path) && !/\/\.\.?(?:\/|$)/.test(path)) return { path };
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return { error: 'The request path has a malformed percent-escape.' };
  }
  if (CONTROL.test(decoded)) return { error: 'The request path holds a control character.' };
  return { path: removeDotSegments(decoded) };
}

/** The path as sent upstream: the canonical path with what must be escaped escaped. */
export function encodePath(path: string): string {
  if (PLAIN_PATH.test(path)) return path;
  return path
    .split('/')
    .map((segment) =>
      encodeURIComponent(segment).replace(
        /%(?:3A|40|21|24|26|27|28|29|2A|2B|2C|3B|3D)/gi,
        decodeURIComponent,
      ),
    )
    .join('/');
}
