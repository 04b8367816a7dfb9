/**
 * OpenAI Chat Completions client, Gemini Developer API upstream: `chat.completions` becomes
 * `POST /v1beta/models/{model}:generateContent`, or `:streamGenerateContent?alt=sse` for a
 * stream, whose events are each a whole GenerateContentResponse. Request mapping lives in
 * openai-gemini-request.ts; this file turns Gemini's answers back into OpenAI's.
 *
 * Usage is the one the meter reads (`geminiUsage`): prompt = promptTokenCount (cached tokens
 * included) + toolUsePromptTokenCount, completion = candidates + thoughts, reasoning =
 * thoughts. In a stream Gemini repeats running totals, so the LAST one is reported.
 *
 * Embeddings are refused: the Developer API's embedContent/batchEmbedContents report no
 * token counts, and an OpenAI embeddings answer without true usage would be a guess.
 *
 * Thought parts (`thought: true`) are not shown: Chat Completions has no field for them, and
 * their tokens are still counted as reasoning tokens.
 */
import type { JsonBody, StreamEvent } from '../dialects/dialect.js';
import { geminiUsage } from '../dialects/gemini.js';
import { isRecord, parseJson, record, text, type JsonRecord } from '../dialects/json-value.js';
import { THOUGHT_SEPARATOR, geminiChatBody } from './openai-gemini-request.js';
import {
  ChunkWriter,
  RANDOM_IDS,
  SSE_CUT_SHORT,
  SSE_DONE,
  chatCompletion,
  openAiError,
  openAiUsage,
  sseData,
  upstreamErrorMessage,
  type ChoiceContent,
  type FinishReason,
  type IdSource,
  type OpenAiToolCall,
  type OpenAiUsage,
} from './openai-chat-response.js';
import {
  TranslationError,
  type StreamTranslator,
  type TranslateOptions,
  type Translator,
  type UpstreamRequest,
} from './translator.js';

/** Finish reasons that mean Gemini's filters stopped the answer. */
const FILTERED = new Set([
  'SAFETY',
  'RECITATION',
  'BLOCKLIST',
  'PROHIBITED_CONTENT',
  'SPII',
  'IMAGE_SAFETY',
  'IMAGE_PROHIBITED_CONTENT',
  'IMAGE_RECITATION',
]);

/** OpenAI's finish_reason for a Gemini finishReason; a turn that called tools says so. */
export function finishReasonOf(reason: unknown, calledTools: boolean): FinishReason {
  if (reason === 'MAX_TOKENS') return 'length';
  if (typeof reason === 'string' && FILTERED.has(reason)) return 'content_filter';
  return calledTools ? 'tool_calls' : 'stop';
}

/** The upstream path of a model: `models/{id}` (a `models/` prefix is accepted) or a tuned model. */
function modelPath(model: string): string {
  if (model.startsWith('tunedModels/')) return `tunedModels/${encodeURIComponent(model.slice(12))}`;
  const bare = model.startsWith('models/') ? model.slice('models/'.length) : model;
  return `models/${encodeURIComponent(bare)}`;
}

function usageOf(metadata: unknown): OpenAiUsage | undefined {
  const usage = geminiUsage(metadata);
  if (!usage) return undefined;
  return openAiUsage({
    prompt: usage.input ?? 0,
    completion: usage.output ?? 0,
    cached: usage.cachedInput,
    reasoning: usage.reasoning,
  });
}

/** The text and tool calls of one candidate's parts (thought parts left out). */
function readParts(content: unknown, ids: IdSource): { text: string[]; toolCalls: OpenAiToolCall[] } {
  const parts = record(content)?.parts;
  const out = { text: [] as string[], toolCalls: [] as OpenAiToolCall[] };
  if (!Array.isArray(parts)) return out;
  for (const value of parts) {
    const part = record(value);
    if (!part || part.thought === true) continue;
    if (typeof part.text === 'string') out.text.push(part.text);
    const call = record(part.functionCall);
    if (call && typeof call.name === 'string') out.toolCalls.push(toolCall(call, part.thoughtSignature, ids));
  }
  return out;
}

function toolCall(call: JsonRecord, signature: unknown, ids: IdSource): OpenAiToolCall {
  const base = text(call.id) ?? ids.toolCallId();
  const id = typeof signature === 'string' && signature !== '' ? base + THOUGHT_SEPARATOR + signature : base;
  const args = isRecord(call.args) ? call.args : {};
  return { id, type: 'function', function: { name: call.name as string, arguments: JSON.stringify(args) } };
}

/** True when Gemini blocked the prompt itself and sent no candidates. */
function promptBlocked(response: JsonRecord): boolean {
  const candidates = response.candidates;
  return (
    (!Array.isArray(candidates) || candidates.length === 0) &&
    typeof record(response.promptFeedback)?.blockReason === 'string'
  );
}

function candidateIndex(candidate: JsonRecord, position: number): number {
  return typeof candidate.index === 'number' ? candidate.index : position;
}

function choices(response: JsonRecord, ids: IdSource): ChoiceContent[] {
  if (promptBlocked(response)) return [{ index: 0, text: '', toolCalls: [], finishReason: 'content_filter' }];
  const candidates = Array.isArray(response.candidates) ? response.candidates : [];
  return candidates.flatMap((value, position): ChoiceContent[] => {
    const candidate = record(value);
    if (!candidate) return [];
    const read = readParts(candidate.content, ids);
    const calledTools = read.toolCalls.length > 0;
    return [
      {
        index: candidateIndex(candidate, position),
        text: read.text.length === 0 && calledTools ? null : read.text.join(''),
        toolCalls: read.toolCalls,
        finishReason: finishReasonOf(candidate.finishReason, calledTools),
      },
    ];
  });
}

