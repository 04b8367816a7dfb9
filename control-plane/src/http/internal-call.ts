/**
 * Marks the requests the control plane makes to itself: the console hands its changes to the
 * admin API's routes in-process (console/api.ts). Such a request carries the admin token the
 * server added, so the wrong-token throttle must not refuse it for the address of whoever
 * else shares 127.0.0.1; and it is part of the console request that made it, so the request
 * metrics count only that one.
 *
 * The mark is a header holding a random secret made at startup and compared in constant
 * time: it never leaves the process (the console relays only the admin API's body and content
 * type), so a client sending the header cannot pass for the server.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

const HEADER = 'x-lanekeeper-internal-call';

/** The mark of one running control plane. */
export interface InternalCallMark {
  /** Headers to add to an in-process request. */
  readonly headers: Readonly<Record<string, string>>;
  /** True when the request carries this process's mark. */
  isInternal(request: FastifyRequest): boolean;
}

/** Creates a mark with a fresh secret. */
export function createInternalCallMark(): InternalCallMark {
  const secret = randomBytes(32).toString('base64url');
  const expected = Buffer.from(secret);
  return {
    headers: { [HEADER]: secret },
    isInternal(request) {
      const given = request.headers[HEADER];
      if (typeof given !== 'string') return false;
      const bytes = Buffer.from(given);
      return bytes.length === expected.length && timingSafeEqual(bytes, expected);
    },
  };
}
