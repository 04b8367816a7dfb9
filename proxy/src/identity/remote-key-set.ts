/**
 * The keys of a JWKS endpoint, for `jwtVerify`. jose's own remote set was not enough
 * against a failing identity provider:
 * - its cooldown started only after a fetch that worked, so while the endpoint failed every
 *   token with an unknown key id (anyone can make one) cost the IdP a fetch;
 * - its cache expired after ten minutes whatever happened next, so an IdP outage locked out
 *   every JWT user whose keys the proxy already held;
 * - it read the answer whole, however large.
 *
 * Here any fetch, good or failed, starts the cooldown; keys past their age are refreshed,
 * and kept while the endpoint fails, for up to a day after the last good fetch; the answer
 * is read up to 1 MiB within 5 s, and redirects are not followed.
 */
import type { OutageLog } from '@lanekeeper/contract';
import { createLocalJWKSet, errors, type JWTVerifyGetKey } from 'jose';
import { textUpTo } from '../response-text.js';

/** The keys could not be had from the JWKS endpoint: nothing is known about the token itself. */
export class JwksUnavailableError extends Error {}

export interface RemoteKeySetOptions {
  /** Least time between two fetches (jwks_cooldown_ms). */
  cooldownMs: number;
  /** Keys older than this are fetched again before use (when the cooldown allows). */
  maxAgeMs?: number;
  /** Keys older than this are not used, whether or not the endpoint answers. */
  maxStaleMs?: number;
  timeoutMs?: number;
  maxBytes?: number;
  outage?: OutageLog;
  now?: () => number;
}

const MAX_AGE_MS = 10 * 60_000;
const MAX_STALE_MS = 24 * 3_600_000;
const TIMEOUT_MS = 5_000;
/** A JWKS holds a handful of keys, a few KB; 1 MiB is far past any real one. */
const MAX_BYTES = 1 << 20;

async function fetchKeys(url: URL, timeoutMs: number, maxBytes: number): Promise<JWTVerifyGetKey> {
  const response = await fetch(url, {
    headers: { accept: 'application/json' },
    redirect: 'manual',
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new Error(`the JWKS endpoint answered ${response.status}`);
  }
  const text = await textUpTo(
    response,
    maxBytes,
    () => new Error(`the JWKS is larger than ${maxBytes} bytes`),
  );
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch {
    throw new Error('the JWKS endpoint answered with something other than JSON');
  }
  // Throws JWKSInvalid for anything without a `keys` array of objects.
  return createLocalJWKSet(jwks as never);
}

export function createRemoteKeySet(address: URL, options: RemoteKeySetOptions): JWTVerifyGetKey {
  const now = options.now ?? Date.now;
  const maxAgeMs = options.maxAgeMs ?? MAX_AGE_MS;
  const maxStaleMs = options.maxStaleMs ?? MAX_STALE_MS;
  let keys: JWTVerifyGetKey | undefined;
  let fetchedAt = -Infinity;
  let attemptedAt = -Infinity;
  let lastError: unknown;
  let inflight: Promise<void> | undefined;

  const mayFetch = () => now() - attemptedAt >= options.cooldownMs;
  const refresh = (): Promise<void> =>
    (inflight ??= (async () => {
      attemptedAt = now();
      try {
        keys = await fetchKeys(address, options.timeoutMs ?? TIMEOUT_MS, options.maxBytes ?? MAX_BYTES);
        fetchedAt = now();
        lastError = undefined;
        options.outage?.succeeded();
      } catch (error) {
        lastError = error;
        options.outage?.failed(error);
      } finally {
        inflight = undefined;
      }
    })());
  const unavailable = () => {
    const reason = lastError instanceof Error ? lastError.message : 'not fetched yet';
    return new JwksUnavailableError(`the JWKS could not be fetched: ${reason}`, { cause: lastError });
  };
  const usable = (): JWTVerifyGetKey => {
    if (keys === undefined || now() - fetchedAt > maxStaleMs) throw unavailable();
    return keys;
  };

  return async (header, token) => {
    if (inflight) await inflight;
    else if ((keys === undefined || now() - fetchedAt >= maxAgeMs) && mayFetch()) await refresh();
    try {
      return await usable()(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      // A key id the set does not have may be a rotation the proxy has not seen yet: while
      // the endpoint fails, that is not the token's fault.
      if (inflight) await inflight;
      else if (mayFetch()) await refresh();
      if (lastError !== undefined) throw unavailable();
      return usable()(header, token);
    }
  };
}
