/**
 * Bearer-token checks. Tokens are compared as sha256 digests with crypto.timingSafeEqual:
 * equal-length inputs, so neither the token's content nor its length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BadRequestError, TooManyAttemptsError, UnauthorizedError } from '../errors.js';
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
 * Settles one attempt with the throttle (after the token was compared: `wrong`), or, for a
 * request without a token (`'no token'`), only asks whether its address must wait. For an
 * address that has used up its wrong tokens, sets `Retry-After` on the reply and returns the
 * refusal (the caller answers 429). Undefined when the attempt may go on.
 */
export async function throttled(
  throttle: FailureThrottle,
  request: FastifyRequest,
  reply: FastifyReply,
  wrong: boolean | 'no token',
): Promise<Refusal | undefined> {
  const refusal =
    wrong === 'no token' ? await throttle.blocked(request.ip) : await throttle.attempt(request.ip, wrong);
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
export function requireBearer(expected: string | readonly string[], realm: string, guard?: TokenGuard) {
  const expectedDigests = (typeof expected === 'string' ? [expected] : expected).map(digest);
  return async function requireToken(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const throttle = guard && !guard.internal.isInternal(request) ? guard.throttle : undefined;
    const presented = bearerToken(request.headers.authorization);
    // Compared first, then settled with the throttle in one call: an address over its limit
    // gets 429 for the right token too, and concurrent guesses are decided one at a time.
    // Against every token taken, each compared whatever the others gave.
    const presentedDigest = presented === undefined ? undefined : digest(presented);
    const right =
      presentedDigest !== undefined &&
      expectedDigests.map((d) => timingSafeEqual(presentedDigest, d)).includes(true);
    const refusal =
      throttle && (await throttled(throttle, request, reply, presented === undefined ? 'no token' : !right));
    if (refusal) {
      throw new TooManyAttemptsError(
        `too many wrong tokens from this address; try again in ${refusal.retryAfterS} s`,
      );
    }
    if (!right) {
      reply.header('www-authenticate', `Bearer realm="${realm}"`);
      throw new UnauthorizedError(
        presented === undefined
          ? `missing bearer token: send "Authorization: Bearer <${realm} token>"`
          : // The variable is public (docs); naming it saves a newcomer a search.
            `wrong ${realm} token (the control plane's LANEKEEPER_${realm.toUpperCase()}_TOKEN)`,
      );
    }
    const actor = declaredActor(request);
    if (actor !== '' && !ACTOR.test(actor)) {
      throw new BadRequestError(
        'x-lanekeeper-actor is a name of 1 to 200 visible ASCII characters (letters, digits, punctuation, inner spaces)',
      );
    }
    // The audit log's `admin:console` means a change made in the web console: no other
    // caller of the admin API may sign as it.
    if (guard && !guard.internal.isInternal(request) && actor.toLowerCase() === CONSOLE_ACTOR) {
      throw new BadRequestError(
        `x-lanekeeper-actor "${CONSOLE_ACTOR}" is the web console's own name in the audit log; declare another`,
      );
    }
  };
}

/**
 * A declared actor: visible ASCII only. An invisible character (a soft hyphen, say) let
 * `console\u00ad` past the check below and show in the audit log as `admin:console`; and a
 * header carries non-ASCII only as latin1, so a UTF-8 name would be stored garbled anyway.
 */
const ACTOR = /^[\x21-\x7e](?:[\x20-\x7e]{0,198}[\x21-\x7e])?$/;

/** The name the web console's own calls into the admin API declare. */
export const CONSOLE_ACTOR = 'console';

function declaredActor(request: FastifyRequest): string {
  const declared = request.headers['x-lanekeeper-actor'];
  return typeof declared === 'string' ? declared.trim() : '';
}

/** Who made a change, for the audit log: the admin token plus an optional self-declared name. */
export function actorOf(request: FastifyRequest): string {
  const name = declaredActor(request);
  return name ? `admin:${name}` : 'admin';
}
