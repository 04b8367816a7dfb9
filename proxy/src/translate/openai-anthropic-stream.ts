/**
 * An Anthropic Messages event stream as an OpenAI `chat.completion.chunk` stream.
 *
 * `message_start` opens with the `role:"assistant"` chunk; text deltas become
 * `delta.content`; each `tool_use` block becomes one tool call, numbered in order of
 * appearance, whose id and name come first and whose `input_json_delta` fragments follow as
 * `arguments`; `message_delta` brings the finish reason. Usage is cumulative in Anthropic's
 * stream, so the latest non-null value of each counter wins, and is sent in OpenAI's own
 * place: one chunk with `choices: []` just before `[DONE]`, only when the client asked.
 * Thinking blocks are dropped: Chat Completions has no field for reasoning text (OpenAI's
 * own models never return it), while their tokens stay counted in `completion_tokens`.
 */
import { parseJson, record, text } from '../dialects/json-value.js';
import type { StreamEvent } from '../dialects/dialect.js';
import { openaiErrorFromAnthropic } from './error-bodies.js';
import { finishReasonOf } from './stop-reasons.js';
import type { StreamTranslator } from './translator.js';
import { openaiUsageFromAnthropic } from './usage-shapes.js';

type Json = Record<string, unknown>;

export interface ChunkStreamOptions {
  /** The upstream model, until `message_start` names the one that served. */
  readonly model: string;
  readonly includeUsage: boolean;
  /** `created` for every chunk, in seconds. */
  readonly created: number;
}

/** One OpenAI SSE event. */
function dataEvent(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

/** What a stream cut short before its stop reason tells the client. */
const CUT_SHORT = {
  type: 'error',
  error: { type: 'api_error', message: 'the upstream stream ended before the message was complete' },
};

/** A StreamTranslator from Anthropic events to OpenAI chunks. */
export function createChunkStream(options: ChunkStreamOptions): StreamTranslator {
  let id = 'chatcmpl-anthropic';
  let model = options.model;
  let started = false;
  let finished = false;
  let failed = false;
  const usage: Json = {};
  /** OpenAI tool-call index by Anthropic content block index. */
  const toolIndex = new Map<number, number>();
  /** The tool calls (OpenAI index) whose arguments have had a fragment so far. */
  const argued = new Set<number>();

  function chunk(delta: Json, finishReason: string | null = null): string {
    const choice = { index: 0, delta, logprobs: null, finish_reason: finishReason };
    return dataEvent({
      id,
      object: 'chat.completion.chunk',
      created: options.created,
      model,
      choices: [choice],
    });
  }

  /** The role chunk, once, before anything else (even if `message_start` went missing). */
  function start(): string {
    if (started) return '';
    started = true;
    return chunk({ role: 'assistant', content: '' });
  }

  function mergeUsage(value: unknown): void {
    for (const [key, count] of Object.entries(record(value) ?? {})) {
      if (count !== null && count !== undefined) usage[key] = count;
    }
  }

  function blockStart(event: Json): string {
    const block = record(event.content_block);
    if (block?.type === 'text') {
      const initial = text(block.text);
      return start() + (initial ? chunk({ content: initial }) : '');
    }
    if (block?.type !== 'tool_use' || typeof event.index !== 'number') return '';
    const index = toolIndex.size;
    toolIndex.set(event.index, index);
    const call = {
      index,
      id: text(block.id) ?? '',
      type: 'function',
      function: { name: text(block.name) ?? '', arguments: '' },
    };
    return start() + chunk({ tool_calls: [call] });
  }

  function blockDelta(event: Json): string {
    const delta = record(event.delta);
    if (delta?.type === 'text_delta') {
      return typeof delta.text === 'string' && delta.text !== ''
        ? start() + chunk({ content: delta.text })
        : '';
    }
    if (delta?.type !== 'input_json_delta' || typeof event.index !== 'number') return '';
    const index = toolIndex.get(event.index);
    const fragment = delta.partial_json;
    if (index === undefined || typeof fragment !== 'string' || fragment === '') return '';
    argued.add(index);
    return start() + chunk({ tool_calls: [{ index, function: { arguments: fragment } }] });
  }

  /**
   * A tool call without arguments gets `{}` as OpenAI itself sends it: Anthropic streams no
   * fragment for an empty input, and `""` is no JSON, which clients parsing the arguments
   * (the openai SDK's `runTools`) fail on.
   */
  function blockStop(event: Json): string {
    const index = typeof event.index === 'number' ? toolIndex.get(event.index) : undefined;
    if (index === undefined || argued.has(index)) return '';
    argued.add(index);
    return start() + chunk({ tool_calls: [{ index, function: { arguments: '{}' } }] });
  }

  function messageDelta(event: Json): string {
    mergeUsage(event.usage);
    const reason = finishReasonOf(record(event.delta)?.stop_reason);
    if (reason === null || finished) return '';
    finished = true;
    return start() + chunk({}, reason);
  }

  return {
    push(event: StreamEvent) {
      if (failed) return '';
      const obj = record(parseJson(event.data));
      if (!obj) return '';
      switch (text(obj.type) ?? event.event) {
        case 'message_start': {
          const message = record(obj.message);
          id = text(message?.id) ?? id;
          model = text(message?.model) ?? model;
          mergeUsage(message?.usage);
          return start();
        }
        case 'content_block_start':
          return blockStart(obj);
        case 'content_block_delta':
          return blockDelta(obj);
        case 'content_block_stop':
          return blockStop(obj);
        case 'message_delta':
          return messageDelta(obj);
        case 'error':
          failed = true;
          return dataEvent(openaiErrorFromAnthropic(undefined, obj));
        default:
          // ping, message_stop and event types added later carry nothing to send.
          return '';
      }
    },
    end() {
      if (failed) return '';
      if (!finished) {
        failed = true;
        return dataEvent(openaiErrorFromAnthropic(undefined, CUT_SHORT));
      }
      const usageChunk = options.includeUsage
        ? dataEvent({
            id,
            object: 'chat.completion.chunk',
            created: options.created,
            model,
            choices: [],
            usage: openaiUsageFromAnthropic(usage),
          })
        : '';
      return usageChunk + 'data: [DONE]\n\n';
    },
  };
}
