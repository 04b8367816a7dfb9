/**
 * OpenAI client, Ollama native upstream: chat.completions -> `POST /api/chat` (one JSON
 * object, or NDJSON when streaming, the last line `done: true` with the counts) and
 * embeddings -> `POST /api/embed`. Request mapping lives in openai-ollama-request.ts.
 *
 * Usage is the one the meter reads (`ollamaUsage`): prompt_eval_count -> prompt_tokens,
 * eval_count -> completion_tokens. Ollama leaves prompt_eval_count out when the whole
 * prompt came from its cache; the client then sees 0 prompt tokens, as nothing was evaluated.
 * `message.thinking` is not shown: Chat Completions has no field for it.
 */
import type { JsonBody, StreamEvent } from '../dialects/dialect.js';
import { parseJson, record, text, type JsonRecord } from '../dialects/json-value.js';
import { ollamaUsage } from '../dialects/ollama.js';
import { ollamaChatBody, ollamaEmbedBody } from './openai-ollama-request.js';
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

function finishReasonOf(doneReason: unknown, calledTools: boolean): FinishReason {
  if (doneReason === 'length') return 'length';
  return calledTools ? 'tool_calls' : 'stop';
}

function usageOf(body: JsonRecord, generates: boolean): OpenAiUsage | undefined {
  const usage = ollamaUsage(body, generates);
  if (!usage) return undefined;
  return openAiUsage({ prompt: usage.input ?? 0, completion: usage.output ?? 0 });
}

/** Ollama's tool calls (arguments as an object) as OpenAI's (arguments as a JSON string). */
function toolCalls(message: JsonRecord | undefined, ids: IdSource): OpenAiToolCall[] {
  const calls = message?.tool_calls;
  if (!Array.isArray(calls)) return [];
  return calls.flatMap((value): OpenAiToolCall[] => {
    const call = record(value);
    const fn = record(call?.function);
    if (!fn || typeof fn.name !== 'string') return [];
    const args = typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments ?? {});
    const id = text(call?.id) ?? ids.toolCallId();
    return [{ id, type: 'function', function: { name: fn.name, arguments: args } }];
  });
}

function ollamaError(status: number, body: unknown): Record<string, unknown> {
  return openAiError(status, upstreamErrorMessage(status, body, 'Ollama'), null);
}

/** An embedding vector, or undefined when it is not an array of numbers. */
function vector(value: unknown): number[] | undefined {
  return Array.isArray(value) && value.every((x) => typeof x === 'number') ? value : undefined;
}

function embeddingsResponse(body: JsonRecord, model: string): Record<string, unknown> {
  const embeddings = Array.isArray(body.embeddings) ? body.embeddings : [];
  const usage = ollamaUsage(body, false);
  const prompt = usage?.input ?? 0;
  return {
    object: 'list',
    data: embeddings.map((e, index) => ({ object: 'embedding', index, embedding: vector(e) ?? [] })),
    model: text(body.model) ?? model,
    usage: { prompt_tokens: prompt, total_tokens: prompt },
  };
}

class OllamaStream implements StreamTranslator {
  private writer: ChunkWriter | undefined;
  private toolCalls = 0;
  private finished = false;
  /** An error line was sent on: the stream ends there, with no [DONE]. */
  private failed = false;
  private usage: OpenAiUsage | undefined;

  constructor(
    private readonly model: string,
    private readonly includeUsage: boolean,
    private readonly ids: IdSource,
  ) {}

  push(event: StreamEvent): string {
    if (this.failed) return '';
    const line = record(parseJson(event.data));
    if (!line) return '';
    if (line.error !== undefined && line.error !== null) {
      this.failed = true;
      return sseData(ollamaError(500, line));
    }
    if (this.finished) return '';
    let out = '';
    if (!this.writer) {
      this.writer = new ChunkWriter(this.ids.completionId(), this.ids.now(), text(line.model) ?? this.model);
      out += this.writer.choice(0, { role: 'assistant', content: '' });
    }
    const message = record(line.message);
    const content = message?.content;
    if (typeof content === 'string' && content !== '') out += this.writer.choice(0, { content });
    const calls = toolCalls(message, this.ids);
    if (calls.length > 0)
      out += this.writer.choice(0, {
        tool_calls: calls.map((call) => ({ index: this.toolCalls++, ...call })),
      });
    if (line.done === true) {
      this.finished = true;
      this.usage = usageOf(line, true);
      out += this.writer.choice(0, {}, finishReasonOf(line.done_reason, this.toolCalls > 0));
    }
    return out;
  }

  end(): string {
    if (this.failed) return '';
    // The last line says done:true: a stream that ended without it was cut.
    if (!this.finished) return SSE_CUT_SHORT;
    const usage = this.includeUsage && this.usage && this.writer ? this.writer.usage(this.usage) : '';
    return usage + SSE_DONE;
  }
}

/** The OpenAI-to-Ollama translator, with ids from `ids` (random by default). */
export function createOpenAiToOllama(ids: IdSource = RANDOM_IDS): Translator {
  return {
    client: 'openai',
    upstream: 'ollama',

    request(endpoint: string, body: JsonBody, options: TranslateOptions): UpstreamRequest {
      if (endpoint === 'embeddings')
        return { path: '/api/embed', query: '', body: ollamaEmbedBody(body, options.model), stream: false };
      if (endpoint !== 'chat.completions')
        throw new TranslationError(`endpoint ${endpoint} cannot be translated for Ollama`);
      const stream = body.stream === true;
      return { path: '/api/chat', query: '', body: ollamaChatBody(body, options.model, stream), stream };
    },

    response(body: unknown, options: TranslateOptions): unknown {
      const response = record(body) ?? {};
      if (Array.isArray(response.embeddings)) return embeddingsResponse(response, options.model);
      const message = record(response.message);
      const calls = toolCalls(message, ids);
      const content = typeof message?.content === 'string' ? message.content : '';
      return chatCompletion(
        ids.completionId(),
        ids.now(),
        text(response.model) ?? options.model,
        [
          {
            index: 0,
            text: content === '' && calls.length > 0 ? null : content,
            toolCalls: calls,
            finishReason: finishReasonOf(response.done_reason, calls.length > 0),
          },
        ],
        usageOf(response, true),
      );
    },

    error: ollamaError,

    stream(options): StreamTranslator {
      return new OllamaStream(options.model, options.includeUsage, ids);
    },
  };
}

/** OpenAI Chat Completions and Embeddings clients in front of Ollama's native API. */
export const openaiToOllama: Translator = createOpenAiToOllama();
