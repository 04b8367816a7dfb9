/**
 * Error bodies between the OpenAI and Anthropic shapes. The client's SDK picks its exception
 * class from the HTTP status, which the caller keeps, so the body only has to carry a message
 * a person can act on and a `type` the client's own docs list. Upstream bodies can be
 * anything (a proxy's HTML page, a bare string), so every reader here is total.
 */
import { isRecord, record, text } from '../dialects/json-value.js';

/** Longest slice of a non-JSON upstream body quoted in a message. */
const MAX_QUOTED = 500;

/** Anthropic's error types by HTTP status, for bodies that do not name one. */
const ANTHROPIC_BY_STATUS: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  408: 'timeout_error',
  413: 'request_too_large',
  422: 'invalid_request_error',
  429: 'rate_limit_error',
  503: 'overloaded_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

/** OpenAI `type` and `code` for each Anthropic error type; the code keeps the original type when OpenAI has no better one. */
const OPENAI_BY_ANTHROPIC: Record<string, { type: string; code: string }> = {
  invalid_request_error: { type: 'invalid_request_error', code: 'invalid_request_error' },
  authentication_error: { type: 'authentication_error', code: 'invalid_api_key' },
  billing_error: { type: 'insufficient_quota', code: 'insufficient_quota' },
  permission_error: { type: 'permission_error', code: 'permission_error' },
  not_found_error: { type: 'not_found_error', code: 'not_found_error' },
  request_too_large: { type: 'invalid_request_error', code: 'request_too_large' },
  rate_limit_error: { type: 'rate_limit_error', code: 'rate_limit_exceeded' },
  timeout_error: { type: 'timeout_error', code: 'timeout_error' },
  api_error: { type: 'server_error', code: 'api_error' },
  overloaded_error: { type: 'server_error', code: 'overloaded_error' },
};

/** Anthropic's type for an OpenAI `type` or `code`, for mid-stream errors that have no status. */
const ANTHROPIC_BY_OPENAI: Record<string, string> = {
  invalid_request_error: 'invalid_request_error',
  invalid_api_key: 'authentication_error',
  authentication_error: 'authentication_error',
  insufficient_quota: 'billing_error',
  permission_error: 'permission_error',
  not_found_error: 'not_found_error',
  model_not_found: 'not_found_error',
  rate_limit_exceeded: 'rate_limit_error',
  rate_limit_error: 'rate_limit_error',
  requests: 'rate_limit_error',
  tokens: 'rate_limit_error',
  server_error: 'api_error',
  timeout_error: 'timeout_error',
};

/** Anthropic's type for a status: the table, else api_error for 5xx and invalid_request_error for the rest. */
function anthropicTypeOfStatus(status: number): string {
  return ANTHROPIC_BY_STATUS[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

/** A message for a body that is not the expected JSON: its text, or the bare status. */
function messageOfOddBody(status: number | undefined, body: unknown): string {
  const raw = typeof body === 'string' ? body.trim() : '';
  const where = status === undefined ? 'the upstream' : `the upstream (status ${status})`;
  if (raw === '') return `${where} returned an error without a message`;
  return raw.length > MAX_QUOTED ? `${raw.slice(0, MAX_QUOTED)}…` : raw;
}

/** The `{type, message}` inside an Anthropic error body, when it has one. */
function anthropicInner(body: unknown): { type?: string; message?: string } {
  const inner = record(record(body)?.error);
  return { type: text(inner?.type), message: text(inner?.message) };
}

/**
 * An Anthropic error body (`{type:"error", error:{type, message}}`) as OpenAI's
 * `{error:{message, type, param, code}}`. `status` is undefined for an in-stream error.
 */
export function openaiErrorFromAnthropic(status: number | undefined, body: unknown): unknown {
  const inner = anthropicInner(body);
  const anthropicType = inner.type ?? anthropicTypeOfStatus(status ?? 500);
  const mapped = OPENAI_BY_ANTHROPIC[anthropicType] ?? { type: anthropicType, code: anthropicType };
  const message =
    inner.message ??
    text(record(body)?.message) ??
    (isRecord(body) ? anthropicType : messageOfOddBody(status, body));
  return { error: { message, type: mapped.type, param: null, code: mapped.code } };
}

/**
 * An OpenAI error body as Anthropic's `{type:"error", error:{type, message}}`. The status
 * decides the type when there is one (it is what the client's SDK reads); in a stream, the
 * OpenAI `code` or `type` does.
 */
export function anthropicErrorFromOpenai(status: number | undefined, body: unknown): unknown {
  const obj = record(body);
  const inner = record(obj?.error);
  const code = text(inner?.code);
  const openaiType = text(inner?.type);
  let type: string;
  if (code === 'insufficient_quota') type = 'billing_error';
  else if (status !== undefined) type = anthropicTypeOfStatus(status);
  else type = ANTHROPIC_BY_OPENAI[code ?? ''] ?? ANTHROPIC_BY_OPENAI[openaiType ?? ''] ?? 'api_error';
  // Some compatible servers answer `{"error": "text"}` or `{"message": ...}`.
  const message =
    text(inner?.message) ??
    text(obj?.error) ??
    text(obj?.message) ??
    (obj ? (openaiType ?? code ?? type) : messageOfOddBody(status, body));
  return { type: 'error', error: { type, message } };
}
