/**
 * Why a turn ended, between Anthropic's `stop_reason` and OpenAI's `finish_reason`. The two
 * vocabularies do not line up one to one: OpenAI cannot say whether a stop sequence matched,
 * and Anthropic's `pause_turn` (a server tool paused a long turn) has no OpenAI word, so it
 * reads as an ordinary stop.
 */

/** OpenAI's finish_reason for an Anthropic stop_reason; null while unknown. */
export function finishReasonOf(stopReason: unknown): string | null {
  switch (stopReason) {
    case 'end_turn':
    case 'stop_sequence':
    case 'pause_turn':
      return 'stop';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return typeof stopReason === 'string' ? 'stop' : null;
  }
}

/** Anthropic's stop_reason for an OpenAI finish_reason; null while unknown. */
export function stopReasonOf(finishReason: unknown): string | null {
  switch (finishReason) {
    case 'stop':
      return 'end_turn';
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
    case 'function_call':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    default:
      return typeof finishReason === 'string' ? 'end_turn' : null;
  }
}
