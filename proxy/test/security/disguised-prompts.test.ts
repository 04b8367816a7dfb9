/**
 * A long prompt dressed as an image, attacked through the real proxy. An image counts a
 * fixed allowance in the prompt estimate, so text that passed for one would slip past
 * max_context and reserve almost nothing against tokens_per_hour. Each disguise here is
 * refused like the same text sent plainly; a real image of the same size still goes through;
 * and a burst of disguised prompts cannot meter more than the hour allows.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chatCompletion, type Received } from '../helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';

/** About 5,400 tokens of ordinary prose: over the plan's 4,096-token context whatever its disguise. */
const TEXT = 'lorem ipsum dolor sit amet '.repeat(800);
const B64_TEXT = Buffer.from(TEXT).toString('base64');
/** Starts binary, so it passes a check of the payload's first bytes, and is text after that. */
const B64_NUL_TEXT = Buffer.from(`\0${TEXT}`).toString('base64');
/** A PNG signature and 30 KB of noise: base64 that counted by size would be over 10,000 tokens. */
const PNG = Buffer.concat([
  Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'),
  randomBytes(30_000),
]).toString('base64');
const PNG_URL = `data:image/png;base64,${PNG}`;

const PATHS = {
  openai: '/v1/chat/completions',
  anthropic: '/v1/messages',
  gemini: '/v1beta/models/small-model:generateContent',
  ollama: '/api/chat',
  ollamaGenerate: '/api/generate',
} as const;
type Target = keyof typeof PATHS;

const HEADERS: Record<Target, Record<string, string>> = {
  openai: { authorization: `Bearer ${KEYS.pro}` },
  anthropic: { 'x-api-key': KEYS.pro, 'anthropic-version': '2023-06-01' },
  gemini: { 'x-goog-api-key': KEYS.pro },
  ollama: { authorization: `Bearer ${KEYS.pro}` },
  ollamaGenerate: { authorization: `Bearer ${KEYS.pro}` },
};

const user = (content: unknown) => ({ messages: [{ role: 'user', content }] });
const claude = (messages: unknown[], extra: Record<string, unknown> = {}) => ({
  max_tokens: 100,
  messages,
  ...extra,
});
const imageUrl = (url: string) => ({ type: 'image_url', image_url: { url } });
const claudeSource = (type: string, mediaType: string, data: string) => ({
  type,
  source: { type: 'base64', media_type: mediaType, data },
});
const geminiParts = (...parts: unknown[]) => ({ contents: [{ role: 'user', parts }] });

