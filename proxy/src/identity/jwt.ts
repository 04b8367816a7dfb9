/**
 * Verifies an existing app's own user JWTs with `jose` (never hand-rolled crypto): the
 * signature against a JWKS (fetched, cached and re-fetched on an unknown key id, so key
 * rotation works) or a configured public key, then exp (required unless `require_exp: false`)
 * and nbf, issuer and audience. The tenant comes from a configured claim. A JWKS endpoint
 * that cannot be fetched is an outage of a dependency, logged as Redis's and the control
 * plane's are: one warning, a summary a minute, one line when it is back.
 */
import { createOutageLog, type OutageLogger } from '@lanekeeper/contract';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors,
  importSPKI,
  jwtVerify,
  type JWTVerifyGetKey,
} from 'jose';
import type { Config } from '../config/schema.js';

type JwtConfig = NonNullable<Config['identity']['jwt']>;

export interface JwtVerifier {
  /** The tenant id in a valid token; throws with a human-readable reason otherwise. */
  tenantOf(token: string): Promise<string>;
}

/** Three base64url segments: worth trying as a JWT rather than as an API key. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

type PublicKey = Awaited<ReturnType<typeof importSPKI>>;

/** The keys could not be had from the JWKS endpoint: nothing is known about the token itself. */
export class JwksUnavailableError extends Error {}

/**
 * What a key lookup may say about the token: no key of its id or of its algorithm. Anything
 * else the remote JWKS throws is about fetching it (a timeout, a refused connection, a non-200
 * answer, a body that is no JWKS).
 */
function aboutTheToken(error: unknown): boolean {
  return (
    error instanceof errors.JWKSNoMatchingKey ||
    error instanceof errors.JWKSMultipleMatchingKeys ||
    error instanceof errors.JOSENotSupported ||
    error instanceof errors.JOSEAlgNotAllowed
  );
}

/** The JWKS address as logged: no credentials or query, which may carry a secret. */
function endpointOf(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function remoteKeys(url: string, cooldownMs: number, logger: OutageLogger | undefined): JWTVerifyGetKey {
  const address = new URL(url);
  const outage = logger
    ? createOutageLog(logger, 'identity provider (jwks)', { fields: { endpoint: endpointOf(address) } })
    : undefined;
  // Counted so that a lookup knows whether it fetched: keys served from the cache say
  // nothing about whether the endpoint is back.
  let fetches = 0;
  const remote = createRemoteJWKSet(address, {
    cooldownDuration: cooldownMs,
    cacheMaxAge: 600_000,
    [customFetch]: (input: string, init: RequestInit) => {
      fetches++;
      return fetch(input, init);
    },
  });
  return async (header, token) => {
    const before = fetches;
    try {
      const key = await remote(header, token);
      if (fetches !== before) outage?.succeeded();
      return key;
    } catch (error) {
      if (aboutTheToken(error)) {
        // The keys were had; the token's key is not among them.
        if (fetches !== before) outage?.succeeded();
        throw error;
      }
      outage?.failed(error);
      throw new JwksUnavailableError(`the JWKS could not be fetched: ${(error as Error).message}`, {
        cause: error,
      });
    }
  };
}

function keyResolver(
  config: JwtConfig,
  logger: OutageLogger | undefined,
): JWTVerifyGetKey | Promise<PublicKey> {
  if (config.jwks_url) return remoteKeys(config.jwks_url, config.jwks_cooldown_ms, logger);
  const material = (config.public_key ?? '').trim();
  if (material.startsWith('{')) {
    const parsed = JSON.parse(material) as { keys?: unknown[] };
    return createLocalJWKSet(parsed.keys ? (parsed as never) : ({ keys: [parsed] } as never));
  }
  const alg = config.algorithms?.[0] ?? 'RS256';
  return importSPKI(material, alg);
}

function claimAt(payload: Record<string, unknown>, claim: string): unknown {
  if (claim in payload) return payload[claim];
  // Dotted paths reach nested claims; a claim whose name itself has dots is matched above.
  return claim.split('.').reduce<unknown>((value, key) => {
    return value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
  }, payload);
}

/** `logger` is told of the JWKS endpoint's outages (none without one). */
export function createJwtVerifier(config: JwtConfig, logger?: OutageLogger): JwtVerifier {
  const resolver = keyResolver(config, logger);
  return {
    async tenantOf(token) {
      const key = await resolver;
      const options = {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: config.algorithms,
        clockTolerance: config.clock_tolerance_s,
        requiredClaims: config.require_exp ? ['exp'] : [],
      };
      const { payload } =
        typeof key === 'function'
          ? await jwtVerify(token, key, options)
          : await jwtVerify(token, key, options);
      const tenant = claimAt(payload as Record<string, unknown>, config.tenant_claim);
      if (typeof tenant !== 'string' || tenant === '') {
        throw new Error(`the token has no "${config.tenant_claim}" claim naming a tenant`);
      }
      return tenant;
    },
  };
}
