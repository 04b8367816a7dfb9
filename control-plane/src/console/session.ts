/**
 * Console sessions. Signing in with the admin token yields a random session id in an
 * HttpOnly, SameSite=Strict cookie scoped to /console, so page scripts never hold the token
 * or the session. Sessions live in Redis under the key prefix (any control-plane replica
 * can serve the next request; signing out anywhere ends it everywhere), keyed by the id's
 * sha256 so a Redis dump holds no usable id.
 *
 * A session belongs to the admin token it was opened with: it keeps a MAC of its own id keyed
 * by that token, and only a control plane holding the same token accepts it. Rotating the
 * token (the answer to a leaked one) so ends every session opened with the old token, as it
 * ends the old token's bearer use.
 *
 * CSRF: SameSite=Strict keeps the cookie off cross-site requests, but another origin on the
 * same site (another port of the same host) still gets it sent. So every state-changing
 * request must also carry the session's CSRF token (a header, which a cross-origin form
 * cannot set, or for plain forms a field the page embeds), and is refused when the browser
 * says it came from another origin (Origin, Sec-Fetch-Site).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { ForbiddenError } from '../errors.js';

/** The cookie's name. */
export const SESSION_COOKIE = 'lk_console';
/** The header page scripts send the CSRF token in. */
export const CSRF_HEADER = 'x-csrf-token';
/** How long a session lasts after sign-in. */
export const SESSION_TTL_S = 8 * 3600;

