/**
 * Writing OpenAI Chat Completions answers for a translator: the `chat.completion` object,
 * `chat.completion.chunk` SSE events, usage and the error shape, exactly as openai-node
 * reads them. Ids and the clock come from an IdSource so tests can pin them; translators
 * take one and default to random ids and the real clock.
 */
import { randomBytes } from 'node:crypto';
import { errorMessage, record, text } from '../dialects/json-value.js';

/** Where a translator gets ids and the time. */
export interface IdSource {
  /** A completion id, `chatcmpl-...`. */
  completionId(): string;
  /** A tool call id, `call_...`. */
  toolCallId(): string;
  /** Seconds since the epoch. */
  now(): number;
}

function randomId(): string {
  return randomBytes(12).toString('hex');
}

/** Random ids and the real clock. */
export const RANDOM_IDS: IdSource = {
  completionId: () => `chatcmpl-${randomId()}`,
  toolCallId: () => `call_${randomId()}`,
  now: () => Math.floor(Date.now() / 1000),
};

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';

export interface OpenAiToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens: number };
  completion_tokens_details?: { reasoning_tokens: number };
}

/** Token counts as an upstream reports them; absent details stay absent. */
export interface UsageCounts {
  readonly prompt: number;
  readonly completion: number;
  readonly cached?: number;
  readonly reasoning?: number;
}

export function openAiUsage(counts: UsageCounts): OpenAiUsage {
  const usage: OpenAiUsage = {
    prompt_tokens: counts.prompt,
    completion_tokens: counts.completion,
    total_tokens: counts.prompt + counts.completion,
  };
  if (counts.cached !== undefined) usage.prompt_tokens_details = { cached_tokens: counts.cached };
  if (counts.reasoning !== undefined)
    usage.completion_tokens_details = { reasoning_tokens: counts.reasoning };
  return usage;
}

/** One finished choice: its text (null when it only called tools) and tool calls. */
export interface ChoiceContent {
  readonly index: number;
  readonly text: string | null;
  readonly toolCalls: readonly OpenAiToolCall[];
  readonly finishReason: FinishReason;
}

/** A whole `chat.completion` object. */
export function chatCompletion(
  id: string,
  created: number,
  model: string,
  choices: readonly ChoiceContent[],
  usage: OpenAiUsage | undefined,
): Record<string, unknown> {
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    choices: choices.map((choice) => ({
      index: choice.index,
      message: {
        role: 'assistant',
        content: choice.text,
        refusal: null,
        ...(choice.toolCalls.length > 0 ? { tool_calls: choice.toolCalls } : {}),
      },
      logprobs: null,
      finish_reason: choice.finishReason,
    })),
    ...(usage ? { usage } : {}),
  };
}

/** The delta of one streamed chunk. */
export interface ChunkDelta {
  role?: 'assistant';
  content?: string;
  tool_calls?: (OpenAiToolCall & { index: number })[];
}

/** Builds the `chat.completion.chunk` events of one stream, all with the same id and model. */
export class ChunkWriter {
  constructor(
    private readonly id: string,
    private readonly created: number,
    private readonly model: string,
  ) {}

  /** One chunk for one choice. */
  choice(index: number, delta: ChunkDelta, finishReason: FinishReason | null = null): string {
    return this.event([{ index, delta, logprobs: null, finish_reason: finishReason }]);
  }

  /** The usage-only chunk (empty `choices`) that `include_usage` asks for. */
  usage(usage: OpenAiUsage): string {
    return sseData({ ...this.base(), choices: [], usage });
  }

  private event(choices: unknown[]): string {
    return sseData({ ...this.base(), choices });
  }

  private base(): Record<string, unknown> {
    return { id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model };
  }
}

/** One SSE data event holding a JSON value. */
export function sseData(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

/** The terminator openai-node waits for. */
export const SSE_DONE = 'data: [DONE]\n\n';

/**
 * What an OpenAI client gets instead of `[DONE]` when the upstream's stream ended before its
 * finish reason: an error its SDK raises, not an answer that looks whole but was cut.
 */
export const SSE_CUT_SHORT = sseData({
  error: {
    message: 'the upstream stream ended before the message was complete',
    type: 'server_error',
    param: null,
    code: null,
  },
});

const ERROR_TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  409: 'invalid_request_error',
  413: 'invalid_request_error',
  422: 'invalid_request_error',
  429: 'rate_limit_error',
};

/** OpenAI's error `type` for an HTTP status. */
export function errorType(status: number): string {
  const known = ERROR_TYPES[status];
  if (known) return known;
  return status >= 400 && status < 500 ? 'invalid_request_error' : 'api_error';
}

/** The OpenAI error body for a message. */
export function openAiError(status: number, message: string, code: string | null): Record<string, unknown> {
  return { error: { message, type: errorType(status), param: null, code } };
}

/** The longest upstream text we quote in an error message. */
const MAX_QUOTED = 1000;

/**
 * A readable message from any upstream error body: the `message` of an error object, an
 * error string, or (for a non-JSON body) its trimmed text; a fallback naming the status.
 */
export function upstreamErrorMessage(status: number, body: unknown, upstream: string): string {
  const obj = record(body);
  const inner = obj ? (obj.error ?? obj) : body;
  const found = typeof inner === 'string' ? text(inner.trim()) : obj ? errorMessage(inner) : undefined;
  const message = found ?? `${upstream} returned HTTP ${status}`;
  return message.length > MAX_QUOTED ? `${message.slice(0, MAX_QUOTED)}…` : message;
}
