/**
 * Bearer-token checks. Tokens are compared as sha256 digests with crypto.timingSafeEqual:
 * equal-length inputs, so neither the token's content nor its length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../errors.js';

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

/** An onRequest hook refusing, with 401, any request without this bearer token. */
export function requireBearer(expected: string, realm: string) {
  const expectedDigest = digest(expected);
  return async function requireToken(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const presented = bearerToken(request.headers.authorization);
    if (presented === undefined || !timingSafeEqual(digest(presented), expectedDigest)) {
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
