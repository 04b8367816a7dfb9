/**
 * The one interface every provider dialect implements. A dialect knows its request shape
 * (where the model, system prompt and output cap live), how to read usage from a JSON body
 * and from stream events, and how its clients expect errors to look. Stages call dialects;
 * dialects never see sockets, config files or stores.
 */
import type { ErrorStyle } from '../errors.js';
import type { Usage } from '../usage/usage.js';
import type { Choices } from './cap-fields.js';

/** A JSON object body from a client, mutable while stages rewrite it. */
export type JsonBody = Record<string, unknown>;

/** The request as a dialect sees it. `path` (no query) may be rewritten, for Gemini's model-in-path. */
export interface DialectRequest {
  readonly method: string;
  path: string;
  /** The query string without the leading "?", as received. */
  readonly query: string;
  /** The parsed JSON body; undefined for bodiless requests. */
  body: JsonBody | undefined;
}

/** The endpoint a dialect recognised. */
export interface DialectRoute {
  /** Stable endpoint name (`chat.completions`, `messages`, ...), used in logs and metric labels. */
  readonly endpoint: string;
  /** Whether responses carry token usage worth metering (false for model listings and the like). */
  readonly metered: boolean;
  /**
   * False for endpoints that produce no output tokens (embeddings): no output cap is set
   * or reserved for them. Absent means true.
   */
  readonly generates?: boolean;
  /**
   * True for a catch-all route (`/v1/*` paths a dialect does not know by name). In `auto`
   * mode any dialect's specific route wins over another's catch-all. Absent means false.
   */
  readonly fallback?: boolean;
}

/** One event of a response stream: an SSE event, or one NDJSON line (with `event` ""). */
export interface StreamEvent {
  readonly event: string;
  readonly data: string;
}

/** What one response body or stream event tells the meter. */
export interface Observation {
  usage?: Usage;
  /** The model id the upstream says it used. */
  model?: string;
  /** An in-band error after a 200 status. */
  error?: string;
}

export interface Dialect {
  readonly name: string;
  readonly errorStyle: ErrorStyle;
  /**
   * Every key the API defines at the top level and in its control objects is lowercase, so
   * any other spelling there is refused: Go servers (Ollama, LocalAI) match field names
   * without regard to case and would read `Messages` as `messages`, which the proxy does not
   * (request/json-scan.ts).
   */
  readonly lowercaseKeys?: boolean;
  /** Recognises a request by method and path; undefined when this dialect does not speak it. */
  match(method: string, path: string): DialectRoute | undefined;
  /** The model the client asked for, if any. */
  readModel(req: DialectRequest, route: DialectRoute): string | undefined;
  rewriteModel(req: DialectRequest, route: DialectRoute, model: string): void;
  /** Adds `prompt` as the first system instruction, in the dialect's own place and form. */
  injectSystemPrompt(req: DialectRequest, route: DialectRoute, prompt: string): void;
  /**
   * The field through which this request would skip the injected system prompt (a token-id
   * prompt, a raw template, a cached context), or undefined. Such requests need the plan
   * feature `raw_prompt`.
   */
  promptBypass?(req: DialectRequest, route: DialectRoute): string | undefined;
  /** A cheap, deliberately generous estimate of the prompt's tokens. */
  estimatePromptTokens(req: DialectRequest, route: DialectRoute): number;
  hasImageInput(req: DialectRequest, route: DialectRoute): boolean;
  /**
   * The client's output cap: the smallest of every field the upstream may read as one
   * (max_tokens and its cousins), undefined when none is set. Throws InvalidRequestError
   * naming the field when one is not a positive integer (see cap-fields.ts).
   */
  readMaxOutput(req: DialectRequest, route: DialectRoute): number | undefined;
  /** Sets the output cap in exactly one field and removes every other cap field. */
  setMaxOutput(req: DialectRequest, route: DialectRoute, tokens: number): void;
  /**
   * How many completions the upstream generates for the request (`n`, `best_of`,
   * `candidateCount`), with the field that asked; undefined means one. Throws like
   * readMaxOutput. Absent for dialects without choices.
   */
  readChoices?(req: DialectRequest, route: DialectRoute): Choices | undefined;
  /** True when the request asks for a streamed answer. */
  isStream(req: DialectRequest, route: DialectRoute): boolean;
  readonly streamFormat: 'sse' | 'ndjson';
  /**
   * Makes the upstream report usage in a stream. Returns true when it had to change the
   * request, i.e. the client did not ask for usage and must not see it.
   */
  requestStreamUsage?(req: DialectRequest, route: DialectRoute): boolean;
  /**
   * Undoes `requestStreamUsage`, for upstreams that reject the field it adds: the server
   * retries once without it (and then cannot hide or expect usage). Optional member.
   */
  withoutStreamUsage?(req: DialectRequest, route: DialectRoute): void;
  /**
   * Whether this request's stream ends with usage (OpenAI's only when `include_usage` was
   * asked, by the client or the proxy). Absent: every stream of the dialect reports it.
   */
  streamReportsUsage?(req: DialectRequest, route: DialectRoute): boolean;
  /**
   * For a stream where usage was requested on the client's behalf: the event as the client
   * should see it (the same object when unchanged), or null to drop it. Call it for EVERY
   * event of such a stream, not only those `usageHint` selects: OpenAI also adds
   * `"usage":null` to each ordinary chunk, which this removes with a cheap string edit
   * (JSON is parsed only for the one chunk that carries usage).
   */
  hideInjectedUsage?(event: StreamEvent): StreamEvent | null;
  /**
   * Optional fast path of `hideInjectedUsage` on one raw block from the event framer: the
   * block to send (the same Buffer when unchanged), null to drop it, or undefined when the
   * event itself must be looked at (then `hideInjectedUsage` decides). Works on bytes,
   * without decoding or re-serialising the ordinary chunks. Use `hideInjectedUsageBlock`
   * from usage/event-framer.ts, which tries this first.
   */
  hideInjectedUsageInBlock?(block: Buffer): Buffer | null | undefined;
  /** Usage, model and errors from a complete JSON response body. */
  usageFromJson(body: unknown, route: DialectRoute): Observation | undefined;
  /**
   * A cheap test on the raw event: false means it carries no usage, model or error, so it
   * need not be parsed. Keeps JSON.parse off most chunks of a stream.
   */
  usageHint(event: StreamEvent): boolean;
  usageFromEvent(event: StreamEvent, route: DialectRoute): Observation | undefined;
  /** The generated text in an event, for estimating output when a stream never reports usage. */
  textFromEvent(event: StreamEvent, route: DialectRoute): string;
  /**
   * The bytes of a final event that ends a stream early, telling the client why. `usage` is
   * what the proxy meters for the stream so far; given, the closing events carry it where
   * the dialect's own stream would have reported usage, so a client (or a translator
   * rebuilding the stream for one) reads the figures that are booked, not zeros.
   */
  cutoffEvent?(route: DialectRoute, reason: string, usage?: Usage): string;
}
