import fc from 'fast-check';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { describe, expect, it } from 'vitest';
import {
  addMediaSlot,
  BINARY_ALLOWANCE_TOKENS,
  estimateJsonTokens,
  estimateWithMedia,
  hasPartType,
  type MediaSlots,
} from './prompt-size.js';

/** About 5,400 tokens of prose. */
const TEXT = 'lorem ipsum dolor sit amet '.repeat(800);
/** A PNG signature and 30 KB of noise, as base64. */
const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(30_000, 0x9c)]).toString(
  'base64',
);
const URL_PART = { url: `data:image/png;base64,${PNG}` };
const SOURCE = { type: 'base64', media_type: 'image/png', data: PNG };
const LIST = [PNG];
const ZEROS = { data: 'A'.repeat(10_000) };

describe('estimateJsonTokens', () => {
  it('counts a quarter token per UTF-8 byte of text, rounded up', () => {
    expect(estimateJsonTokens('abcd'.repeat(100))).toBe(100);
    expect(estimateJsonTokens('é'.repeat(100))).toBe(50);
    expect(estimateJsonTokens(undefined, null)).toBe(0);
  });

  it('counts keys and object framing, so a message costs more than its text', () => {
    expect(estimateJsonTokens([{ role: 'user', content: 'hi' }])).toBeGreaterThan(estimateJsonTokens('hi'));
  });

  it('counts token-id prompts one token per number', () => {
    expect(estimateJsonTokens([1, 2, 3, 4, 5])).toBe(5);
  });

  it.each([
    ['a text that starts with "data:"', `data:${TEXT}`, estimateJsonTokens(TEXT)],
    ['an image data URL', { url: `data:image/png;base64,${PNG}` }, PNG.length / 4],
    ['a base64 image under "data"', { data: PNG }, PNG.length / 4],
    ['a list of base64 images under "images"', { images: [PNG] }, PNG.length / 4],
  ])('counts %s by its size: only a media slot holds images', (_name, value, least) => {
    expect(estimateJsonTokens(value)).toBeGreaterThanOrEqual(least);
  });
});

describe('estimateWithMedia', () => {
  it.each([
    ['a data URL', (s: MediaSlots) => addMediaSlot(s, URL_PART, 'url'), URL_PART],
    ['an Anthropic base64 source', (s: MediaSlots) => addMediaSlot(s, SOURCE, 'data', 'image/png'), SOURCE],
    ['an Ollama image list', (s: MediaSlots) => addMediaSlot(s, LIST, undefined, 'image/*'), LIST],
    ['an all-zero payload', (s: MediaSlots) => addMediaSlot(s, ZEROS, 'data', 'image/png'), ZEROS],
  ])('counts an image in %s as one fixed allowance, not by size', (_name, slot, value) => {
    const slots: MediaSlots = new Map();
    slot(slots);
    const tokens = estimateWithMedia(slots, value);
    expect(tokens).toBeGreaterThanOrEqual(BINARY_ALLOWANCE_TOKENS);
    expect(tokens).toBeLessThan(BINARY_ALLOWANCE_TOKENS + 20);
  });

  /** Counted as text: at least what the prose inside counts alone. */
  const asText = estimateJsonTokens(TEXT);
  const b64 = (text: string) => Buffer.from(text).toString('base64');

  it.each([
    ['a payload that is not base64', `data:image/png;base64,${TEXT}`, undefined],
    ['base64 that decodes to text', `data:image/png;base64,${b64(TEXT)}`, undefined],
    [
      'base64 that decodes to non-Latin text',
      `data:image/png;base64,${b64('日本語のテキスト'.repeat(800))}`,
      undefined,
    ],
    ['a data URL that is not base64', `data:image/png,${TEXT}`, undefined],
    ['a raw text under a declared image type', TEXT, 'image/png'],
    ['base64 text under a declared image type', b64(TEXT), 'image/jpeg'],
    [
      'base64 with whitespace in it',
      `data:image/png;base64,${b64(`\0${TEXT}`).replace(/(.{76})/g, '$1\n')}`,
      undefined,
    ],
  ])('counts %s in an image slot as text', (_name, payload, declared) => {
    const holder = { data: payload };
    const slots: MediaSlots = new Map();
    addMediaSlot(slots, holder, 'data', declared);
    expect(estimateWithMedia(slots, holder)).toBeGreaterThanOrEqual(asText);
  });

  it.each([
    ['a base64 PDF', `data:application/pdf;base64,${b64(`\0${TEXT}`)}`, undefined],
    ['base64 text/plain', b64(TEXT), 'text/plain'],
    ['audio', b64(`\0${TEXT}`), 'audio/wav'],
    ['a payload of unknown type', b64(`\0${TEXT}`), undefined],
  ])('counts %s by its size, never below one allowance', (_name, payload, declared) => {
    const holder = { data: payload };
    const slots: MediaSlots = new Map();
    addMediaSlot(slots, holder, 'data', declared);
    expect(estimateWithMedia(slots, holder)).toBeGreaterThanOrEqual(Math.max(asText, payload.length / 4));
    const tiny = { data: b64('%PDF-1.7\n\0') };
    const tinySlots: MediaSlots = new Map();
    addMediaSlot(tinySlots, tiny, 'data', 'application/pdf');
    expect(estimateWithMedia(tinySlots, tiny)).toBeGreaterThanOrEqual(BINARY_ALLOWANCE_TOKENS);
  });

  it.each([
    ['an https image URL', 'https://images.example/cat.png'],
    ['a Cloud Storage URI', 'gs://bucket/clip.mp4'],
  ])('counts %s in a slot as one allowance, not its two dozen characters', (_name, url) => {
    const holder = { url };
    const slots: MediaSlots = new Map();
    addMediaSlot(slots, holder, 'url');
    expect(estimateWithMedia(slots, holder)).toBeGreaterThanOrEqual(BINARY_ALLOWANCE_TOKENS);
    expect(estimateJsonTokens(holder)).toBeLessThan(20);
  });

  it.each([
    ['a prompt behind a scheme', `https://x/ ${TEXT}`],
    ['a URL longer than an allowance', `https://x/${'a'.repeat(TEXT.length)}`],
  ])('counts %s in a slot by its text when that is more', (_name, url) => {
    const holder = { url };
    const slots: MediaSlots = new Map();
    addMediaSlot(slots, holder, 'url');
    expect(estimateWithMedia(slots, holder)).toBeGreaterThanOrEqual(asText);
  });

  it('counts only the slot field of a holder as media; its other fields are text', () => {
    const holder = { url: `data:image/png;base64,${PNG}`, detail: TEXT };
    const slots: MediaSlots = new Map();
    addMediaSlot(slots, holder, 'url');
    expect(estimateWithMedia(slots, holder)).toBeGreaterThanOrEqual(asText + BINARY_ALLOWANCE_TOKENS);
  });

  it('does not count a lookalike of a slot, elsewhere in the body, as media', () => {
    const slotted = { url: `data:image/png;base64,${PNG}` };
    const lookalike = { url: `data:image/png;base64,${PNG}` };
    const slots: MediaSlots = new Map();
    addMediaSlot(slots, slotted, 'url');
    expect(estimateWithMedia(slots, lookalike)).toBeGreaterThanOrEqual(PNG.length / 4);
  });
});

