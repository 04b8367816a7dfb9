/**
 * Default-deny for upstream endpoints, attacked with a tenant's own valid key: the
 * upstream credential is the operator's and account-wide, so the account's files, stored
 * completions and responses, batches, organisation and Ollama's model store must never be
 * reachable through the proxy. The recording fake upstream must see none of these requests.
 */
import { connect } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/schema.js';
import type { ConfigError } from '../../src/errors.js';
import { echoModel } from '../helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    reply: echoModel({ prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }),
    config: (base) => {
      const plans = base.plans as Record<string, Record<string, unknown>>;
      return {
        ...base,
        upstream: {
          ...(base.upstream as object),
          allow_paths: [{ method: 'GET', path: '/v1/vector_stores/*/files' }],
        },
        plans: {
          ...plans,
          pro: {
            ...plans.pro,
            features: ['rag', 'image_analysis', 'store', 'priority_tier', 'media_output'],
            allow_paths: [
              { method: 'get', path: '/v1/files/*' },
              { method: '*', path: '/api/show' },
              { method: 'POST', path: '/v1/messages/count_tokens' },
            ],
          },
        },
      };
    },
  });
});
afterAll(() => h.close());

async function send(
  method: string,
  path: string,
  key: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const before = h.upstream.received.length;
  const res = await request(`${h.proxy.url}${path}`, {
    method: method as 'GET',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers,
    json: text ? (JSON.parse(text) as Record<string, any>) : {}, // eslint-disable-line @typescript-eslint/no-explicit-any
    reached: h.upstream.received.length > before,
  };
}

const ACCOUNT_WIDE: [string, string, unknown?][] = [
  ['GET', '/v1/files'],
  ['GET', '/v1/files/file-abc/content'],
  ['DELETE', '/v1/files/file-abc'],
  ['POST', '/v1/files', {}],
  ['GET', '/v1/chat/completions?limit=100'],
  ['GET', '/v1/chat/completions/chatcmpl-1'],
  ['POST', '/v1/chat/completions/chatcmpl-1', { metadata: {} }],
  ['DELETE', '/v1/chat/completions/chatcmpl-1'],
  ['GET', '/v1/chat/completions/chatcmpl-1/messages'],
  ['GET', '/v1/responses/resp_1'],
  ['DELETE', '/v1/responses/resp_1'],
  ['GET', '/v1/responses/resp_1/input_items'],
  ['POST', '/v1/responses/resp_1/cancel', {}],
  ['GET', '/v1/batches'],
  ['POST', '/v1/batches', { input_file_id: 'f' }],
  ['GET', '/v1/organization/usage/completions'],
  ['GET', '/v1/organization/admin_api_keys'],
  ['POST', '/v1/fine_tuning/jobs', {}],
  ['GET', '/v1/vector_stores'],
  ['DELETE', '/api/delete', { model: 'llama3' }],
  ['POST', '/api/pull', { model: 'evil/model' }],
  ['POST', '/api/push', { model: 'llama3' }],
  ['POST', '/api/copy', { source: 'a', destination: 'b' }],
  ['POST', '/api/create', { model: 'x' }],
  ['POST', '/api/blobs/sha256:abc', {}],
  ['GET', '/v1beta/cachedContents'],
  ['GET', '/v1beta/files'],
  ['GET', '/internal/admin'],
  // The model named in the path, where the plan never looks (Azure-style deployments).
  ['POST', '/openai/deployments/big-model/chat/completions', { model: 'small-model', messages: [] }],
  ['POST', '/v1/engines/big-model/chat/completions', { model: 'small-model', messages: [] }],
  ['POST', '/v1/threads/thread_1/chat/completions', { model: 'small-model', messages: [] }],
];

describe('account-wide endpoints', () => {
  it.each(ACCOUNT_WIDE)(
    'refuses %s %s with 403 endpoint_not_allowed, never reaching the upstream',
    async (method, path, body) => {
      const r = await send(method, path, KEYS.free, body);
      expect(r.status).toBe(403);
      expect(JSON.stringify(r.json)).toContain('endpoint_not_allowed');
      expect(r.reached).toBe(false);
    },
  );

  it.each(['TRACE', 'PROPFIND', 'MKCOL'])(
    'answers %s with 405 and an Allow header, never reaching the upstream',
    async (method) => {
      const r = await send(method, '/v1/chat/completions', KEYS.free);
      expect(r.status).toBe(405);
      expect(String(r.headers.allow)).toContain('POST');
      expect(r.reached).toBe(false);
    },
  );

  it('answers CONNECT, sent on a raw socket, without reaching the upstream', async () => {
    const before = h.upstream.received.length;
    const { hostname, port } = new URL(h.proxy.url);
    const status = await new Promise<string>((resolve) => {
      const s = connect({ host: hostname, port: Number(port) }, () =>
        s.write(
          `CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\nAuthorization: Bearer ${KEYS.free}\r\n\r\n`,
        ),
      );
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('close', () => resolve(got.slice(0, 12)));
      s.on('error', () => resolve(got.slice(0, 12)));
      setTimeout(() => s.destroy(), 1_000);
    });
    expect(status).not.toBe('HTTP/1.1 200');
    expect(h.upstream.received.length).toBe(before);
  });

  it('renders the refusal in the Anthropic, Gemini and Ollama shapes', async () => {
    const anthropic = await send('GET', '/v1/files', KEYS.free, undefined, {
      'anthropic-version': '2023-06-01',
    });
    expect(anthropic.json).toMatchObject({ type: 'error', error: { type: 'permission_error' } });
    const gemini = await send('GET', '/v1beta/files', KEYS.free);
    expect(gemini.json.error?.status).toBe('PERMISSION_DENIED');
    const ollama = await send('POST', '/api/pull', KEYS.free, { model: 'x' });
    expect(typeof ollama.json.error).toBe('string');
  });

  it('still refuses an unknown key with 401 first', async () => {
    const r = await send('GET', '/v1/files', 'lk_nobody');
    expect(r.status).toBe(401);
  });
});

describe('allow_paths', () => {
  it('forwards exactly what the plan and the upstream allow', async () => {
    expect((await send('GET', '/v1/files/file-abc', KEYS.pro)).reached).toBe(true);
    expect((await send('HEAD', '/v1/files/file-abc', KEYS.pro)).status).toBe(200);
    expect((await send('GET', '/api/show', KEYS.pro)).reached).toBe(true);
    expect((await send('POST', '/api/show', KEYS.pro, {})).reached).toBe(true);
    expect((await send('GET', '/v1/vector_stores/vs_1/files', KEYS.free)).reached).toBe(true);
    const counted = await send('POST', '/v1/messages/count_tokens', KEYS.pro, {
      model: 'small-model',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(counted.reached).toBe(true);
  });

  it.each([
    ['another plan', 'GET', '/v1/files/file-abc', KEYS.free],
    ['another method', 'DELETE', '/v1/files/file-abc', KEYS.pro],
    ['a deeper path', 'GET', '/v1/files/file-abc/content', KEYS.pro],
    ['the parent', 'GET', '/v1/files', KEYS.pro],
    ['a longer last segment', 'GET', '/api/showx', KEYS.pro],
    ['a sibling', 'GET', '/v1/vector_stores/vs_1/file_batches', KEYS.free],
    ['an empty segment', 'GET', '/v1/vector_stores//files', KEYS.free],
  ])('refuses %s', async (_n, method, path, key) => {
    const r = await send(method, path, key);
    expect(r.status).toBe(403);
    expect(r.reached).toBe(false);
  });

  it.each([
    [{ method: 'GET', path: 'v1/files' }],
    [{ method: 'GET', path: '/v1/../admin' }],
    [{ method: 'GET', path: '/v1/./files' }],
    [{ method: 'GET', path: '/v1/%66iles' }],
    [{ method: 'GET', path: '/v1/files?purpose=x' }],
    [{ method: 'GET', path: '/v1/files#x' }],
    [{ method: 'GET', path: '/v1/**/content' }],
    [{ method: 'GET', path: '/v1/fi*' }],
    [{ method: 'GET', path: '/v1//files' }],
    [{ method: 'GET', path: '/v1/files/' }],
    [{ method: 'GET', path: '/v1/fi les' }],
    [{ method: 'TRACE', path: '/v1/files' }],
    [{ method: 'GET' }],
    [{ method: 'GET', path: '/v1/files', extra: true }],
  ])('check-config refuses the hostile entry %j', (entry) => {
    let problems: string[] = [];
    try {
      parseConfig({
        upstream: { url: 'http://x:1' },
        plans: { p: { models: { default: 'm' }, allow_paths: [entry] } },
      });
    } catch (error) {
      problems = (error as ConfigError).problems.map((p) => p.path);
    }
    expect(problems.some((p) => p.startsWith('plans.p.allow_paths.0'))).toBe(true);
  });
});

describe('GET /v1/models', () => {
  it("is answered from the tenant's plan, never the upstream's account-wide list", async () => {
    const r = await send('GET', '/v1/models', KEYS.pro);
    expect(r.status).toBe(200);
    expect(r.reached).toBe(false);
    expect(r.json.object).toBe('list');
    expect(r.json.data.map((m: { id: string }) => m.id).sort()).toEqual([
      'big-model',
      'default',
      'small-model',
      'smart',
    ]);
    const free = await send('GET', '/v1/models', KEYS.free);
    expect(free.json.data.map((m: { id: string }) => m.id).sort()).toEqual(['default', 'small-model']);
  });

  it('answers one model, and 404 for a model outside the plan', async () => {
    expect((await send('GET', '/v1/models/small-model', KEYS.free)).json).toMatchObject({
      id: 'small-model',
      object: 'model',
    });
    const missing = await send('GET', '/v1/models/big-model', KEYS.free);
    expect(missing.status).toBe(404);
    expect(missing.reached).toBe(false);
  });

  it('speaks Anthropic to an Anthropic client', async () => {
    const r = await send('GET', '/v1/models', KEYS.free, undefined, { 'anthropic-version': '2023-06-01' });
    expect(r.json).toMatchObject({ has_more: false, data: [{ type: 'model' }, { type: 'model' }] });
  });
});

describe('"store": true', () => {
  const chat = { messages: [{ role: 'user', content: 'hi' }] };

  it('needs the store feature', async () => {
    const r = await send('POST', '/v1/chat/completions', KEYS.free, { ...chat, store: true });
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe('feature_not_enabled');
    expect(r.reached).toBe(false);
    for (const store of [1, 'true', {}]) {
      expect((await send('POST', '/v1/chat/completions', KEYS.free, { ...chat, store })).status).toBe(403);
    }
    expect((await send('POST', '/v1/chat/completions', KEYS.free, { ...chat, store: false })).status).toBe(
      200,
    );
    expect((await send('POST', '/v1/chat/completions', KEYS.pro, { ...chat, store: true })).status).toBe(200);
    expect((h.lastReceived().body as { store: boolean }).store).toBe(true);
  });

  it('turns the Responses API default (stored) off without the feature', async () => {
    const r = await send('POST', '/v1/responses', KEYS.free, { input: 'hi' });
    expect(r.reached).toBe(true);
    expect((h.lastReceived().body as { store: boolean }).store).toBe(false);
    await send('POST', '/v1/responses', KEYS.pro, { input: 'hi' });
    expect((h.lastReceived().body as { store?: boolean }).store).toBeUndefined();
  });
});

describe('"background": true on the Responses API', () => {
  // Answered at once with a queued stub (usage null) and generated afterwards: the meter saw
  // only the stub, and the tenant's reservation went back.
  it('is refused before the upstream, even on a plan with the store feature', async () => {
    for (const background of [true, 1, 'true', {}]) {
      const r = await send('POST', '/v1/responses', KEYS.pro, { input: 'hi', store: true, background });
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe('invalid_request');
      expect(r.json.error.message).toContain('"background"');
      expect(r.reached).toBe(false);
    }
    for (const background of [false, null]) {
      const r = await send('POST', '/v1/responses', KEYS.pro, { input: 'hi', background });
      expect(r.status).toBe(200);
    }
  });
});

/**
 * Options the provider bills above the price table, which prices text tokens alone: booked
 * at the table's price, a priority request or an audio answer cost the operator more than
 * the tenant was charged (found by review).
 */
describe('options billed above the price table', () => {
  const chat = { messages: [{ role: 'user', content: 'hi' }] };

  it.each([
    [
      '"service_tier": "priority"',
      '/v1/chat/completions',
      { ...chat, service_tier: 'priority' },
      'priority_tier',
    ],
    ['"service_tier": "scale"', '/v1/responses', { input: 'hi', service_tier: 'scale' }, 'priority_tier'],
    [
      'a service_tier that is no string',
      '/v1/chat/completions',
      { ...chat, service_tier: { tier: 'priority' } },
      'priority_tier',
    ],
    [
      'audio in "modalities"',
      '/v1/chat/completions',
      { ...chat, modalities: ['text', 'audio'] },
      'media_output',
    ],
    [
      '"modalities" in another case',
      '/v1/chat/completions',
      { ...chat, modalities: ['AUDIO'] },
      'media_output',
    ],
    [
      '"modalities" that is no list',
      '/v1/chat/completions',
      { ...chat, modalities: 'audio' },
      'media_output',
    ],
    [
      '"audio"',
      '/v1/chat/completions',
      { ...chat, audio: { voice: 'alloy', format: 'wav' } },
      'media_output',
    ],
    [
      'Gemini responseModalities',
      '/v1beta/models/small-model:generateContent',
      { contents: [{ parts: [{ text: 'hi' }] }], generationConfig: { responseModalities: ['AUDIO'] } },
      'media_output',
    ],
    [
      'Gemini response_modalities',
      '/v1beta/models/small-model:generateContent',
      { contents: [{ parts: [{ text: 'hi' }] }], generation_config: { response_modalities: ['IMAGE'] } },
      'media_output',
    ],
    [
      'Gemini speechConfig',
      '/v1beta/models/small-model:generateContent',
      { contents: [{ parts: [{ text: 'hi' }] }], generationConfig: { speechConfig: { voiceConfig: {} } } },
      'media_output',
    ],
  ])('refuses %s without its feature, before the upstream', async (_name, path, body, feature) => {
    const r = await send('POST', path, KEYS.free, body);
    expect(r.status).toBe(403);
    expect(JSON.stringify(r.json)).toContain(feature);
    expect(r.reached).toBe(false);
    expect((await send('POST', path, KEYS.pro, body)).reached).toBe(true);
  });

  it.each([
    ['"service_tier": "auto"', { ...chat, service_tier: 'auto' }],
    ['"service_tier": "default"', { ...chat, service_tier: 'default' }],
    ['"service_tier": "flex"', { ...chat, service_tier: 'flex' }],
    ['"service_tier": null', { ...chat, service_tier: null }],
    ['text-only "modalities"', { ...chat, modalities: ['text'] }],
    ['"audio": null', { ...chat, audio: null }],
  ])('lets %s through on any plan', async (_name, body) => {
    const r = await send('POST', '/v1/chat/completions', KEYS.free, body);
    expect(r.status).toBe(200);
    expect(r.reached).toBe(true);
  });
});
