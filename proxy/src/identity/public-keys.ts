/**
 * `identity.jwt.public_key` read once, synchronously, with Node's own key parser: a key
 * that does not parse, or that cannot verify an algorithm `algorithms` lists, is a config
 * problem. It used to be imported on the first JWT request, and a bad key ended the
 * process (an unhandled rejection), even on a live reload that had already been accepted.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';

/** The JWS algorithms each kind of public key verifies (RFC 7518, RFC 8037). */
function algorithmsFor(key: KeyObject): readonly string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec':
      switch (key.asymmetricKeyDetails?.namedCurve) {
        case 'prime256v1':
          return ['ES256'];
        case 'secp384r1':
          return ['ES384'];
        case 'secp521r1':
          return ['ES512'];
        default:
          return [];
      }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    case 'ed448':
      return ['EdDSA'];
    default:
      return [];
  }
}

/** What one PEM key verifies when `algorithms` is not set: RS256 for RSA, as before; the one algorithm of a curve. */
function defaultAlgorithms(key: KeyObject): readonly string[] {
  const fits = algorithmsFor(key);
  return key.asymmetricKeyType === 'rsa' ? ['RS256'] : fits;
}

export type ConfiguredKeys =
  /** A PEM (SPKI) key and the algorithms it may verify, in the order configured. */
  | { kind: 'pem'; pem: string; algorithms: readonly string[] }
  /** A JWK, or a JWKS, as JSON: each key carries its own algorithm or type. */
  | { kind: 'jwks'; jwks: { keys: Record<string, unknown>[] } };

/** The configured public key, checked; throws an Error an operator can act on. */
export function readPublicKey(material: string, algorithms: readonly string[] | undefined): ConfiguredKeys {
  const text = material.trim();
  if (text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error('public_key starts with "{" but is not JSON (a JWK or a JWKS)');
    }
    const keys = (parsed as { keys?: unknown }).keys ?? [parsed];
    if (!Array.isArray(keys) || keys.length === 0)
      throw new Error('public_key as JSON must be a JWK or a JWKS with at least one key');
    keys.forEach((jwk: unknown, i) => {
      const at = keys.length > 1 ? ` (key ${i})` : '';
      if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk))
        throw new Error(`public_key${at} is not a JWK object`);
      const { kty } = jwk as { kty?: unknown };
      if (kty === 'oct') throw new Error(`public_key${at} is a shared secret (kty "oct"); give a public key`);
      if ('d' in jwk) throw new Error(`public_key${at} is a private key ("d"); give only its public part`);
      try {
        createPublicKey({ key: jwk as never, format: 'jwk' });
      } catch (error) {
        throw new Error(`public_key${at} is not a usable JWK: ${(error as Error).message}`);
      }
    });
    return { kind: 'jwks', jwks: { keys: keys as Record<string, unknown>[] } };
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: text, format: 'pem' });
  } catch (error) {
    throw new Error(`public_key is not a PEM public key: ${(error as Error).message}`);
  }
  const fits = algorithmsFor(key);
  if (fits.length === 0)
    throw new Error(`public_key is a ${key.asymmetricKeyType} key, which no JWS algorithm uses`);
  const wanted = algorithms ?? defaultAlgorithms(key);
  const misfit = wanted.filter((alg) => !fits.includes(alg));
  if (misfit.length > 0)
    throw new Error(
      `public_key is a ${key.asymmetricKeyType} key, which cannot verify ${misfit.join(', ')}: ` +
        `algorithms may list ${fits.join(', ')}`,
    );
  return { kind: 'pem', pem: text, algorithms: wanted };
}