describe('hasPartType', () => {
  it('finds a part of one of the given types', () => {
    const types = new Set(['image_url']);
    expect(hasPartType([{ type: 'text' }, { type: 'image_url' }], types)).toBe(true);
    expect(hasPartType([{ type: 'text' }], types)).toBe(false);
    expect(hasPartType('image_url', types)).toBe(false);
  });
});

/**
 * The estimate against a real tokenizer (o200k, current OpenAI models'): admission reserves
 * what it estimates, so text that tokenises densely must not count far less than it costs,
 * and ordinary prose, code and the common scripts must not count far more (max_context
 * would refuse prompts that fit). A quarter token per byte counted spaced digits, punctuation
 * and rare scripts at a quarter of their tokens.
 */
describe('estimateJsonTokens against the o200k tokenizer', () => {
  const ratio = (text: string) => estimateJsonTokens(text) / countTokens(text);
  const of = (chars: string, length = 2_000) =>
    fc.string({ unit: fc.constantFrom(...Array.from(chars)), minLength: length, maxLength: length });
  const printable = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');

  it.each([
    ['spaced digits', of('0123456789 ')],
    ['numbers and commas', of('0123456789, ')],
    ['punctuation', of('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~')],
    ['printable ASCII', of(printable)],
    ['hex', of('0123456789abcdef')],
    ['short lines', of('ab\n')],
    [
      'four-byte characters',
      fc
        .array(fc.integer({ min: 0x10000, max: 0x1ffff }), { minLength: 500, maxLength: 500 })
        .map((codes) => String.fromCodePoint(...codes)),
    ],
  ])('counts %s at no less than 0.75 of their tokens', (_name, texts) => {
    fc.assert(
      fc.property(texts, (text) => {
        expect(ratio(text)).toBeGreaterThanOrEqual(0.75);
      }),
      { numRuns: 20 },
    );
  });

  it.each([
    ['English', 'The quick brown fox jumps over the lazy dog, and then it runs away into the forest. '],
    [
      'code',
      'function add(a, b) {\n  return a + b;\n}\nconst x = add(1, 2);\nif (x > 2) console.log("ok " + x);\n',
    ],
    ['JSON', JSON.stringify({ id: 17, name: 'item-17', tags: ['a', 'b'], price: 25.5 })],
    ['Russian', 'Съешь же ещё этих мягких французских булок, да выпей чаю. '],
    ['Chinese', '我能吞下玻璃而不伤身体。这是一个测试句子，用于检查分词器的行为。'],
    ['Arabic', 'نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر ومغلف بجلد أزرق. '],
    ['spaced digits', '1 2 3 4 5 6 7 8 9 0 '],
    ['emoji', '😀🎉👍🚀🔥😂🙏 '],
  ])('counts %s between 0.75 and 2.5 times its tokens', (_name, text) => {
    const r = ratio(text.repeat(100));
    expect(r).toBeGreaterThanOrEqual(0.75);
    expect(r).toBeLessThanOrEqual(2.5);
  });
});
