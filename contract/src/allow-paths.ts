/**
 * `allow_paths`: the endpoints an operator opens beyond those a dialect meters. Everything
 * else is refused before the upstream is called, because the upstream credential is the
 * operator's, account-wide: a tenant must never list, read or delete the account's files,
 * batches, stored completions or models through it.
 *
 * A pattern is an absolute path matched segment by segment against the request's
 * canonical (decoded, dot-free) path: a literal segment matches itself, `*` matches exactly
 * one segment, and a final `**` matches any rest (none included). Nothing else is special.
 */
import { z } from 'zod';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
/** Characters a path segment may hold in a pattern: RFC 3986 pchar without '%', plus '*'. */
const SEGMENT = /^(?:\*\*?|[A-Za-z0-9\-._~!$&'()+,;=:@]+)$/;

function patternProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'a pattern starts with "/"';
  if (path.length > 512) return 'a pattern is at most 512 characters';
  const segments = path.slice(1).split('/');
  for (const [i, segment] of segments.entries()) {
    if (segment === '') return 'empty segments ("//" or a trailing "/") never match a canonical path';
    if (segment === '.' || segment === '..') return 'dot segments never match a canonical path';
    if (!SEGMENT.test(segment))
      return `segment "${segment}": only literal characters (no %, ?, #, spaces), "*" for one segment, or a final "**"`;
    if (segment === '**' && i !== segments.length - 1) return '"**" may only be the last segment';
  }
  return undefined;
}

export const allowPathSchema = z.strictObject({
  method: z
    .string()
    .transform((m) => m.toUpperCase())
    .pipe(z.enum([...METHODS, '*'])),
  path: z.string().superRefine((path, ctx) => {
    const problem = patternProblem(path);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
});

export type AllowPath = z.infer<typeof allowPathSchema>;

/** True when `path` (canonical) matches the pattern. */
export function pathMatches(pattern: string, path: string): boolean {
  const want = pattern.slice(1).split('/');
  const got = path.slice(1).split('/');
  for (let i = 0; i < want.length; i++) {
    const w = want[i];
    if (w === '**') return true;
    const g = got[i];
    if (g === undefined || g === '') return false;
    if (w !== '*' && w !== g) return false;
  }
  return got.length === want.length;
}

/** True when one of the entries allows this method on this path. */
export function allowed(entries: readonly AllowPath[], method: string, path: string): boolean {
  return allowingEntry(entries, method, path) !== undefined;
}

/** The first entry that allows this method on this path. */
export function allowingEntry(
  entries: readonly AllowPath[],
  method: string,
  path: string,
): AllowPath | undefined {
  return entries.find(
    (e) =>
      (e.method === '*' || e.method === method || (e.method === 'GET' && method === 'HEAD')) &&
      pathMatches(e.path, path),
  );
}

/** Methods some endpoint uses; anything else (TRACE, CONNECT, WebDAV's) is 405 everywhere. */
export const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS);
