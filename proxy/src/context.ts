/**
 * The one object every stage shares for a request: who is calling, what they asked for,
 * what the plan changed, what the upstream answered and what it cost. Stages communicate
 * only through it.
 */
import type { EventFramer } from './usage/event-framer.js';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { PlanConfig, Price, TenantConfig } from './config/schema.js';
import type { Dialect, DialectRequest, DialectRoute } from './dialects/dialect.js';
import type { Translator } from './translate/translator.js';
import type { Runtime, Upstream } from './runtime.js';
import type { Reservation } from './store/store.js';
import type { RequestTrace } from './tracing/request-trace.js';
import type { Provenance, Usage } from './usage/usage.js';

/** A tenant as the request sees it: its config and its plan with overrides merged in. */
export interface ResolvedTenant {
  readonly id: string;
  readonly planName: string;
  readonly plan: PlanConfig;
  readonly config: TenantConfig;
}

/** How the exchange with the client ended. */
export type Outcome = 'completed' | 'local_reply' | 'client_aborted' | 'upstream_error' | 'cut_off';

export interface RequestContext {
  readonly id: string;
  /** performance.now() at arrival. */
  readonly startedAt: number;
  /** Wall clock at arrival (ms since epoch); windows and hourly buckets use it. */
  readonly receivedAt: number;
  /**
   * The config (and what is derived from it): the one in force when the request arrived while
   * its body is read, then the one in force once it has been (Exchange.run), which the whole
   * pipeline uses. A reload never changes it after that. Identity, plan and limits are
   * decided after the body: a key revoked or a tenant suspended while a client was still
   * sending, however slowly, is refused.
   */
  runtime: Runtime;
  /**
   * True when the header hooks judged this request (its dialect, its tenant) under the
   * runtime still in force once the body is in: the request hooks need not judge it again.
   * False after a reload mid-upload, so the request is judged by the config now in force.
   */
  judgedBeforeBody: boolean;
  readonly clientHeaders: IncomingHttpHeaders;
  readonly remoteAddress: string;
  readonly secure: boolean;
  /** Method, path, query and parsed body; dialects rewrite it in place. */
  readonly request: DialectRequest;
  /** The raw request body as received (empty when it was over max_body_bytes). */
  rawBody: Buffer;
  /** Set by the server when the body passed max_body_bytes and was not read. */
  bodyTooLarge: boolean;
  /** Set when a stage changed `request.body`, so it must be serialised again. */
  bodyChanged: boolean;
  /** The query string sent upstream (credentials and the tenant parameter removed). */
  upstreamQuery: string;
  /** Headers to send upstream; built by the inject-identity stage. */
  upstreamHeaders: Record<string, string | string[]>;

  dialect: Dialect | undefined;
  route: DialectRoute | undefined;
  /**
   * The allow_paths pattern that let a request no dialect meters through: its
   * lanekeeper_unmetered_requests_total route, which the operator's patterns bound where
   * the path itself, a tenant's to choose under a wildcard, would not.
   */
  allowedBy: string | undefined;
  tenant: ResolvedTenant | undefined;
  /** sha256 hex of the API key that identified the tenant (lets the control plane track key use). */
  apiKeyHash: string | undefined;
  /** The model the client named (or undefined), and the one sent upstream. */
  modelRequested: string | undefined;
  model: string | undefined;
  /**
   * The ids an alias's fallback list still holds after `model`, in order: the next is tried
   * when the current one fails before the client got a byte. Becomes `model` when it serves.
   */
  modelFallbacks: readonly string[];
  /** The upstream that serves `model` (route-upstream picks it; a fallback may change it). */
  upstream: Upstream | undefined;
  /**
   * Set when the upstream speaks another API than the client: the request and the answer go
   * through it (translate/). Metering reads the upstream's own bytes before it does.
   */
  translator: Translator | undefined;
  /** The dialect that reads the upstream's bytes: the client's, or the upstream's own when translating. */
  upstreamDialect: Dialect | undefined;
  /** The upstream dialect's route for what was sent (the client's route when not translating). */
  upstreamRoute: DialectRoute | undefined;
  /** The model id the upstream reported using. */
  upstreamModel: string | undefined;
  price: Price | undefined;
  stream: boolean;
  /** Usage was requested on the client's behalf and must be hidden from it. */
  usageInjected: boolean;
  /**
   * The upstream stream cut into event blocks by meter-usage's tap, for the stages above it
   * that need the same blocks (hide-injected-usage): one framing pass per chunk, not one per
   * stage. `blocks` are those of `chunk` (with the held remainder when `end`).
   */
  streamFrames?: { framer: EventFramer; chunk: Buffer; end: boolean; blocks: readonly Buffer[] };
  estimatedPromptTokens: number;
  /** The output cap sent upstream (per choice), after plan and limit clamping. */
  maxOutputTokens: number | undefined;
  /** How many completions the upstream generates (n, best_of, candidateCount); each may use maxOutputTokens. */
  outputChoices: number;
  /** True when the client set its own output cap: then its worst case must fit a limit whole. */
  clientCappedOutput: boolean;

  reservation: Reservation | undefined;
  /** Rate-limit headers for the client, set by the limit stage. */
  limitHeaders: Record<string, string>;

  status: number | undefined;
  responseHeaders: OutgoingHttpHeaders | undefined;
  usage: Usage;
  provenance: Provenance | undefined;
  costUsd: number | undefined;
  outcome: Outcome | undefined;
  /** True when the upstream's response arrived whole (even if the client left before it did). */
  upstreamEnded: boolean;
  /**
   * True while the last call's request was written to the upstream and no answer has come:
   * the provider has the prompt (and bills it) whether or not an answer ever reaches us.
   */
  upstreamUnanswered: boolean;
  /** A stage sets this to end a stream early at an event boundary (mid-stream enforcement). */
  cutoff: string | undefined;
  errorCode: string | undefined;
  ttfbMs: number | undefined;
  durationMs: number | undefined;
  /** This request's spans; undefined when tracing is off (the only cost then is the check). */
  trace: RequestTrace | undefined;
}
