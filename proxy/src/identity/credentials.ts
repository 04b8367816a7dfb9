/**
 * Where clients put their credentials, across dialects: `Authorization: Bearer` (OpenAI,
 * JWTs), `x-api-key` (Anthropic), `api-key` (Azure-style), `x-goog-api-key` and the `key`
 * query parameter (Gemini). The proxy reads them here and never forwards any of them.
 */
import { hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** Query parameters that carry credentials (Gemini's `key`); stripped before forwarding. */
export const CREDENTIAL_QUERY_PARAMS: ReadonlySet<string> = new Set(['key']);

function single(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v === undefined || v === '' ? undefined : v.trim();
}

/** The bearer token in `Authorization`, if any. */
export function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  const auth = single(headers.authorization);
  if (!auth) return undefined;
  const match = /^Bearer\s+(.+)$/i.exec(auth);
  return match?.[1]?.trim();
}

/** The first API-key-shaped credential a client sent, from headers or the query string. */
export function presentedApiKey(
  headers: IncomingHttpHeaders,
  query: URLSearchParams | undefined,
): string | undefined {
  return (
    bearerToken(headers) ??
    single(headers['x-api-key']) ??
    single(headers['api-key']) ??
    single(headers['x-goog-api-key']) ??
    query?.get('key') ??
    undefined
  );
}

export function sha256Hex(value: string): string {
  // The one-shot hash is a quarter of createHash().update().digest()'s cost, on every request.
  return hash('sha256', value, 'hex');
}

/**
 * Finds the tenant owning a key. The index is keyed by sha256, so the lookup's timing can
 * depend only on the digest, which an attacker cannot steer towards a real key; no stored
 * secret is ever compared byte by byte against attacker input.
 */
export function tenantForKey<T>(
  index: ReadonlyMap<string, T>,
  key: string,
): { tenant: T; hash: string } | undefined {
  const hash = sha256Hex(key);
  const tenant = index.get(hash);
  return tenant === undefined ? undefined : { tenant, hash };
}
