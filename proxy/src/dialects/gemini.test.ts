import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GoogleGenAI } from '@google/genai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JSON_CASES, fixture, routeOf } from '../../test/dialects/fixture-cases.js';
import { createSseParser } from '../usage/sse.js';
import { completeArrayElements, usageFromJsonBody } from '../usage/stream-tap.js';
import type { DialectRequest, JsonBody } from './dialect.js';
import { gemini, geminiUsage } from './gemini.js';

const GENERATE_PATH = '/v1beta/models/gemini-2.5-pro:generateContent';
const GENERATE = gemini.match('POST', GENERATE_PATH)!;
const STREAM = gemini.match('POST', '/v1beta/models/gemini-2.5-pro:streamGenerateContent')!;

function req(path: string, body: JsonBody = {}): DialectRequest {
  return { method: 'POST', path, query: '', body };
}

describe('the Gemini dialect', () => {
  it.each([
    ['POST', '/v1beta/models/gemini-2.5-pro:generateContent', 'generateContent', true],
    ['POST', '/v1/models/gemini-2.5-pro:streamGenerateContent', 'streamGenerateContent', true],
    ['POST', '/v1beta/models/text-embedding-004:embedContent', 'embedContent', true],
    ['POST', '/v1beta/models/gemini-2.5-pro:countTokens', 'countTokens', false],
    ['POST', '/v1beta/tunedModels/my-model-1:generateContent', 'generateContent', true],
    [
      'POST',
      '/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent',
      'generateContent',
      true,
    ],
    ['GET', '/v1beta/models', 'other', false],
  ])('routes %s %s to %s (metered: %s)', (method, path, endpoint, metered) => {
    expect(gemini.match(method, path)).toMatchObject({ endpoint, metered });
  });

  it("leaves Gemini's OpenAI-compatible paths to the OpenAI dialect", () => {
    expect(gemini.match('POST', '/v1beta/openai/chat/completions')).toBeUndefined();
  });

  it.each(JSON_CASES.filter((c) => c.dialect === gemini))('reads usage from $file', (c) => {
    const obs = usageFromJsonBody(gemini, routeOf(c), fixture(c.file));
    expect(obs?.usage ?? {}).toEqual(c.usage);
    expect(obs?.model).toBe(c.model);
    expect(obs?.error).toBe(c.error);
  });

  it('reads a streamed JSON array that was cut off up to its last complete element', () => {
    const whole = fixture('gemini/stream-array.json');
    const cut = whole.subarray(0, whole.lastIndexOf('"modelVersion"'));
    expect(completeArrayElements(cut)).toHaveLength(2);
    const obs = usageFromJsonBody(gemini, STREAM, cut);
    expect(obs?.usage).toEqual({ input: 11, output: 45, reasoning: 40 });
  });

  it('normalises usage: tool-use prompt counts as input, thoughts as output and reasoning', () => {
    expect(
      geminiUsage({
        promptTokenCount: 100,
        cachedContentTokenCount: 60,
        toolUsePromptTokenCount: 20,
        candidatesTokenCount: 7,
        thoughtsTokenCount: 3,
      }),
    ).toEqual({ input: 120, cachedInput: 60, output: 10, reasoning: 3 });
    expect(geminiUsage({ promptTokenCount: 5 })).toEqual({ input: 5 });
    expect(geminiUsage({})).toBeUndefined();
  });

  it.each([
    ['gemini-2.5-flash', '/v1beta/models/gemini-2.5-flash:generateContent'],
    ['models/gemini-2.5-flash', '/v1beta/models/gemini-2.5-flash:generateContent'],
    ['tuned/a b', '/v1beta/models/tuned%2Fa%20b:generateContent'],
  ])('rewrites the model in the path (%s)', (model, path) => {
    const r = req(GENERATE_PATH);
    gemini.rewriteModel(r, GENERATE, model);
    expect(r.path).toBe(path);
    expect(gemini.readModel(r, GENERATE)).toBe(model.replace(/^models\//, ''));
  });

  it('reads a URL-encoded model and an encoded colon', () => {
    expect(gemini.readModel(req('/v1beta/models/gemini%2D2.5%3AgenerateContent'), GENERATE)).toBe(
      'gemini-2.5',
    );
  });

  it.each([
    ['adds a systemInstruction', {}, { systemInstruction: { parts: [{ text: 'Be kind.' }] } }],
    [
      'prepends a part',
      { systemInstruction: { parts: [{ text: 'Be brief.' }] } },
      { systemInstruction: { parts: [{ text: 'Be kind.' }, { text: 'Be brief.' }] } },
    ],
    [
      'keeps the snake_case spelling',
      { system_instruction: { parts: [{ text: 'Be brief.' }] } },
      { system_instruction: { parts: [{ text: 'Be kind.' }, { text: 'Be brief.' }] } },
    ],
  ])('injects a system prompt (%s)', (_name, body, expected) => {
    const r = req(GENERATE_PATH, body);
    gemini.injectSystemPrompt(r, GENERATE, 'Be kind.');
    expect(r.body).toEqual(expected);
  });

  it('reads and sets generationConfig.maxOutputTokens', () => {
    const r = req(GENERATE_PATH, { contents: [] });
    expect(gemini.readMaxOutput(r, GENERATE)).toBeUndefined();
    gemini.setMaxOutput(r, GENERATE, 64);
    expect(r.body?.generationConfig).toEqual({ maxOutputTokens: 64 });
    expect(gemini.readMaxOutput(r, GENERATE)).toBe(64);
  });

  it('reads the smallest cap of every spelling and leaves exactly one', () => {
    const r = req(GENERATE_PATH, {
      contents: [],
      generationConfig: { maxOutputTokens: 100000, max_output_tokens: 50000, temperature: 0 },
      generation_config: { maxOutputTokens: 30, max_output_tokens: 70000 },
    });
    expect(gemini.readMaxOutput(r, GENERATE)).toBe(30);
    gemini.setMaxOutput(r, GENERATE, 30);
    expect(r.body?.generationConfig).toEqual({ maxOutputTokens: 30, temperature: 0 });
    expect(r.body?.generation_config).toEqual({});
  });

  it('keeps the snake_case cap when the client used only that', () => {
    const r = req(GENERATE_PATH, { contents: [], generation_config: { max_output_tokens: 900 } });
    gemini.setMaxOutput(r, GENERATE, 64);
    expect(r.body).toEqual({ contents: [], generation_config: { max_output_tokens: 64 } });
  });

  it('reads the most candidates of every spelling and refuses a zero cap', () => {
    const r = req(GENERATE_PATH, {
      generationConfig: { candidateCount: 2 },
      generation_config: { candidate_count: 4 },
    });
    expect(gemini.readChoices?.(r, GENERATE)).toEqual({
      count: 4,
      field: 'generation_config.candidate_count',
    });
    const zero = req(GENERATE_PATH, { generationConfig: { maxOutputTokens: 0 } });
    expect(() => gemini.readMaxOutput(zero, GENERATE)).toThrow(/generationConfig\.maxOutputTokens/);
  });

  it('streams exactly on streamGenerateContent and detects inline images', () => {
    expect(gemini.isStream(req(GENERATE_PATH), STREAM)).toBe(true);
    expect(gemini.isStream(req(GENERATE_PATH), GENERATE)).toBe(false);
    const body = {
      contents: [{ role: 'user', parts: [{ inlineData: { mimeType: 'image/jpeg', data: 'AAAA' } }] }],
    };
    expect(gemini.hasImageInput(req(GENERATE_PATH, body), GENERATE)).toBe(true);
    expect(
      gemini.hasImageInput(req(GENERATE_PATH, { contents: [{ parts: [{ text: 'x' }] }] }), GENERATE),
    ).toBe(false);
  });

  it('writes a cut-off that parses as a GenerateContentResponse', () => {
    const parser = createSseParser();
    const events = [...parser.push(Buffer.from(gemini.cutoffEvent!(STREAM, 'quota'))), ...parser.end()];
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0]!.data)).toMatchObject({ candidates: [{ finishReason: 'MAX_TOKENS' }] });
  });

  it('carries the figures it is given as usageMetadata, read back as the meter reads them', () => {
    const parser = createSseParser();
    const events = [
      ...parser.push(Buffer.from(gemini.cutoffEvent!(STREAM, 'quota', { input: 7, output: 12 }))),
      ...parser.end(),
    ];
    expect(gemini.usageHint(events[0]!)).toBe(true);
    expect(gemini.usageFromEvent(events[0]!, STREAM)?.usage).toMatchObject({ input: 7, output: 12 });
    expect(gemini.cutoffEvent!(STREAM, 'quota')).not.toContain('usageMetadata');
  });

  describe('with the official SDK', () => {
    let server: Server;
    let baseUrl = '';
    beforeAll(async () => {
      const stream = fixture('gemini/stream.sse').toString();
      const head = stream.slice(0, stream.lastIndexOf('data: {'));
      server = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(head + gemini.cutoffEvent!(STREAM, 'budget exceeded'));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('ends a stream with finishReason MAX_TOKENS when cut off', async () => {
      const ai = new GoogleGenAI({ apiKey: 'test', httpOptions: { baseUrl } });
      const chunks = [];
      for await (const chunk of await ai.models.generateContentStream({
        model: 'gemini-2.5-flash',
        contents: 'hi',
      })) {
        chunks.push(chunk);
      }
      expect(chunks.map((c) => c.text ?? '').join('')).toBe('The sky is blue because');
      expect(chunks.at(-1)?.candidates?.[0]?.finishReason).toBe('MAX_TOKENS');
    });
  });
});