async function send(h: Harness, target: Target, body: unknown) {
  const res = await request(`${h.proxy.url}${PATHS[target]}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...HEADERS[target] },
    body: JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, text };
}

/** The stable error code in any dialect's error body. */
function apiCode(text: string): unknown {
  const body = JSON.parse(text) as { code?: unknown; error?: { code?: unknown; reason?: unknown } | string };
  if (typeof body.error === 'object') return body.error.reason ?? body.error.code;
  return body.code;
}

describe('a prompt disguised as an image against max_context', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      reply: {
        kind: 'json',
        body: chatCompletion('small-model', 'ok', { prompt_tokens: 1, completion_tokens: 1 }),
      },
      config: (base) => {
        const plans = base.plans as Record<string, Record<string, unknown>>;
        return {
          ...base,
          plans: {
            ...plans,
            pro: { ...plans.pro, max_context: 4096, features: ['basic_chat', 'image_analysis'] },
          },
        };
      },
    });
  });
  afterAll(() => h.close());

  const disguises: [string, Target, unknown][] = [
    ['plain text (the control)', 'openai', user(TEXT)],
    ['a message that starts with "data:"', 'openai', user(`data:${TEXT}`)],
    [
      'a text part holding a data URL',
      'openai',
      user([{ type: 'text', text: `data:image/png;base64,${TEXT}` }]),
    ],
    [
      'a system message holding a base64 data URL',
      'openai',
      {
        messages: [
          { role: 'system', content: `data:image/png;base64,${B64_TEXT}` },
          { role: 'user', content: 'hi' },
        ],
      },
    ],
    [
      'a tool result holding a data URL',
      'openai',
      {
        messages: [
          { role: 'user', content: 'hi' },
          {
            role: 'assistant',
            tool_calls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{}' } }],
          },
          { role: 'tool', tool_call_id: 't', content: `data:image/png;base64,${TEXT}` },
        ],
      },
    ],
    [
      'an image part whose payload is not base64',
      'openai',
      user([imageUrl(`data:image/png;base64,${TEXT}`)]),
    ],
    [
      'an image part whose base64 decodes to text',
      'openai',
      user([imageUrl(`data:image/png;base64,${B64_TEXT}`)]),
    ],
    [
      'an image part of type text/plain',
      'openai',
      user([imageUrl(`data:text/plain;base64,${B64_NUL_TEXT}`)]),
    ],
    [
      'a file part holding a PDF-labelled text',
      'openai',
      user([
        {
          type: 'file',
          file: { filename: 'a.pdf', file_data: `data:application/pdf;base64,${B64_NUL_TEXT}` },
        },
      ]),
    ],
    [
      'a real image inside a tool schema, which the model reads as text',
      'openai',
      {
        ...user('hi'),
        tools: [
          {
            type: 'function',
            function: { name: 'f', parameters: { type: 'object', examples: [imageUrl(PNG_URL)] } },
          },
        ],
      },
    ],
    [
      'a system prompt that starts with "data:"',
      'anthropic',
      claude([{ role: 'user', content: 'hi' }], { system: `data:${TEXT}` }),
    ],
    [
      'an image block whose data is not base64',
      'anthropic',
      claude([{ role: 'user', content: [claudeSource('image', 'image/png', TEXT)] }]),
    ],
    [
      'an image block whose base64 decodes to text',
      'anthropic',
      claude([{ role: 'user', content: [claudeSource('image', 'image/png', B64_TEXT)] }]),
    ],
    [
      'a base64 PDF document',
      'anthropic',
      claude([{ role: 'user', content: [claudeSource('document', 'application/pdf', B64_NUL_TEXT)] }]),
    ],
    [
      'a plain-text document',
      'anthropic',
      claude([
        {
          role: 'user',
          content: [{ type: 'document', source: { type: 'text', media_type: 'text/plain', data: TEXT } }],
        },
      ]),
    ],
    [
      'a tool call whose input has a "data" field',
      'anthropic',
      claude([
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f', input: { data: TEXT } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: 'ok' }] },
      ]),
    ],
    [
      'a tool result holding a data URL',
      'anthropic',
      claude([
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f', input: {} }] },
        {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: 't', content: `data:image/png;base64,${TEXT}` }],
        },
      ]),
    ],
    [
      'inline data of type text/plain',
      'gemini',
      geminiParts({ inlineData: { mimeType: 'text/plain', data: B64_TEXT } }),
    ],
    [
      'inline data labelled image/png that decodes to text',
      'gemini',
      geminiParts({ inlineData: { mimeType: 'image/png', data: B64_TEXT } }),
    ],
    [
      'inline data whose two media-type spellings disagree',
      'gemini',
      geminiParts({ inline_data: { mimeType: 'image/png', mime_type: 'text/plain', data: B64_NUL_TEXT } }),
    ],
    ['a text part that starts with "data:"', 'gemini', geminiParts({ text: `data:${TEXT}` })],
    [
      'a function response with a "data" field',
      'gemini',
      geminiParts({ functionResponse: { name: 'f', response: { data: TEXT } } }),
    ],
    [
      'an images list holding text',
      'ollama',
      { messages: [{ role: 'user', content: 'hi', images: [TEXT] }] },
    ],
    [
      'an images list holding base64 text',
      'ollama',
      { messages: [{ role: 'user', content: 'hi', images: [B64_TEXT] }] },
    ],
    ['a message that starts with "data:"', 'ollama', user(`data:${TEXT}`)],
    ['a generate images list holding base64 text', 'ollamaGenerate', { prompt: 'hi', images: [B64_TEXT] }],
  ];

  it.each(disguises)('refuses %s (%s) as context_length_exceeded', async (_name, target, body) => {
    const before = h.upstream.received.length;
    const r = await send(h, target, body);
    expect(r.status).toBe(400);
    expect(apiCode(r.text)).toBe('context_length_exceeded');
    expect(h.upstream.received.length).toBe(before);
  });

  // An attachment by URL is fetched and billed by the provider (up to ~1,600 tokens an image, a
  // PDF by its pages): three of them cannot fit 4,096 tokens, however short their URLs.
  const remote = 'https://images.example/cat.png';
  const claudeUrl = (type: string) => ({ type, source: { type: 'url', url: remote } });
  it.each([
    ['image parts', 'openai', user([imageUrl(remote), imageUrl(remote), imageUrl(remote)])],
    [
      'Responses file inputs',
      'openai',
      user([1, 2, 3].map(() => ({ type: 'input_file', file_url: 'https://docs.example/a.pdf' }))),
    ],
    [
      'image blocks',
      'anthropic',
      claude([{ role: 'user', content: [1, 2, 3].map(() => claudeUrl('image')) }]),
    ],
    [
      'document blocks',
      'anthropic',
      claude([{ role: 'user', content: [1, 2, 3].map(() => claudeUrl('document')) }]),
    ],
    [
      'file data parts',
      'gemini',
      geminiParts(
        ...[1, 2, 3].map(() => ({ fileData: { mimeType: 'image/png', fileUri: 'gs://b/cat.png' } })),
      ),
    ],
    [
      'snake_case file data parts',
      'gemini',
      geminiParts(
        ...[1, 2, 3].map(() => ({ file_data: { mime_type: 'video/mp4', file_uri: 'gs://b/v.mp4' } })),
      ),
    ],
  ] as [string, Target, unknown][])(
    'counts three attachments by URL in %s (%s) as three images: context_length_exceeded',
    async (_name, target, body) => {
      const before = h.upstream.received.length;
      const r = await send(h, target, body);
      expect(r.status).toBe(400);
      expect(apiCode(r.text)).toBe('context_length_exceeded');
      expect(h.upstream.received.length).toBe(before);
    },
  );

  it.each([
    ['an image part by URL', 'openai', user([{ type: 'text', text: 'what is this?' }, imageUrl(remote)])],
    ['an image block by URL', 'anthropic', claude([{ role: 'user', content: [claudeUrl('image')] }])],
    [
      'a file data part',
      'gemini',
      geminiParts({ text: 'what?' }, { fileData: { mimeType: 'image/png', fileUri: 'gs://b/cat.png' } }),
    ],
  ] as [string, Target, unknown][])(
    'still forwards one attachment by URL in %s (%s)',
    async (_name, target, body) => {
      const before = h.upstream.received.length;
      const r = await send(h, target, body);
      expect(r.status).toBe(200);
      expect(h.upstream.received.length).toBe(before + 1);
    },
  );

  it.each([
    ['an image part', 'openai', user([{ type: 'text', text: 'what is this?' }, imageUrl(PNG_URL)])],
    [
      'an image block',
      'anthropic',
      claude([
        { role: 'user', content: [{ type: 'text', text: 'what?' }, claudeSource('image', 'image/png', PNG)] },
      ]),
    ],
    [
      'inline image data',
      'gemini',
      geminiParts({ text: 'what?' }, { inlineData: { mimeType: 'image/png', data: PNG } }),
    ],
    ['an images list', 'ollama', { messages: [{ role: 'user', content: 'what?', images: [PNG] }] }],
    ['a generate images list', 'ollamaGenerate', { prompt: 'what?', images: [PNG] }],
  ] as [string, Target, unknown][])(
    'still forwards a real image of the same size in %s (%s)',
    async (_name, target, body) => {
      const before = h.upstream.received.length;
      const r = await send(h, target, body);
      expect(r.status).toBe(200);
      expect(h.upstream.received.length).toBe(before + 1);
    },
  );
});

describe.each(['memory', 'redis'] as const)(
  'a burst of disguised prompts against tokens_per_hour (%s store)',
  (store) => {
    const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    const prefix = `lk-sec-disguise-${randomUUID().slice(0, 8)}:`;
    const CAP = 20_000;
    let h: Harness | undefined;

    afterEach(async () => {
      await h?.close();
      h = undefined;
      if (store !== 'redis') return;
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    });

    // What a server that reads the whole payload as text would bill: a quarter token a byte.
    const billAsText = (req: Received) => {
      const prompt = Math.ceil(
        Buffer.byteLength(JSON.stringify((req.body as { messages: unknown }).messages)) / 4,
      );
      return {
        kind: 'json' as const,
        body: chatCompletion('small-model', 'ok', { prompt_tokens: prompt, completion_tokens: 10 }),
        until: new Promise<void>((resolve) => setTimeout(resolve, 200)),
      };
    };

    it('never meters more than the hour allows, however many are sent at once', async () => {
      h = await startHarness({
        reply: billAsText,
        config: (base) => {
          const plans = base.plans as Record<string, Record<string, unknown>>;
          const { custom_prompts: _prompt, max_context: _context, ...free } = plans.free!;
          return {
            ...base,
            ...(store === 'redis'
              ? { store: { redis: REDIS_URL, key_prefix: prefix, timeout_ms: 2000 } }
              : {}),
            plans: {
              ...plans,
              free: {
                ...free,
                features: ['basic_chat', 'image_analysis'],
                max_output_tokens: 100,
                rate_limits: { tokens_per_hour: CAP },
              },
            },
          };
        },
      });
      const bodies = [
        user(`data:${TEXT}`),
        user([imageUrl(`data:image/png;base64,${TEXT}`)]),
        user([imageUrl(`data:image/png;base64,${B64_TEXT}`)]),
      ];
      const agent = new Agent({ connections: 12 });
      const statuses = await Promise.all(
        Array.from({ length: 12 }, async (_, i) => {
          const res = await request(`${h!.proxy.url}/v1/chat/completions`, {
            method: 'POST',
            dispatcher: agent,
            headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
            body: JSON.stringify(bodies[i % bodies.length]),
          });
          await res.body.text();
          return res.statusCode;
        }),
      );
      await agent.close();
      await h.settled(12);
      const metered = h
        .accessLogs()
        .reduce((sum, l) => sum + ((l.input_tokens as number) ?? 0) + ((l.output_tokens as number) ?? 0), 0);
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
      expect(metered).toBeLessThanOrEqual(CAP);
    });
  },
);
