/**
 * The field a plan's system prompt goes into, sent with a type it cannot go into, through the
 * real proxy in every dialect. Replacing the value hid the client's error; skipping the
 * injection sent the request without the plan's instructions to an upstream that might read
 * the field leniently. Each is now a 400 naming the field, and the upstream gets nothing;
 * the legitimate shapes still get the plan's prompt in front.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatCompletion } from '../helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';

/** The free plan's system prompt (helpers/harness.ts). */
const PLAN_PROMPT = 'You are the ACME free-tier assistant.';

const PATHS = {
  chat: '/v1/chat/completions',
  responses: '/v1/responses',
  messages: '/v1/messages',
  gemini: '/v1beta/models/small-model:generateContent',
  ollamaChat: '/api/chat',
  ollamaGenerate: '/api/generate',
} as const;
type Target = keyof typeof PATHS;

const HEADERS: Record<Target, Record<string, string>> = {
  chat: { authorization: `Bearer ${KEYS.free}` },
  responses: { authorization: `Bearer ${KEYS.free}` },
  messages: { 'x-api-key': KEYS.free, 'anthropic-version': '2023-06-01' },
  gemini: { 'x-goog-api-key': KEYS.free },
  ollamaChat: { authorization: `Bearer ${KEYS.free}` },
  ollamaGenerate: { authorization: `Bearer ${KEYS.free}` },
};

const hi = [{ role: 'user', content: 'hi' }];
const geminiHi = [{ role: 'user', parts: [{ text: 'hi' }] }];

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    reply: {
      kind: 'json',
      body: chatCompletion('small-model', 'ok', { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }),
    },
  });
});
afterAll(() => h.close());

async function send(target: Target, body: Record<string, unknown>) {
  const res = await request(`${h.proxy.url}${PATHS[target]}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...HEADERS[target] },
    body: JSON.stringify({ model: 'small-model', ...body }),
  });
  return { status: res.statusCode, text: await res.body.text() };
}

describe("a prompt field the plan's system prompt cannot go into", () => {
  it.each([
    ['messages', 'Anthropic system as a number', { max_tokens: 10, messages: hi, system: 42 }, '"system"'],
    [
      'messages',
      'Anthropic system as an object',
      { max_tokens: 10, messages: hi, system: { text: 'x' } },
      '"system"',
    ],
    ['messages', 'Anthropic system as a boolean', { max_tokens: 10, messages: hi, system: true }, '"system"'],
    ['chat', 'OpenAI messages as an object', { messages: { role: 'user', content: 'hi' } }, '"messages"'],
    ['chat', 'OpenAI messages left out', {}, '"messages"'],
    [
      'responses',
      'Responses instructions as an object',
      { input: 'hi', instructions: { a: 1 } },
      '"instructions"',
    ],
    [
      'gemini',
      'Gemini systemInstruction as a number',
      { contents: geminiHi, systemInstruction: 42 },
      'systemInstruction',
    ],
    [
      'gemini',
      'Gemini systemInstruction parts as a string',
      { contents: geminiHi, systemInstruction: { parts: 'be nice' } },
      'systemInstruction.parts',
    ],
    [
      'gemini',
      'Gemini system_instruction as an array',
      { contents: geminiHi, system_instruction: [] },
      'system_instruction',
    ],
    ['ollamaChat', 'Ollama messages as a string', { messages: 'hi' }, '"messages"'],
    ['ollamaGenerate', 'Ollama system as a number', { prompt: 'hi', system: 5 }, '"system"'],
  ] as [Target, string, Record<string, unknown>, string][])(
    'refuses %s: %s, naming the field, and sends nothing',
    async (target, _name, body, field) => {
      const before = h.upstream.received.length;
      const r = await send(target, body);
      expect(r.status).toBe(400);
      // The message names the field in quotes, which the JSON body escapes.
      expect(r.text.replaceAll('\\"', '"')).toContain(field);
      expect(r.text).toContain('must be');
      expect(h.upstream.received.length).toBe(before);
    },
  );

  it.each([
    ['messages', 'a string system', { max_tokens: 10, messages: hi, system: 'Be brief.' }],
    [
      'messages',
      'system blocks',
      { max_tokens: 10, messages: hi, system: [{ type: 'text', text: 'Be brief.' }] },
    ],
    ['messages', 'no system', { max_tokens: 10, messages: hi, system: null }],
    ['chat', 'messages', { messages: hi }],
    ['responses', 'no instructions', { input: 'hi' }],
    [
      'gemini',
      'a Content systemInstruction',
      { contents: geminiHi, systemInstruction: { parts: [{ text: 'x' }] } },
    ],
    ['gemini', 'a Content without parts', { contents: geminiHi, systemInstruction: { role: 'system' } }],
    ['ollamaChat', 'messages', { messages: hi }],
    ['ollamaGenerate', 'a string system', { prompt: 'hi', system: 'Be brief.' }],
  ] as [Target, string, Record<string, unknown>][])(
    'still sends %s with %s, the plan prompt in front',
    async (target, _name, body) => {
      const before = h.upstream.received.length;
      const r = await send(target, body);
      expect(r.status).toBe(200);
      expect(h.upstream.received.length).toBe(before + 1);
      expect(JSON.stringify(h.lastReceived().body)).toContain(PLAN_PROMPT);
    },
  );
});
