/**
 * A translator lets a client keep speaking its API while the upstream speaks another: it
 * turns one client-dialect request into the upstream dialect's, and the upstream's answer
 * (JSON, stream events, errors) back into what the client's own SDK expects. One module per
 * pair, named `<client>-<upstream>.ts`, as Envoy AI Gateway names its translators.
 *
 * Translators are pure: no sockets, config or stores. The proxy meters the upstream's bytes
 * in their native form BEFORE they reach a translator, so billing never depends on one.
 */
import type { JsonBody, StreamEvent } from '../dialects/dialect.js';

/** The upstream request a translator produces. */
export interface UpstreamRequest {
  /** The upstream path, e.g. `/v1/messages` or `/v1beta/models/gemini-2.5-flash:streamGenerateContent`. */
  readonly path: string;
  /** The query string without "?" ("" for none), e.g. `alt=sse`. */
  readonly query: string;
  readonly body: JsonBody;
  /** True when the upstream will answer with a stream. */
  readonly stream: boolean;
}

export interface TranslateOptions {
  /** The upstream model id, after the plan's rewrite and routing. */
  readonly model: string;
}

/** Turns one upstream stream into the client's, event by event. One instance per response. */
export interface StreamTranslator {
  /**
   * One upstream event (an SSE event, or an NDJSON line with event ""): the client-dialect
   * bytes to send now, "" when none. Never throws on odd input: an event it cannot read is
   * skipped.
   */
  push(event: StreamEvent): string;
  /**
   * The upstream stream ended: the closing bytes the client's dialect requires (OpenAI: the
   * usage chunk when the client asked for one, then `data: [DONE]`), "" when none.
   */
  end(): string;
}

export interface Translator {
  /** The client's dialect name (`openai`, `anthropic`). */
  readonly client: string;
  /** The upstream's dialect name (`anthropic`, `gemini`, `ollama`, `openai`). */
  readonly upstream: string;
  /**
   * The upstream request for a client request to `endpoint` (the client dialect's
   * DialectRoute.endpoint, e.g. `chat.completions`). Throws TranslationError naming what
   * cannot be translated (an endpoint or a field), before anything is sent.
   */
  request(endpoint: string, body: JsonBody, options: TranslateOptions): UpstreamRequest;
  /** A successful (2xx) upstream JSON body, as the client's dialect returns it. */
  response(body: unknown, options: TranslateOptions): unknown;
  /** An upstream error body (any non-2xx status, body as parsed, or text when not JSON) in the client's error shape. The status is kept by the caller. */
  error(status: number, body: unknown): unknown;
  /** A translator for one streamed response. `includeUsage`: the client asked for usage in the stream. */
  stream(options: TranslateOptions & { readonly includeUsage: boolean }): StreamTranslator;
}

/** A request the upstream's API has no equivalent for: 400 in the client's dialect, upstream not called. */
export class TranslationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TranslationError';
  }
}
