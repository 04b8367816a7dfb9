/**
 * Every failure the control plane reports: one class each, with a stable `code`
 * (CP_ERR_*) and an HTTP status. `errorBody` renders any of them as the one JSON shape
 * the admin API uses, `{error: {code, message, details?}}`, so clients branch on `code`.
 */

/** One bad environment variable. */
export interface EnvProblem {
  variable: string;
  message: string;
}

/** The environment cannot run a control plane; lists every problem, not just the first. */
export class ControlPlaneConfigError extends Error {
  readonly code = 'CP_ERR_CONFIG';
  constructor(readonly problems: EnvProblem[]) {
    super(
      `invalid control plane configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n')}`,
    );
    this.name = 'ControlPlaneConfigError';
  }
}

/** The database schema is behind (or ahead of) this build. */
export class SchemaNotCurrentError extends Error {
  readonly code = 'CP_ERR_SCHEMA_NOT_CURRENT';
  constructor(message: string) {
    super(message);
    this.name = 'SchemaNotCurrentError';
  }
}

/** Base of every error that becomes an HTTP answer. */
export abstract class ApiError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  constructor(
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export class BadRequestError extends ApiError {
  readonly code = 'CP_ERR_BAD_REQUEST';
  readonly status = 400;
  override readonly name = 'BadRequestError';
}

export class UnauthorizedError extends ApiError {
  readonly code = 'CP_ERR_UNAUTHORIZED';
  readonly status = 401;
  override readonly name = 'UnauthorizedError';
}

/** Authenticated, or not needing to be, but refused: a console request failing its CSRF check. */
export class ForbiddenError extends ApiError {
  readonly code = 'CP_ERR_FORBIDDEN';
  readonly status = 403;
  override readonly name = 'ForbiddenError';
}

/** Too many wrong tokens from one address (http/failure-throttle.ts); `Retry-After` says when to try again. */
export class TooManyAttemptsError extends ApiError {
  readonly code = 'CP_ERR_TOO_MANY_ATTEMPTS';
  readonly status = 429;
  override readonly name = 'TooManyAttemptsError';
}

export class NotFoundError extends ApiError {
  readonly code = 'CP_ERR_NOT_FOUND';
  readonly status = 404;
  override readonly name = 'NotFoundError';
}

export class ConflictError extends ApiError {
  readonly code = 'CP_ERR_CONFLICT';
  readonly status = 409;
  override readonly name = 'ConflictError';
}

/** A backing store (Qdrant, Redis) failed mid-operation; the operation may be retried. */
export class UpstreamStoreError extends ApiError {
  readonly code = 'CP_ERR_STORE_UNAVAILABLE';
  readonly status = 502;
  override readonly name = 'UpstreamStoreError';
}

/** The feature needs configuration this deployment lacks (for example QDRANT_URL). */
export class NotConfiguredError extends ApiError {
  readonly code = 'CP_ERR_NOT_CONFIGURED';
  readonly status = 501;
  override readonly name = 'NotConfiguredError';
}

/** The JSON body every error response carries. */
export function errorBody(code: string, message: string, details?: unknown) {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}
