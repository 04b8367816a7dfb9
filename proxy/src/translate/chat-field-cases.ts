/**
 * The OpenAI chat fields the Gemini and Ollama translations share one typed table for
 * (openai-chat-request.ts CHAT_FIELDS), as test cases both translators' tests run: wrong
 * types each must refuse naming the field, and values the OpenAI API accepts.
 */

/** A function tool, valid in every case. */
export const TOOL = { type: 'function', function: { name: 'now', parameters: { type: 'object' } } };

/** A field (dotted when nested: its value is then the whole enclosing object) and a value of the wrong type. */
export const CHAT_FIELD_REFUSALS: [string, unknown][] = [
  ['model', 5],
  ['messages', 'hi'],
  ['messages', { role: 'user', content: 'hi' }],
  ['messages', ['hi']],
  ['tools', 'x'],
  ['tools', TOOL],
  ['tools', [null]],
  ['tool_choice', 'any'],
  ['tool_choice', 1],
  ['tool_choice', ['auto']],
  ['stop', 5],
  ['stop', { 0: 'END' }],
  ['stop', ['END', 5]],
  ['max_tokens', '100'],
  ['max_completion_tokens', 64.5],
  ['temperature', 'hot'],
  ['temperature', [0.2]],
  ['top_p', {}],
  ['seed', '7'],
  ['seed', 7.5],
  ['presence_penalty', true],
  ['frequency_penalty', '0.1'],
  ['n', '1'],
  ['n', 1.5],
  ['response_format', 'json_object'],
  ['response_format', [{ type: 'json_object' }]],
  ['stream', 'yes'],
  ['stream_options', true],
  ['stream_options.include_usage', { include_usage: 'yes' }],
  ['user', 42],
  ['safety_identifier', ['u']],
  ['prompt_cache_key', 7],
  ['metadata', 'tag'],
  ['store', 'no'],
  ['service_tier', 1],
];

/** Values the OpenAI API accepts, which each translation must take too. */
export const CHAT_FIELD_ACCEPTS: [string, unknown][] = [
  ['temperature', 1],
  ['temperature', 0],
  ['top_p', 1],
  ['max_tokens', 1e15],
  ['seed', -7],
  ['seed', 2 ** 53],
  ['presence_penalty', -2],
  ['frequency_penalty', 0],
  ['stop', 'END'],
  ['stop', []],
  ['stop', ['a', 'b']],
  ['stream', false],
  ['stream_options', { include_usage: true, include_obfuscation: false }],
  ['tools', []],
  ['tool_choice', 'auto'],
  ['tool_choice', 'none'],
  ['response_format', { type: 'text' }],
  ['n', 1],
  ['user', ''],
  ['metadata', { team: 'a' }],
  ['store', true],
  ['service_tier', 'auto'],
  ['top_p', null],
  ['stop', null],
];
