/**
 * The shape of a pipeline stage. Request hooks run top to bottom in the order of
 * `pipeline.ts`; response hooks run bottom to top (like Envoy's decoder and encoder
 * filters). A stage implements only the hooks it needs and never touches sockets.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from './context.js';
import type { ProxyError } from './errors.js';

/** A complete response made by the proxy itself (an error, or a route the proxy serves). */
export type LocalReply =
  | { readonly error: ProxyError }
  | { readonly response: { status: number; headers: OutgoingHttpHeaders; body: Buffer } };

/** What a request hook returns: nothing to go on, or a local reply that ends the request. */
export type RequestVerdict = LocalReply | undefined;

/** The head of a response on its way to the client; response-header hooks may edit `headers`. */
export interface ResponseHead {
  status: number;
  headers: OutgoingHttpHeaders;
  /**
   * Set by a stage that rewrites the whole body once it is complete (a translated JSON
   * answer): the head waits for the first bytes out, so the stage may still change it.
   */
  held?: boolean;
}

export interface Stage {
  readonly name: string;
  /** When tracing is on, its onRequest runs inside a child span of this name. */
  readonly span?: string;
  /**
   * Runs before the request body is read, on the request line and headers alone, top to
   * bottom. A refusal here is sent without the body being buffered or parsed: a stranger's
   * upload costs the proxy no more than reading past it.
   */
  onHeaders?(ctx: RequestContext): RequestVerdict | Promise<RequestVerdict>;
  onRequest?(ctx: RequestContext): RequestVerdict | Promise<RequestVerdict>;
  onResponseHeaders?(ctx: RequestContext, head: ResponseHead): void;
  /**
   * Sees each body chunk and returns the bytes to pass on (usually `chunk` itself). Called
   * once more with an empty chunk and `end` true, so a stage holding a partial event can
   * release it.
   */
  onResponseChunk?(ctx: RequestContext, chunk: Buffer, end: boolean): Buffer;
  /**
   * Runs once the client has its response (or has gone), for every stage whose request
   * hook ran. Off the latency path: settle limits, meter, record metrics, log. Hooks are
   * started bottom to top without waiting for one another, so whatever a later hook reads
   * must be set before a hook's first await.
   */
  onResponseEnd?(ctx: RequestContext): void | Promise<void>;
}

/** Continue to the next stage. */
export const CONTINUE: RequestVerdict = undefined;

export function reply(error: ProxyError): LocalReply {
  return { error };
}
