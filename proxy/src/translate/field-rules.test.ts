import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JsonBody } from '../dialects/dialect.js';
import { anthropicToOpenai } from './anthropic-openai.js';
import {
  arrayOf,
  checkFields,
  enumOf,
  integer,
  limited,
  number,
  object,
  oneOf,
  string,
  stringArray,
  type FieldRule,
  type FieldType,
} from './field-rules.js';
import { openaiToAnthropic } from './openai-anthropic.js';
import { openaiToGemini } from './openai-gemini.js';
import { openaiToOllama } from './openai-ollama.js';
import { TranslationError } from './translator.js';

describe('field types', () => {
  it.each<[string, FieldType, unknown, string | undefined]>([
    ['a string', string, 'x', undefined],
    ['a string', string, 5, '5'],
    ['a number', number, 1, undefined],
    ['a number', number, 1e308, undefined],
    ['a number', number, '0.5', 'a string'],
    ['an integer', integer, -3, undefined],
    ['an integer', integer, 1.5, '1.5'],
    ['an integer', integer, true, 'true'],
    ['an object', object, [], 'an array'],
    ['an object', object, {}, undefined],
    ['an array of strings', stringArray, [], undefined],
    ['an array of strings', stringArray, 'x', 'a string'],
    ['an array of strings', stringArray, ['x', null], 'an array holding null'],
    [
      'an array of arrays of integers',
      arrayOf(arrayOf(integer)),
      [[1], [2.5]],
      'an array holding an array holding 2.5',
    ],
    ['a string or an array of strings', oneOf(string, stringArray), ['a', 1], 'an array holding 1'],
    ['a string or an array of strings', oneOf(string, stringArray), {}, 'an object'],
    ['"a" or "b"', enumOf('a', 'b'), 'c', '"c"'],
    ['"a" or "b"', enumOf('a', 'b'), 'c'.repeat(50), `"${'c'.repeat(40)}…"`],
    ['"a", "b" or an object', oneOf(enumOf('a', 'b'), object), 'c', '"c"'],
    ['"a", "b" or an object', oneOf(enumOf('a', 'b'), object), { type: 'c' }, undefined],
  ])('%s: %j is %s', (expected, type, value, mismatch) => {
    expect(type.expected).toBe(expected);
    expect(type.mismatch(value)).toBe(mismatch);
  });

  const RULES: Record<string, FieldRule> = {
    stop: oneOf(string, stringArray),
    n: limited(integer, (value) => (value === 1 ? undefined : 'one choice only')),
    audio: 'refused',
  };
  const check = (body: Record<string, unknown>) => () => checkFields(body, RULES, 'Upstream', 'x.');

  it('names the field, the type it must have and what it is instead, never echoing a string', () => {
    expect(check({ stop: 5 })).toThrow(
      new TranslationError('field "x.stop" must be a string or an array of strings, not 5'),
    );
    expect(check({ stop: { secret: 'prompt text' } })).toThrow(/not an object$/);
  });

  it('checks the type before the upstream limit, and reads null as absent', () => {
    expect(check({ n: '2' })).toThrow('field "x.n" must be an integer, not a string');
    expect(check({ n: 2 })).toThrow('field "x.n" cannot be sent to Upstream: one choice only');
    expect(check({ n: 1, stop: null, audio: null })).not.toThrow();
    expect(check({ audio: {} })).toThrow('field "x.audio" has no equivalent in Upstream');
    expect(check({ tone: 'x' })).toThrow('unknown field "x.tone" cannot be sent to Upstream');
  });
});

// Written from the client APIs' references (the openai and @anthropic-ai/sdk request types),
// not from the translators' tables, so the property below checks the tables against them.
type Oracle = (value: unknown) => boolean;
const isString: Oracle = (v) => typeof v === 'string';
const isNumber: Oracle = (v) => typeof v === 'number';
const isBoolean: Oracle = (v) => typeof v === 'boolean';
const isObject: Oracle = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const listOf =
  (item: Oracle): Oracle =>
  (v) =>
    Array.isArray(v) && v.every(item);
const either =
  (...oracles: Oracle[]): Oracle =>
  (v) =>
    oracles.some((o) => o(v));

const ANTHROPIC_TYPES: Record<string, Oracle> = {
  model: isString,
  max_tokens: Number.isInteger,
  messages: listOf(isObject),
  system: either(isString, listOf(isObject)),
  stop_sequences: listOf(isString),
  stream: isBoolean,
  temperature: isNumber,
  top_p: isNumber,
  tools: listOf(isObject),
  tool_choice: isObject,
  'tool_choice.disable_parallel_tool_use': isBoolean,
  metadata: isObject,
  'metadata.user_id': isString,
  output_config: isObject,
  'output_config.format': isObject,
  thinking: isObject,
  cache_control: isObject,
};

const OPENAI_TYPES: Record<string, Oracle> = {
  model: isString,
  messages: listOf(isObject),
  max_tokens: Number.isInteger,
  max_completion_tokens: Number.isInteger,
  temperature: isNumber,
  top_p: isNumber,
  stop: either(isString, listOf(isString)),
  stream: isBoolean,
  stream_options: isObject,
  'stream_options.include_usage': isBoolean,
  tools: listOf(isObject),
  tool_choice: either((v) => v === 'none' || v === 'auto' || v === 'required', isObject),
  n: Number.isInteger,
  seed: Number.isInteger,
  user: isString,
  response_format: isObject,
  metadata: isObject,
  store: isBoolean,
};

const HI = [{ role: 'user', content: 'hi' }];
const CLIENTS = [
  {
    name: 'Anthropic to OpenAI',
    types: ANTHROPIC_TYPES,
    translate: (body: JsonBody) =>
      anthropicToOpenai.request('messages', { max_tokens: 64, messages: HI, ...body }, { model: 'm' }),
  },
  ...[openaiToAnthropic, openaiToGemini, openaiToOllama].map((translator) => ({
    name: `OpenAI to ${translator.upstream}`,
    types: OPENAI_TYPES,
    translate: (body: JsonBody) =>
      translator.request('chat.completions', { messages: HI, ...body }, { model: 'm' }),
  })),
];

/** Any JSON, weighted towards the near misses: lists with one odd entry, mode-like strings. */
const VALUES = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.array(
    fc.oneof(
      fc.string(),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.constant(null),
    ),
    {
      maxLength: 3,
    },
  ),
  fc.constantFrom('none', 'auto', 'required', 'any', 'tool', ''),
);

/** `{a: {b: value}}` for the path `a.b`. */
function bodyWith(path: string, value: unknown): JsonBody {
  const [top, inner] = path.split('.') as [string, string | undefined];
  return { [top]: inner === undefined ? value : { [inner]: value } };
}

describe.each(CLIENTS)(
  '$name: every value of the wrong type is refused, naming the field',
  ({ types, translate }) => {
    it.each(Object.keys(types))('%s', (path) => {
      const documented = types[path] as Oracle;
      fc.assert(
        fc.property(VALUES, (value) => {
          let error: unknown;
          try {
            translate(bodyWith(path, value));
          } catch (e) {
            error = e;
          }
          // Whatever the value, a refusal is a TranslationError (a 400), never a crash.
          if (error !== undefined) expect(error).toBeInstanceOf(TranslationError);
          if (value !== null && !documented(value))
            expect((error as Error | undefined)?.message).toContain(`field "${path}" must be`);
        }),
        { numRuns: 150 },
      );
    });
  },
);
