/**
 * An OpenAI `chat.completion.chunk` stream as an Anthropic Messages event stream.
 *
 * The first chunk opens `message_start` (input tokens when that chunk carries usage, else
 * 0). Content opens a text block and each new tool-call index a `tool_use` block, closing
 * the block before it, so block indexes rise one at a time as Anthropic's do. OpenAI sends
 * usage in its own chunk AFTER the finish reason, so the finish closes the last block and
 * `message_delta` waits for that usage (or for `[DONE]` / the end of the stream, with 0
 * output tokens when the upstream never sent usage). Reasoning text some compatible servers
 * add (`reasoning_content`) is dropped, as in the non-stream answer.
 */
import type { StreamEvent } from '../dialects/dialect.js';
import { isRecord, parseJson, record, text } from '../dialects/json-value.js';
import { anthropicErrorFromOpenai } from './error-bodies.js';
import { stopReasonOf } from './stop-reasons.js';
import type { StreamTranslator } from './translator.js';
import { anthropicUsageFromOpenai } from './usage-shapes.js';

type Json = Record<string, unknown>;

export interface MessageStreamOptions {
  /** The upstream model, until the first chunk names the one that served. */
  readonly model: string;
}

/** One Anthropic SSE event; the event name is the payload's `type`. */
function namedEvent(payload: Json & { type: string }): string {
  return `event: ${payload.type}\ndata: ${JSON.stringify(payload)}\n\n`;
}

/** What a stream cut short before its finish reason tells the client. */
const CUT_SHORT = namedEvent({
  type: 'error',
  error: { type: 'api_error', message: 'the upstream stream ended before the message was complete' },
});

type OpenBlock = { readonly kind: 'text' | 'tool'; readonly index: number };

/** A StreamTranslator from OpenAI chunks to Anthropic events. */
export function createMessageStream(options: MessageStreamOptions): StreamTranslator {
  let id = 'msg_openai';
  let model = options.model;
  let started = false;
  let done = false;
  let open: OpenBlock | undefined;
  let nextIndex = 0;
  let stopReason: string | null = null;
  let usage: Json | undefined;
  /** The model refused (OpenAI `delta.refusal`): its text is sent as text, the stop reason says refusal. */
  let refused = false;
  /** Anthropic block index by OpenAI tool-call index. */
  const toolBlocks = new Map<number, number>();

  function start(): string {
    if (started) return '';
    started = true;
    const input = usage ? anthropicUsageFromOpenai(usage).input_tokens : 0;
    const message = {
      id,
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: input, output_tokens: 0 },
    };
    return namedEvent({ type: 'message_start', message });
  }

  function closeBlock(): string {
    if (!open) return '';
    const index = open.index;
    open = undefined;
    return namedEvent({ type: 'content_block_stop', index });
  }

  function openBlock(kind: OpenBlock['kind'], block: Json): string {
    const out = closeBlock();
    open = { kind, index: nextIndex++ };
    return out + namedEvent({ type: 'content_block_start', index: open.index, content_block: block });
  }

  function textDelta(value: string): string {
    const out = open?.kind === 'text' ? '' : openBlock('text', { type: 'text', text: '' });
    const index = (open as OpenBlock).index;
    return (
      out + namedEvent({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: value } })
    );
  }

  function toolDelta(call: Json): string {
    const key = typeof call.index === 'number' ? call.index : 0;
    const fn = record(call.function);
    let out = '';
    let index = toolBlocks.get(key);
    if (index === undefined) {
      const block = {
        type: 'tool_use',
        id: text(call.id) ?? `call_${key}`,
        name: text(fn?.name) ?? '',
        input: {},
      };
      out += openBlock('tool', block);
      index = (open as OpenBlock).index;
      toolBlocks.set(key, index);
    }
    const args = fn?.arguments;
    if (typeof args !== 'string' || args === '') return out;
    return (
      out +
      namedEvent({
        type: 'content_block_delta',
        index,
        delta: { type: 'input_json_delta', partial_json: args },
      })
    );
  }

  /** `message_delta` and `message_stop`, once. */
  function finish(): string {
    if (done || stopReason === null) return '';
    done = true;
    const counts = usage ? anthropicUsageFromOpenai(usage) : { output_tokens: 0 };
    return (
      start() +
      closeBlock() +
      namedEvent({
        type: 'message_delta',
        delta: { stop_reason: stopReason, stop_sequence: null },
        usage: counts,
      }) +
      namedEvent({ type: 'message_stop' })
    );
  }

  function choiceEvents(choice: Json): string {
    const delta = record(choice.delta);
    let out = '';
    if (typeof delta?.content === 'string' && delta.content !== '') out += textDelta(delta.content);
    if (typeof delta?.refusal === 'string' && delta.refusal !== '') {
      refused = true;
      out += textDelta(delta.refusal);
    }
    for (const call of Array.isArray(delta?.tool_calls) ? delta.tool_calls : []) {
      if (isRecord(call)) out += toolDelta(call);
    }
    const reason = stopReasonOf(choice.finish_reason);
    if (reason !== null && stopReason === null) {
      stopReason = refused ? 'refusal' : reason;
      out += closeBlock();
    }
    return out;
  }

  return {
    push(event: StreamEvent) {
      if (done) return '';
      if (event.data.trim() === '[DONE]') return finish();
      const chunk = record(parseJson(event.data));
      if (!chunk) return '';
      if (chunk.error !== undefined) {
        done = true;
        return namedEvent(anthropicErrorFromOpenai(undefined, chunk) as Json & { type: 'error' });
      }
      id = started ? id : (text(chunk.id) ?? id);
      model = started ? model : (text(chunk.model) ?? model);
      if (isRecord(chunk.usage)) usage = chunk.usage;
      let out = start();
      const choices = Array.isArray(chunk.choices) ? chunk.choices : [];
      const choice = choices.find((c) => isRecord(c) && (c.index ?? 0) === 0);
      if (isRecord(choice)) out += choiceEvents(choice);
      return usage && stopReason !== null ? out + finish() : out;
    },
    end() {
      if (done) return '';
      if (stopReason !== null) return finish();
      done = true;
      return CUT_SHORT;
    },
  };
}
