/**
 * Verifies an existing app's own user JWTs with `jose` (never hand-rolled crypto): the
 * signature against a JWKS (fetched, cached and re-fetched on an unknown key id, so key
 * rotation works) or a configured public key, then exp (required unless `require_exp: false`)
 * and nbf, issuer and audience. The tenant comes from a configured claim. A JWKS endpoint
 * that cannot be fetched is an outage of a dependency, logged as Redis's and the control
 * plane's are: one warning, a summary a minute, one line when it is back.
 */
import { createOutageLog, type OutageLogger } from '@lanekeeper/contract';
import { createLocalJWKSet, errors, importSPKI, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../config/schema.js';
import { readPublicKey } from './public-keys.js';
import { createRemoteKeySet, JwksUnavailableError } from './remote-key-set.js';

export { JwksUnavailableError };

type PublicKey = Awaited<ReturnType<typeof importSPKI>>;

type JwtConfig = NonNullable<Config['identity']['jwt']>;

export interface JwtVerifier {
  /** The tenant id in a valid token; throws with a human-readable reason otherwise. */
  tenantOf(token: string): Promise<string>;
}

/** Three base64url segments: worth trying as a JWT rather than as an API key. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

/** The JWKS address as logged: no credentials or query, which may carry a secret. */
function endpointOf(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

export interface JwtVerifierOptions {
  /** Told of the JWKS endpoint's outages (none without one). */
  logger?: OutageLogger;
  /** The clock the JWKS cache and cooldown read. */
  now?: () => number;
}

function remoteKeys(url: string, cooldownMs: number, { logger, now }: JwtVerifierOptions): JWTVerifyGetKey {
  const address = new URL(url);
  const outage = logger
    ? createOutageLog(logger, 'identity provider (jwks)', { fields: { endpoint: endpointOf(address) } })
    : undefined;
  return createRemoteKeySet(address, { cooldownMs, outage, now });
}

/**
 * A PEM key, imported once per algorithm it may verify (a CryptoKey is bound to one): with
 * `algorithms: [RS256, PS256]`, a PS256 token is checked with the key imported for PS256.
 * The key was checked when the config was read (public-keys.ts).
 */
function pemKeys(pem: string, algorithms: readonly string[]): JWTVerifyGetKey {
  const imported = new Map<string, Promise<PublicKey>>();
  return (header) => {
    const alg = header.alg ?? '';
    if (!algorithms.includes(alg))
      throw new errors.JOSEAlgNotAllowed(`"${alg.slice(0, 16)}" is not an allowed algorithm`);
    let key = imported.get(alg);
    if (key === undefined) {
      key = importSPKI(pem, alg);
      imported.set(alg, key);
    }
    return key;
  };
}

function keyResolver(config: JwtConfig, options: JwtVerifierOptions): JWTVerifyGetKey {
  if (config.jwks_url) return remoteKeys(config.jwks_url, config.jwks_cooldown_ms, options);
  const keys = readPublicKey(config.public_key ?? '', config.algorithms);
  return keys.kind === 'jwks' ? createLocalJWKSet(keys.jwks as never) : pemKeys(keys.pem, keys.algorithms);
}

function claimAt(payload: Record<string, unknown>, claim: string): unknown {
  if (claim in payload) return payload[claim];
  // Dotted paths reach nested claims; a claim whose name itself has dots is matched above.
  return claim.split('.').reduce<unknown>((value, key) => {
    return value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
  }, payload);
}

export function createJwtVerifier(config: JwtConfig, options: JwtVerifierOptions = {}): JwtVerifier {
  const resolver = keyResolver(config, options);
  const checks = {
    issuer: config.issuer,
    audience: config.audience,
    algorithms: config.algorithms,
    clockTolerance: config.clock_tolerance_s,
    requiredClaims: config.require_exp ? ['exp'] : [],
  };
  return {
    async tenantOf(token) {
      const payload = await verified(token, resolver, checks);
      const tenant = claimAt(payload, config.tenant_claim);
      if (typeof tenant !== 'string' || tenant === '') {
        throw new Error(`the token has no "${config.tenant_claim}" claim naming a tenant`);
      }
      return tenant;
    },
  };
}

/**
 * The token's payload once its signature and claims hold. A token without `kid` matches
 * every key of its algorithm in a JWKS; while an IdP rotates there are two, and each is
 * tried in turn (jose hands them over on the error it throws).
 */
async function verified(
  token: string,
  keys: JWTVerifyGetKey,
  options: Parameters<typeof jwtVerify>[2],
): Promise<Record<string, unknown>> {
  try {
    return (await jwtVerify(token, keys, options)).payload;
  } catch (error) {
    if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
    for await (const key of error as unknown as AsyncIterable<PublicKey>) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (inner) {
        if (inner instanceof errors.JWSSignatureVerificationFailed) continue;
        throw inner;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}
