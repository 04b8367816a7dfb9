/**
 * Every failure the proxy reports, one class each, with a stable `code` (PROXY_ERR_*), an
 * HTTP status and the short machine code clients see. `renderError` writes any of them in
 * the client's own API dialect, so an SDK surfaces it as the right exception with a message
 * a person can act on.
 */
import { HEADER_WWW_AUTHENTICATE } from './headers.js';

/** How a dialect's clients expect an error body to look. */
export type ErrorStyle = 'openai' | 'anthropic' | 'gemini' | 'ollama' | 'qdrant';

export interface ConfigProblem {
  /** Dotted YAML path, for example `plans.free.rate_limits.requests_per_minute`. */
  path: string;
  message: string;
}

/** A configuration that cannot be used; lists every problem, not just the first. */
export class ConfigError extends Error {
  readonly code = 'PROXY_ERR_CONFIG';
  constructor(readonly problems: ConfigProblem[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Base of every error that becomes an HTTP answer to a client. */
export abstract class ProxyError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  /** The short code in the body (`invalid_api_key`, `rate_limit_exceeded`, ...). */
  abstract readonly apiCode: string;
  /** Extra response headers, such as `retry-after`. */
  headers: Record<string, string> = {};
}

/**
 * RFC 9110 §11.6.1: a 401 must say how to authenticate. Bearer (RFC 6750) is the scheme
 * every dialect's clients can use, whatever header they usually send the key in.
 */
const BEARER_CHALLENGE = 'Bearer realm="lanekeeper"';

function simple(code: string, status: number, apiCode: string, name: string) {
  const cls = class extends ProxyError {
    readonly code = code;
    readonly status = status;
    readonly apiCode = apiCode;
    constructor(message: string) {
      super(message);
      this.name = name;
      if (status === 401) this.headers = { [HEADER_WWW_AUTHENTICATE]: BEARER_CHALLENGE };
    }
  };
  Object.defineProperty(cls, 'name', { value: name });
  return cls;
}

export const TenantRequiredError = simple(
  'PROXY_ERR_TENANT_REQUIRED',
  400,
  'tenant_required',
  'TenantRequiredError',
);
export const MissingApiKeyError = simple(
  'PROXY_ERR_MISSING_API_KEY',
  401,
  'missing_api_key',
  'MissingApiKeyError',
);
export const InvalidApiKeyError = simple(
  'PROXY_ERR_INVALID_API_KEY',
  401,
  'invalid_api_key',
  'InvalidApiKeyError',
);
export const InvalidTokenError = simple('PROXY_ERR_INVALID_TOKEN', 401, 'invalid_token', 'InvalidTokenError');
export const TenantUnknownError = simple(
  'PROXY_ERR_TENANT_UNKNOWN',
  403,
  'tenant_unknown',
  'TenantUnknownError',
);
export const TenantInactiveError = simple(
  'PROXY_ERR_TENANT_INACTIVE',
  403,
  'tenant_inactive',
  'TenantInactiveError',
);
export const ModelNotAllowedError = simple(
  'PROXY_ERR_MODEL_NOT_ALLOWED',
  403,
  'model_not_allowed',
  'ModelNotAllowedError',
);
export const FeatureNotEnabledError = simple(
  'PROXY_ERR_FEATURE_NOT_ENABLED',
  403,
  'feature_not_enabled',
  'FeatureNotEnabledError',
);
export const EndpointNotAllowedError = simple(
  'PROXY_ERR_ENDPOINT_NOT_ALLOWED',
  403,
  'endpoint_not_allowed',
  'EndpointNotAllowedError',
);
export const MethodNotAllowedError = simple(
  'PROXY_ERR_METHOD_NOT_ALLOWED',
  405,
  'method_not_allowed',
  'MethodNotAllowedError',
);
export const ContextLengthExceededError = simple(
  'PROXY_ERR_CONTEXT_LENGTH',
  400,
  'context_length_exceeded',
  'ContextLengthExceededError',
);
/** A failure inside the proxy itself (a bug): nothing about the request is said. */
export const InternalProxyError = simple('PROXY_ERR_INTERNAL', 500, 'internal_error', 'InternalProxyError');
export const InvalidJsonError = simple('PROXY_ERR_INVALID_JSON', 400, 'invalid_json', 'InvalidJsonError');
export const InvalidRequestError = simple(
  'PROXY_ERR_INVALID_REQUEST',
  400,
  'invalid_request',
  'InvalidRequestError',
);
export const BodyTooLargeError = simple(
  'PROXY_ERR_BODY_TOO_LARGE',
  413,
  'request_too_large',
  'BodyTooLargeError',
);
export const HeadersTooLargeError = simple(
  'PROXY_ERR_HEADERS_TOO_LARGE',
  431,
  'request_headers_too_large',
  'HeadersTooLargeError',
);
export const RequestTimeoutError = simple(
  'PROXY_ERR_REQUEST_TIMEOUT',
  408,
  'request_timeout',
  'RequestTimeoutError',
);
export const UpstreamUnreachableError = simple(
  'PROXY_ERR_UPSTREAM_UNREACHABLE',
  502,
  'upstream_unreachable',
  'UpstreamUnreachableError',
);
/**
 * The upstream refused the proxy's own credentials (its 401): the operator's provider key is
 * wrong or revoked. Not the tenant's 401, whose key the proxy already accepted.
 */
export const UpstreamAuthError = simple(
  'PROXY_ERR_UPSTREAM_AUTH',
  502,
  'upstream_auth_failed',
  'UpstreamAuthError',
);
export const UpstreamTimeoutError = simple(
  'PROXY_ERR_UPSTREAM_TIMEOUT',
  504,
  'upstream_timeout',
  'UpstreamTimeoutError',
);
/**
 * The JWKS the token must be checked against could not be fetched (the identity provider
 * is down, slow or answering garbage): the client's token may well be good, so it is told
 * to retry rather than to sign in again, which a 401 says.
 */
export const IdentityProviderUnavailableError = simple(
  'PROXY_ERR_IDENTITY_PROVIDER_UNAVAILABLE',
  503,
  'identity_provider_unavailable',
  'IdentityProviderUnavailableError',
);
export const StoreUnavailableError = simple(
  'PROXY_ERR_STORE_UNAVAILABLE',
  503,
  'store_unavailable',
  'StoreUnavailableError',
);
export const NotFoundError = simple('PROXY_ERR_NOT_FOUND', 404, 'not_found', 'NotFoundError');
export const ShuttingDownError = simple('PROXY_ERR_SHUTTING_DOWN', 503, 'shutting_down', 'ShuttingDownError');

/** Which limit refused a request; also the `limit` label of lanekeeper_rate_limited_total. */
export type LimitName =
  | 'requests_per_minute'
  | 'tokens_per_hour'
  | 'max_concurrent'
  | 'budget_usd_per_day'
  | 'budget_usd_per_month';

/** 429: a tenant limit refused the request; `retryAfterS` is whole seconds, at least 1. */
export class RateLimitedError extends ProxyError {
  readonly code: string = 'PROXY_ERR_RATE_LIMITED';
  readonly status = 429;
  readonly apiCode: string = 'rate_limit_exceeded';
  constructor(
    readonly limit: LimitName,
    readonly retryAfterS: number,
    message: string,
  ) {
    super(message);
    this.name = 'RateLimitedError';
    this.headers = { 'retry-after': String(Math.max(1, Math.ceil(retryAfterS))) };
  }
}

/** 429: a spend budget (per day or month) is used up until its window resets. */
export class BudgetExceededError extends RateLimitedError {
  override readonly code = 'PROXY_ERR_BUDGET_EXCEEDED';
  override readonly apiCode = 'budget_exceeded';
  constructor(limit: LimitName, retryAfterS: number, message: string) {
    super(limit, retryAfterS, message);
    this.name = 'BudgetExceededError';
  }
}

const OPENAI_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  405: 'invalid_request_error',
  408: 'timeout_error',
  413: 'invalid_request_error',
  429: 'rate_limit_error',
  502: 'api_error',
  503: 'api_error',
  504: 'api_error',
};

const ANTHROPIC_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  405: 'invalid_request_error',
  408: 'timeout_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  502: 'api_error',
  503: 'api_error',
  504: 'timeout_error',
};

const GEMINI_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  405: 'UNIMPLEMENTED',
  408: 'DEADLINE_EXCEEDED',
  413: 'INVALID_ARGUMENT',
  429: 'RESOURCE_EXHAUSTED',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

/** The JSON body of an error in the given dialect. */
export function renderError(error: ProxyError, style: ErrorStyle): Record<string, unknown> {
  switch (style) {
    case 'anthropic':
      return {
        type: 'error',
        error: {
          type: ANTHROPIC_TYPES[error.status] ?? 'api_error',
          message: error.message,
          code: error.apiCode,
        },
      };
    case 'gemini':
      return {
        error: {
          code: error.status,
          message: error.message,
          status: GEMINI_STATUS[error.status] ?? 'UNKNOWN',
          reason: error.apiCode,
        },
      };
    case 'ollama':
      return { error: error.message, code: error.apiCode };
    case 'qdrant':
      return { status: { error: error.message, code: error.apiCode }, result: null, time: 0 };
    case 'openai':
      return {
        error: {
          message: error.message,
          type: OPENAI_TYPES[error.status] ?? 'api_error',
          param: null,
          code: error.apiCode,
          ...(error instanceof RateLimitedError ? { limit: error.limit } : {}),
        },
      };
  }
}
