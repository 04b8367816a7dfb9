import { describe, expect, it } from 'vitest';
import { JSON_CASES, fixture, routeOf } from '../../test/dialects/fixture-cases.js';
import { createNdjsonParser } from '../usage/ndjson.js';
import { usageFromJsonBody } from '../usage/stream-tap.js';
import type { DialectRequest, JsonBody } from './dialect.js';
import { ollama } from './ollama.js';

const CHAT = ollama.match('POST', '/api/chat')!;
const GENERATE = ollama.match('POST', '/api/generate')!;
const EMBED = ollama.match('POST', '/api/embed')!;

function req(path: string, body: JsonBody): DialectRequest {
  return { method: 'POST', path, query: '', body };
}

describe('the Ollama dialect', () => {
  it.each([
    ['POST', '/api/chat', 'chat', true],
    ['POST', '/api/generate', 'generate', true],
    ['POST', '/api/embed', 'embed', true],
    ['POST', '/api/embeddings', 'embeddings', true],
    ['GET', '/api/tags', 'other', false],
    ['POST', '/api/show', 'other', false],
  ])('routes %s %s to %s (metered: %s)', (method, path, endpoint, metered) => {
    expect(ollama.match(method, path)).toMatchObject({ endpoint, metered });
  });

  it.each(JSON_CASES.filter((c) => c.dialect === ollama))('reads usage from $file', (c) => {
    const obs = usageFromJsonBody(ollama, routeOf(c), fixture(c.file));
    expect(obs?.usage ?? {}).toEqual(c.usage);
    expect(obs?.model).toBe(c.model);
    expect(obs?.error).toBe(c.error);
  });

  it('streams by default and only stops streaming on stream:false', () => {
    expect(ollama.isStream(req('/api/chat', { model: 'm', messages: [] }), CHAT)).toBe(true);
    expect(ollama.isStream(req('/api/chat', { stream: false }), CHAT)).toBe(false);
    expect(ollama.isStream(req('/api/generate', {}), GENERATE)).toBe(true);
    expect(ollama.isStream(req('/api/embed', {}), EMBED)).toBe(false);
  });

  it.each([
    [
      'chat: prepends a system message',
      '/api/chat',
      { messages: [{ role: 'user', content: 'hi' }] },
      {
        messages: [
          { role: 'system', content: 'Be kind.' },
          { role: 'user', content: 'hi' },
        ],
      },
    ],
    ['generate: sets system', '/api/generate', { prompt: 'hi' }, { prompt: 'hi', system: 'Be kind.' }],
    [
      'generate: prepends to system',
      '/api/generate',
      { prompt: 'hi', system: 'Be brief.' },
      { prompt: 'hi', system: 'Be kind.\n\nBe brief.' },
    ],
    ['embed: changes nothing', '/api/embed', { input: 'x' }, { input: 'x' }],
  ])('injects a system prompt (%s)', (_name, path, body, expected) => {
    const r = req(path, body);
    ollama.injectSystemPrompt(r, ollama.match('POST', path)!, 'Be kind.');
    expect(r.body).toEqual(expected);
  });

  it('reads and sets options.num_predict, ignoring the "unlimited" values', () => {
    expect(ollama.readMaxOutput(req('/api/chat', { options: { num_predict: -1 } }), CHAT)).toBeUndefined();
    const r = req('/api/chat', { options: { temperature: 0.2 } });
    ollama.setMaxOutput(r, CHAT, 128);
    expect(r.body?.options).toEqual({ temperature: 0.2, num_predict: 128 });
    expect(ollama.readMaxOutput(r, CHAT)).toBe(128);
    const bare = req('/api/generate', {});
    ollama.setMaxOutput(bare, GENERATE, 9);
    expect(bare.body).toEqual({ options: { num_predict: 9 } });
    const topLevel = req('/api/generate', { num_predict: 100000 });
    ollama.setMaxOutput(topLevel, GENERATE, 9);
    expect(topLevel.body).toEqual({ options: { num_predict: 9 } });
    expect(() => ollama.readMaxOutput(req('/api/chat', { options: { num_predict: -3 } }), CHAT)).toThrow(
      /options\.num_predict/,
    );
  });

  it('detects images on chat messages and generate requests', () => {
    expect(
      ollama.hasImageInput(req('/api/chat', { messages: [{ role: 'user', images: ['iVBOR'] }] }), CHAT),
    ).toBe(true);
    expect(ollama.hasImageInput(req('/api/generate', { images: ['iVBOR'] }), GENERATE)).toBe(true);
    expect(ollama.hasImageInput(req('/api/generate', { images: [] }), GENERATE)).toBe(false);
  });

  it('hints only at the final object and error lines', () => {
    expect(ollama.usageHint({ event: '', data: '{"message":{"content":"x"},"done":false}' })).toBe(false);
    expect(ollama.usageHint({ event: '', data: '{"done":true,"eval_count":3}' })).toBe(true);
    expect(ollama.usageHint({ event: '', data: '{"error":"boom"}' })).toBe(true);
  });

  it.each([
    ['chat', CHAT, 'message'],
    ['generate', GENERATE, 'response'],
  ] as const)('writes a %s cut-off as one final NDJSON line', (_name, route, field) => {
    const parser = createNdjsonParser();
    const text = ollama.cutoffEvent!(route, 'quota', { output: 4 });
    expect(text.endsWith('\n')).toBe(true);
    const events = [...parser.push(Buffer.from(text)), ...parser.end()];
    expect(events).toHaveLength(1);
    const line = JSON.parse(events[0]!.data);
    expect(line).toMatchObject({ done: true, done_reason: 'length', eval_count: 4 });
    expect(line).toHaveProperty(field);
  });
});
