/**
 * Why the tenant-scoped Qdrant route refuses a request, in the shape a Qdrant client expects.
 * Every refusal is answered with Qdrant's own error envelope (`{status:{error}, result:null,
 * time}`) so the app's Qdrant SDK surfaces it like any other Qdrant error, and carries a
 * stable `code` for logs and tests.
 */

/** Stable codes of refusals; the message says what to do instead. */
export type VectorRefusalCode =
  | 'PROXY_ERR_VECTOR_FEATURE'
  | 'PROXY_ERR_VECTOR_FORBIDDEN'
  | 'PROXY_ERR_VECTOR_TENANT_FIELD'
  | 'PROXY_ERR_VECTOR_UNKNOWN_COLLECTION'
  | 'PROXY_ERR_VECTOR_BAD_REQUEST'
  | 'PROXY_ERR_VECTOR_NOT_FOUND'
  | 'PROXY_ERR_VECTOR_UPSTREAM'
  | 'PROXY_ERR_VECTOR_RESPONSE_TOO_LARGE';

/** A request the route will not forward (or could not complete), with its HTTP status. */
export class VectorRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: VectorRefusalCode,
    message: string,
  ) {
    super(message);
    this.name = 'VectorRefusal';
  }
}

/** 403: something that could cross tenants (aliases, snapshots, cluster, other collections...). */
export const forbidden = (message: string) => new VectorRefusal(403, 'PROXY_ERR_VECTOR_FORBIDDEN', message);
/** 400: a body or id Qdrant itself would reject. */
export const badRequest = (message: string) =>
  new VectorRefusal(400, 'PROXY_ERR_VECTOR_BAD_REQUEST', message);

/** Qdrant's envelope for a successful answer. */
export function okEnvelope(result: unknown, started: number): Buffer {
  return Buffer.from(JSON.stringify({ result, status: 'ok', time: (performance.now() - started) / 1000 }));
}

/** Qdrant's envelope for an error. */
export function errorEnvelope(message: string, started: number): Buffer {
  return Buffer.from(
    JSON.stringify({ status: { error: message }, time: (performance.now() - started) / 1000, result: null }),
  );
}
