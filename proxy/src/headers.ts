/**
 * Every header name the proxy reads, writes or strips, in one place.
 */

/** Client credentials: read for identity, never forwarded upstream. */
export const CREDENTIAL_HEADERS = ['authorization', 'x-api-key', 'api-key', 'x-goog-api-key'] as const;

/** Hop-by-hop headers (RFC 9110 §7.6.1): meaningful for one connection only, never forwarded. */
export const HOP_BY_HOP_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Upstream response headers that describe the operator's account or the provider's own
 * site, not the tenant's request: every tenant shares the account, and the proxy's host is
 * not the provider's. The organisation and project ids name the operator's account; a
 * provider's cookies (Cloudflare's `__cf_bm`) are set for the account's traffic as a whole;
 * Alt-Svc and HSTS would be applied by clients to the proxy's own host (HSTS with
 * includeSubDomains to the operator's whole domain).
 */
export const UPSTREAM_ACCOUNT_HEADERS = new Set([
  'openai-organization',
  'openai-project',
  'anthropic-organization-id',
  'set-cookie',
  'alt-svc',
  'strict-transport-security',
]);

/**
 * Request headers that choose what the operator's credential is used as: which OpenAI
 * organisation and project it bills and is limited under, which Google Cloud project is
 * charged, and which of the Anthropic account's beta features are on (the Files API reaches
 * files stored in the shared account, the MCP connector makes the provider call out, and
 * larger context tiers are priced above the proxy's price table). A tenant never chooses
 * them: they are dropped unless the upstream's `pass_client_headers` names them.
 */
export const CLIENT_ACCOUNT_HEADERS = [
  'openai-organization',
  'openai-project',
  'anthropic-beta',
  'x-goog-user-project',
] as const;

const ACCOUNT = new Set<string>(CLIENT_ACCOUNT_HEADERS);

/** True for a (lowercase) header that chooses the operator's account, unless `upstream` lets clients send it. */
export function accountHeaderRefused(
  name: string,
  upstream: { readonly pass_client_headers: readonly string[] } | undefined,
): boolean {
  return ACCOUNT.has(name) && !upstream?.pass_client_headers.includes(name);
}

export const HEADER_REQUEST_ID = 'x-request-id';
export const HEADER_LANEKEEPER_REQUEST_ID = 'x-lanekeeper-request-id';
export const HEADER_FORWARDED_FOR = 'x-forwarded-for';
export const HEADER_FORWARDED_PROTO = 'x-forwarded-proto';
export const HEADER_FORWARDED_HOST = 'x-forwarded-host';
export const HEADER_RETRY_AFTER = 'retry-after';
export const HEADER_IF_NONE_MATCH = 'if-none-match';
export const HEADER_WWW_AUTHENTICATE = 'www-authenticate';

/** The tenant's own limits, as OpenAI names them; the upstream's are replaced by these. */
export const RATELIMIT_LIMIT_REQUESTS = 'x-ratelimit-limit-requests';
export const RATELIMIT_REMAINING_REQUESTS = 'x-ratelimit-remaining-requests';
export const RATELIMIT_RESET_REQUESTS = 'x-ratelimit-reset-requests';
export const RATELIMIT_LIMIT_TOKENS = 'x-ratelimit-limit-tokens';
export const RATELIMIT_REMAINING_TOKENS = 'x-ratelimit-remaining-tokens';
export const RATELIMIT_RESET_TOKENS = 'x-ratelimit-reset-tokens';
/** Prefix of the upstream's own rate-limit headers (the provider account's limits), never shown to tenants. */
export const UPSTREAM_RATELIMIT_PREFIXES = ['x-ratelimit-', 'anthropic-ratelimit-', 'ratelimit'] as const;
