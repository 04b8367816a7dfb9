/**
 * Every refusal the proxy makes on its own, with raw HTTP: the status, the error body in
 * the client's dialect, and that the upstream was never called.
 */
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatCompletion } from './helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from './helpers/harness.js';
import { REFUSING_UPSTREAM } from './helpers/waiting.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    reply: (req) => ({
      kind: 'json',
      body: chatCompletion((req.body as { model: string }).model, 'ok', {
        prompt_tokens: 5,
        completion_tokens: 5,
        total_tokens: 10,
      }),
    }),
    config: (base) => ({ ...base, max_body_bytes: 64 * 1024 }),
  });
});
afterAll(() => h.close());

async function post(path: string, headers: Record<string, string>, body: string | Buffer) {
  const before = h.upstream.received.length;
  const res = await request(`${h.proxy.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- error bodies are probed field by field
    json: JSON.parse(text) as Record<string, any>,
    upstreamCalled: h.upstream.received.length > before,
  };
}

const chat = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'small-model', messages: [{ role: 'user', content: 'hello' }], ...extra });
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('refusals made by the proxy', () => {
  it.each([
    ['no credential at all', {}, 401, 'missing_api_key'],
    ['an unknown API key', bearer('lk_wrong'), 401, 'invalid_api_key'],
    ['an unknown key in x-api-key', { 'x-api-key': 'lk_wrong' }, 401, 'invalid_api_key'],
    ['a suspended tenant', bearer(KEYS.suspended), 403, 'tenant_inactive'],
  ])(
    'answers %s with its status and code, and never calls the upstream',
    async (_name, headers, status, code) => {
      const r = await post('/v1/chat/completions', headers, chat());
      expect(r.status).toBe(status);
      expect(r.json.error.code).toBe(code);
      expect(typeof r.json.error.message).toBe('string');
      expect(r.upstreamCalled).toBe(false);
    },
  );

  it('challenges every 401 with WWW-Authenticate, as RFC 9110 requires', async () => {
    for (const headers of [{}, bearer('lk_wrong'), { 'x-api-key': 'lk_wrong' }] as Record<string, string>[]) {
      const r = await post('/v1/chat/completions', headers, chat());
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toBe('Bearer realm="lanekeeper"');
    }
    const forbidden = await post('/v1/chat/completions', bearer(KEYS.suspended), chat());
    expect(forbidden.headers['www-authenticate']).toBeUndefined();
  });

  it.each([
    ['a bare key', KEYS.free, 'has no scheme'],
    [
      'another scheme',
      `Basic ${Buffer.from(`x:${KEYS.free}`).toString('base64')}`,
      'uses the "Basic" scheme',
    ],
    ['Bearer without a key', 'Bearer', 'names the Bearer scheme but carries no key'],
  ])(
    'says what is wrong with an Authorization header holding %s, without echoing it',
    async (_n, value, says) => {
      const r = await post('/v1/chat/completions', { authorization: value }, chat());
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe('missing_api_key');
      expect(r.json.error.message).toContain(says);
      expect(r.json.error.message).toContain('Authorization: Bearer <key>');
      expect(r.json.error.message).not.toContain(KEYS.free);
      expect(r.upstreamCalled).toBe(false);
    },
  );

  it('refuses malformed JSON with 400 before the upstream', async () => {
    const r = await post('/v1/chat/completions', bearer(KEYS.free), '{"model": "small-model", "messages": [');
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('invalid_json');
    expect(r.upstreamCalled).toBe(false);
  });

  it('refuses a body over max_body_bytes with 413', async () => {
    const big = chat({ padding: 'x'.repeat(70 * 1024) });
    const r = await post('/v1/chat/completions', bearer(KEYS.free), big);
    expect(r.status).toBe(413);
    expect(r.json.error.code).toBe('request_too_large');
    expect(r.upstreamCalled).toBe(false);
  });

  it('refuses a model outside the plan with 403 model_not_allowed', async () => {
    const r = await post('/v1/chat/completions', bearer(KEYS.free), chat({ model: 'gpt-unknown' }));
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe('model_not_allowed');
    expect(r.json.error.message).toContain('small-model');
    expect(r.upstreamCalled).toBe(false);
  });

  it('refuses a prompt over max_context with 400 context_length_exceeded', async () => {
    const long = 'lorem ipsum dolor sit amet '.repeat(1200);
    const r = await post(
      '/v1/chat/completions',
      bearer(KEYS.free),
      chat({ messages: [{ role: 'user', content: long }] }),
    );
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('context_length_exceeded');
    expect(r.upstreamCalled).toBe(false);
  });

  it.each([
    // ~5,000 tokens to a real tokenizer in 10 KB: a quarter token per byte counted 2,500.
    ['spaced digits', Array.from({ length: 5_000 }, (_, i) => i % 10).join(' ')],
    ['punctuation', '!?;:.,(){}[]<>'.repeat(400)],
  ])(
    'refuses %s that tokenise densely over max_context, though a quarter token a byte fits',
    async (_name, text) => {
      expect(Buffer.byteLength(text) / 4).toBeLessThan(4_096);
      const r = await post(
        '/v1/chat/completions',
        bearer(KEYS.free),
        chat({ messages: [{ role: 'user', content: text }] }),
      );
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe('context_length_exceeded');
      expect(r.upstreamCalled).toBe(false);
    },
  );

  it('clamps the requested output to what the context leaves', async () => {
    const r = await post('/v1/chat/completions', bearer(KEYS.free), chat({ max_tokens: 1_000_000 }));
    expect(r.status).toBe(200);
    const sent = h.lastReceived().body as { max_tokens: number };
    expect(sent.max_tokens).toBeGreaterThan(3000);
    expect(sent.max_tokens).toBeLessThan(4096);
  });

  it('refuses image input unless the plan has image_analysis', async () => {
    const image = {
      role: 'user',
      content: [
        { type: 'text', text: 'what is this' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
      ],
    };
    const refused = await post('/v1/chat/completions', bearer(KEYS.free), chat({ messages: [image] }));
    expect(refused.status).toBe(403);
    expect(refused.json.error.code).toBe('feature_not_enabled');
    expect(refused.upstreamCalled).toBe(false);
    const allowed = await post('/v1/chat/completions', bearer(KEYS.pro), chat({ messages: [image] }));
    expect(allowed.status).toBe(200);
  });

  it('writes errors in Anthropic form to Anthropic clients', async () => {
    const r = await post(
      '/v1/messages',
      { 'x-api-key': 'lk_wrong', 'anthropic-version': '2023-06-01' },
      JSON.stringify({ model: 'small-model', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    );
    expect(r.status).toBe(401);
    expect(r.json.type).toBe('error');
    expect(r.json.error.type).toBe('authentication_error');
    expect(r.json.error.message).toMatch(/API key/);
  });
});

describe('upstream failures', () => {
  it('answers 502 when the upstream cannot be reached', async () => {
    const dead = await startHarness({
      config: (base) => ({ ...base, upstream: { url: REFUSING_UPSTREAM, timeout_ms: 2000 } }),
    });
    try {
      const res = await request(`${dead.proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { ...bearer(KEYS.free), 'content-type': 'application/json' },
        body: chat(),
      });
      const json = (await res.body.json()) as { error: { code: string } };
      expect(res.statusCode).toBe(502);
      expect(json.error.code).toBe('upstream_unreachable');
    } finally {
      await dead.close();
    }
  });

  it('answers 504 when the upstream does not answer in time', async () => {
    const slow = await startHarness({
      reply: { kind: 'hang' },
      config: (base) => ({ ...base, upstream: { ...(base.upstream as object), timeout_ms: 300 } }),
    });
    try {
      const res = await request(`${slow.proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { ...bearer(KEYS.free), 'content-type': 'application/json' },
        body: chat(),
      });
      const json = (await res.body.json()) as { error: { code: string } };
      expect(res.statusCode).toBe(504);
      expect(json.error.code).toBe('upstream_timeout');
    } finally {
      await slow.close();
    }
  });
});

describe('headers', () => {
  it('drops hop-by-hop and spoofed tenant headers, and appends x-forwarded-*', async () => {
    // node:http sends the Connection header as given (undici manages its own).
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${h.proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          ...bearer(KEYS.free),
          'content-type': 'application/json',
          'x-tenant-id': 'globex',
          'x-tenant-plan': 'enterprise',
          'x-forwarded-for': '203.0.113.9',
          connection: 'keep-alive, x-secret-hop',
          'x-secret-hop': '1',
          'x-custom': 'kept',
        },
      });
      req.on('response', (res) => res.resume().on('end', resolve));
      req.on('error', reject);
      req.end(chat());
    });
    const got = h.lastReceived().headers;
    expect(got['x-tenant-id']).toBe('acme');
    expect(got['x-tenant-plan']).toBe('free');
    expect(got['x-secret-hop']).toBeUndefined();
    expect(got['x-custom']).toBe('kept');
    expect(got['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(got['x-forwarded-proto']).toBe('http');
  });
});

describe('request targets', () => {
  /** Sends one raw HTTP/1.1 request line as written, and returns the status line and body. */
  function rawRequest(target: string, body = ''): Promise<{ status: number; body: string }> {
    const url = new URL(h.proxy.url);
    return new Promise((resolve, reject) => {
      // write, not end: a half-closed client gets no answer from node:http once it is slow.
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          `POST ${target} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${KEYS.free}\r\n` +
            `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
      });
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      socket.on('end', () => {
        const [head = '', rest = ''] = text.split('\r\n\r\n');
        resolve({ status: Number(head.split(' ')[1]), body: rest });
      });
      socket.on('error', reject);
    });
  }

  it('answers a target that is no path with 400, and keeps serving', async () => {
    const before = h.upstream.received.length;
    const bad = await rawRequest('*', chat());
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('invalid_request_error');
    expect(h.upstream.received.length).toBe(before);
    const after = await post('/v1/chat/completions', bearer(KEYS.free), chat());
    expect(after.status).toBe(200);
  });

  it('reads //host/path as a path, never as a URL naming another host', async () => {
    const r = await rawRequest('//upstream.example/v1/chat/completions', chat());
    // Not the chat route: the proxy forwards the literal path, unmetered.
    expect(h.lastReceived().path).toBe('//upstream.example/v1/chat/completions');
    expect(r.status).toBeGreaterThanOrEqual(200);
  });

  it('normalises dot segments before routing', async () => {
    const r = await rawRequest('/v1/models/../chat/completions', chat());
    expect(r.status).toBe(200);
    expect(h.lastReceived().path).toBe('/v1/chat/completions');
  });
});