/** The OpenAI error body for a Gemini error (`{error:{code, message, status}}`) or any other body. */
function geminiError(status: number, body: unknown): Record<string, unknown> {
  const inner = Array.isArray(body) ? body[0] : body;
  const code = text(record(record(inner)?.error)?.status) ?? null;
  return openAiError(status, upstreamErrorMessage(status, inner, 'Gemini'), code);
}

/** The HTTP status a Gemini error object carries, for one that arrives inside a stream. */
function statusOf(error: unknown): number {
  const code = record(error)?.code;
  return typeof code === 'number' && code >= 400 && code < 600 ? code : 500;
}

/** State of one candidate while it streams. */
interface StreamedChoice {
  toolCalls: number;
  finished: boolean;
}

class GeminiStream implements StreamTranslator {
  private writer: ChunkWriter | undefined;
  private readonly seen = new Map<number, StreamedChoice>();
  private usage: OpenAiUsage | undefined;
  /** An error event was sent: the stream ends there, with no [DONE]. */
  private failed = false;

  constructor(
    private readonly model: string,
    private readonly includeUsage: boolean,
    private readonly ids: IdSource,
  ) {}

  push(event: StreamEvent): string {
    if (this.failed) return '';
    const response = record(parseJson(event.data));
    if (!response) return '';
    if (response.error !== undefined && response.error !== null) {
      this.failed = true;
      return sseData(geminiError(statusOf(response.error), response));
    }
    this.writer ??= new ChunkWriter(
      this.ids.completionId(),
      this.ids.now(),
      text(response.modelVersion) ?? this.model,
    );
    this.usage = usageOf(response.usageMetadata) ?? this.usage;
    if (promptBlocked(response)) return this.finish(this.writer, 0, 'content_filter');
    const candidates = Array.isArray(response.candidates) ? response.candidates : [];
    return candidates.map((c, i) => this.candidate(this.writer as ChunkWriter, record(c), i)).join('');
  }

  end(): string {
    if (this.failed) return '';
    // Every candidate ends with its finishReason: a stream without one for each was cut.
    if (this.seen.size === 0 || [...this.seen.values()].some((state) => !state.finished))
      return SSE_CUT_SHORT;
    const usage = this.includeUsage && this.usage && this.writer ? this.writer.usage(this.usage) : '';
    return usage + SSE_DONE;
  }

  private choice(writer: ChunkWriter, index: number): { state: StreamedChoice; out: string } {
    const known = this.seen.get(index);
    if (known) return { state: known, out: '' };
    const state = { toolCalls: 0, finished: false };
    this.seen.set(index, state);
    return { state, out: writer.choice(index, { role: 'assistant', content: '' }) };
  }

  private candidate(writer: ChunkWriter, candidate: JsonRecord | undefined, position: number): string {
    if (!candidate) return '';
    const index = candidateIndex(candidate, position);
    const { state, out: opening } = this.choice(writer, index);
    if (state.finished) return opening;
    let out = opening;
    const read = readParts(candidate.content, this.ids);
    const content = read.text.join('');
    if (content !== '') out += writer.choice(index, { content });
    if (read.toolCalls.length > 0)
      out += writer.choice(index, {
        tool_calls: read.toolCalls.map((call) => ({ index: state.toolCalls++, ...call })),
      });
    if (typeof candidate.finishReason === 'string' && candidate.finishReason !== '') {
      state.finished = true;
      out += writer.choice(index, {}, finishReasonOf(candidate.finishReason, state.toolCalls > 0));
    }
    return out;
  }

  private finish(writer: ChunkWriter, index: number, reason: FinishReason): string {
    const { state, out } = this.choice(writer, index);
    if (state.finished) return out;
    state.finished = true;
    return out + writer.choice(index, {}, reason);
  }
}

/** The OpenAI-to-Gemini translator, with ids from `ids` (random by default). */
export function createOpenAiToGemini(ids: IdSource = RANDOM_IDS): Translator {
  return {
    client: 'openai',
    upstream: 'gemini',

    request(endpoint: string, body: JsonBody, options: TranslateOptions): UpstreamRequest {
      if (endpoint === 'embeddings')
        throw new TranslationError(
          'embeddings cannot be translated for Gemini: its embedding API reports no token usage',
        );
      if (endpoint !== 'chat.completions')
        throw new TranslationError(`endpoint ${endpoint} cannot be translated for Gemini`);
      const stream = body.stream === true;
      const method = stream ? 'streamGenerateContent' : 'generateContent';
      return {
        path: `/v1beta/${modelPath(options.model)}:${method}`,
        query: stream ? 'alt=sse' : '',
        body: geminiChatBody(body),
        stream,
      };
    },

    response(body: unknown, options: TranslateOptions): unknown {
      const response = record(body) ?? {};
      return chatCompletion(
        ids.completionId(),
        ids.now(),
        text(response.modelVersion) ?? options.model,
        choices(response, ids),
        usageOf(response.usageMetadata),
      );
    },

    error: geminiError,

    stream(options): StreamTranslator {
      return new GeminiStream(options.model, options.includeUsage, ids);
    },
  };
}

/** OpenAI Chat Completions clients in front of the Gemini Developer API. */
export const openaiToGemini: Translator = createOpenAiToGemini();
