/**
 * Bearer-token checks. Tokens are compared as sha256 digests with crypto.timingSafeEqual:
 * equal-length inputs, so neither the token's content nor its length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { TooManyAttemptsError, UnauthorizedError } from '../errors.js';
import type { FailureThrottle, Refusal } from './failure-throttle.js';
import type { InternalCallMark } from './internal-call.js';

const digest = (text: string) => createHash('sha256').update(text).digest();

/** True when `presented` equals `expected`, in time independent of where they differ. */
export function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

/** The token from an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/**
 * For an address that has used up its wrong tokens: sets `Retry-After` on the reply and returns
 * the refusal (the caller answers 429). Undefined when the address may try.
 */
export function throttled(
  throttle: FailureThrottle,
  request: FastifyRequest,
  reply: FastifyReply,
): Refusal | undefined {
  const refusal = throttle.check(request.ip);
  if (refusal) reply.header('retry-after', String(refusal.retryAfterS));
  return refusal;
}

/** What guards a token route: the wrong-token throttle, and the mark that exempts the control plane's own calls. */
export interface TokenGuard {
  throttle: FailureThrottle;
  internal: InternalCallMark;
}

/**
 * An onRequest hook refusing, with 401, any request without this bearer token. With a
 * throttle, wrong tokens count against the client's address (a missing one does not: it is
 * no guess), and an address over the limit gets 429 whatever it sends; the control plane's
 * own in-process calls are exempt.
 */
export function requireBearer(expected: string, realm: string, guard?: TokenGuard) {
  const expectedDigest = digest(expected);
  return async function requireToken(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const throttle = guard && !guard.internal.isInternal(request) ? guard.throttle : undefined;
    const refusal = throttle && throttled(throttle, request, reply);
    if (refusal) {
      throw new TooManyAttemptsError(
        `too many wrong tokens from this address; try again in ${refusal.retryAfterS} s`,
      );
    }
    const presented = bearerToken(request.headers.authorization);
    if (presented === undefined || !timingSafeEqual(digest(presented), expectedDigest)) {
      if (presented !== undefined) throttle?.fail(request.ip);
      reply.header('www-authenticate', `Bearer realm="${realm}"`);
      throw new UnauthorizedError(
        presented === undefined
          ? `missing bearer token: send "Authorization: Bearer <${realm} token>"`
          : `wrong ${realm} token`,
      );
    }
  };
}

/** Who made a change, for the audit log: the admin token plus an optional self-declared name. */
export function actorOf(request: FastifyRequest): string {
  const declared = request.headers['x-lanekeeper-actor'];
  const name = typeof declared === 'string' ? declared.trim().slice(0, 200) : '';
  return name ? `admin:${name}` : 'admin';
}
