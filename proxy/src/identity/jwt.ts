/**
 * Verifies an existing app's own user JWTs with `jose` (never hand-rolled crypto): the
 * signature against a JWKS (fetched, cached and re-fetched on an unknown key id, so key
 * rotation works) or a configured public key, then exp (required unless `require_exp: false`)
 * and nbf, issuer and audience. The tenant comes from a configured claim.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
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

function remoteKeys(url: string, cooldownMs: number): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(new URL(url), { cooldownDuration: cooldownMs, cacheMaxAge: 600_000 });
  return async (header, token) => {
    try {
      return await remote(header, token);
    } catch (error) {
      if (aboutTheToken(error)) throw error;
      throw new JwksUnavailableError(`the JWKS could not be fetched: ${(error as Error).message}`, {
        cause: error,
      });
    }
  };
}

function keyResolver(config: JwtConfig): JWTVerifyGetKey | Promise<PublicKey> {
  if (config.jwks_url) return remoteKeys(config.jwks_url, config.jwks_cooldown_ms);
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

export function createJwtVerifier(config: JwtConfig): JwtVerifier {
  const resolver = keyResolver(config);
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