/** What the server keeps of a session. */
export interface Session {
  csrf: string;
  created_at: string;
  /**
   * HMAC-SHA256 of the session id keyed by the admin token that signed in (base64url). Not a
   * digest of the token alone: Redis holds the id only as its sha256, so a dump of it gives
   * nothing to test guesses of the token against.
   */
  token_mac: string;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const macOf = (adminToken: string, id: string) => createHmac('sha256', adminToken).update(id).digest();
const keyOf = (prefix: string, id: string) => `${prefix}console:session:${sha256(id)}`;

/** Where sessions are kept: the three Redis commands used, or a map in this process. */
interface SessionKeeper {
  set(key: string, value: string, ttlS: number): Promise<unknown>;
  /** The values of `keys`, in order (null where there is none): MGET, one round trip. */
  get(keys: string[]): Promise<(string | null)[]>;
  del(key: string): Promise<unknown>;
}

/**
 * Without Redis (the one-machine mode) sessions live in this process: there is one control
 * plane, and a restart signing everyone out is acceptable there.
 */
function memoryKeeper(): SessionKeeper {
  const map = new Map<string, { value: string; expires: number }>();
  return {
    async set(key, value, ttlS) {
      for (const [k, v] of map) if (v.expires <= Date.now()) map.delete(k);
      map.set(key, { value, expires: Date.now() + ttlS * 1000 });
    },
    async get(keys) {
      return keys.map((key) => {
        const entry = map.get(key);
        return entry && entry.expires > Date.now() ? entry.value : null;
      });
    },
    async del(key) {
      map.delete(key);
    },
  };
}

/**
 * The session store over Redis, or in memory when there is no Redis. `adminToken` is this
 * control plane's: sessions opened with any other token are not found.
 */
export function createSessions(redis: Redis | undefined, prefix: string, adminToken: string) {
  const keeper: SessionKeeper = redis
    ? {
        set: (key, value, ttlS) => redis.set(key, value, 'EX', ttlS),
        get: (keys) => redis.mget(keys),
        del: (key) => redis.del(key),
      }
    : memoryKeeper();
  return {
    async create(): Promise<{ id: string; session: Session }> {
      const id = randomBytes(32).toString('base64url');
      const session: Session = {
        csrf: randomBytes(32).toString('base64url'),
        created_at: new Date().toISOString(),
        token_mac: macOf(adminToken, id).toString('base64url'),
      };
      await keeper.set(keyOf(prefix, id), JSON.stringify(session), SESSION_TTL_S);
      return { id, session };
    },
    /** The live sessions among `ids` (session ids, each well formed), in order. */
    async find(ids: readonly string[]): Promise<{ id: string; session: Session }[]> {
      if (ids.length === 0) return [];
      const raws = await keeper.get(ids.map((id) => keyOf(prefix, id)));
      const found: { id: string; session: Session }[] = [];
      for (let i = 0; i < ids.length; i++) {
        const raw = raws[i];
        if (!raw) continue;
        const id = ids[i]!;
        const session = JSON.parse(raw) as Partial<Session>;
        // Refused, not deleted: during a rolling rotation a replica still on the old token must
        // not end the sessions the new token's replicas open, nor the other way round. A session
        // from before sessions kept the MAC has none, and is refused like a foreign one.
        const given = Buffer.from(
          typeof session.token_mac === 'string' ? session.token_mac : '',
          'base64url',
        );
        const expected = macOf(adminToken, id);
        if (given.length !== expected.length || !timingSafeEqual(given, expected)) continue;
        found.push({ id, session: session as Session });
      }
      return found;
    },
    async destroy(id: string | undefined): Promise<void> {
      if (id) await keeper.del(keyOf(prefix, id));
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;

/** A session id as create() makes it (32 random bytes, base64url). */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

/**
 * Session ids looked up for one request, at most. Node's 16 KiB header limit holds about 290
 * cookies of that size; all go to Redis in one MGET.
 */
const MAX_SESSION_IDS = 256;

/** The values of one cookie from the Cookie header, in the order sent (the most specific path first). */
export function cookieValues(header: string | undefined, name: string): string[] {
  const found: string[] = [];
  for (const part of (header ?? '').split(';')) {
    const index = part.indexOf('=');
    if (index > 0 && part.slice(0, index).trim() === name) found.push(part.slice(index + 1).trim());
  }
  return found;
}

/**
 * The sessions the request's session cookies name, valid ones only, in the order sent. Not
 * only the first cookie: a page on another port of the host, or a sibling subdomain, can set
 * a cookie of the same name with a longer path, which the browser then sends first. Read
 * alone, it made the console API refuse a signed-in browser (and the sign-in page send it
 * back: a redirect loop), and sign-out end the planted id instead of the real session. Nor
 * only the first few: eight planted cookies, read up to a cap of eight, did the same. Every
 * well-formed value is looked up, in one round trip.
 */
export async function sessionsNamed(
  sessions: Sessions,
  header: string | undefined,
): Promise<{ id: string; session: Session }[]> {
  const ids = [...new Set(cookieValues(header, SESSION_COOKIE).filter((v) => SESSION_ID.test(v)))];
  return sessions.find(ids.slice(0, MAX_SESSION_IDS));
}

/** The Set-Cookie value that starts (or, with `id` undefined, ends) a session. */
export function sessionCookie(id: string | undefined, secure: boolean): string {
  const attributes = ['Path=/console', 'HttpOnly', 'SameSite=Strict', `Max-Age=${id ? SESSION_TTL_S : 0}`];
  if (secure) attributes.push('Secure');
  return [`${SESSION_COOKIE}=${id ?? ''}`, ...attributes].join('; ');
}

/**
 * Refuses a request the browser marks as coming from another origin. Absent headers pass
 * (curl, old browsers): those cannot be forged by a page, and the CSRF token still applies.
 * `servedOverHttps` (LANEKEEPER_CONSOLE_SECURE_COOKIE=true) says a TLS-terminating proxy is in
 * front: the browser's origin is then https:// while this process sees http.
 */
export function requireSameOrigin(request: FastifyRequest, servedOverHttps: boolean): void {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new ForbiddenError(`cross-origin request refused (Sec-Fetch-Site: ${String(site)})`);
  }
  const origin = request.headers.origin;
  const own = [
    `${request.protocol}://${request.host}`,
    ...(servedOverHttps ? [`https://${request.host}`] : []),
  ];
  if (origin !== undefined && !own.includes(origin)) {
    throw new ForbiddenError('cross-origin request refused (Origin does not match)');
  }
}

/** Refuses a state-changing request whose CSRF token is missing or not this session's. */
export function requireCsrf(
  request: FastifyRequest,
  session: Session,
  presented: unknown,
  servedOverHttps: boolean,
): void {
  requireSameOrigin(request, servedOverHttps);
  if (!csrfMatches(session, presented)) throw new ForbiddenError('missing or wrong CSRF token');
}

/** Whether `presented` is the session's CSRF token, compared in constant time. */
function csrfMatches(session: Session, presented: unknown): boolean {
  const expected = Buffer.from(session.csrf);
  const given = typeof presented === 'string' ? Buffer.from(presented) : Buffer.alloc(0);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Of the sessions a request named, the one a CSRF token was issued for (else the first, which requireCsrf then refuses). */
export function sessionForCsrf<T extends { session: Session }>(named: readonly T[], presented: unknown): T {
  return named.find((n) => csrfMatches(n.session, presented)) ?? named[0]!;
}
