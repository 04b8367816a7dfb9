/**
 * The edge between the proxy and its upstreams, as a review found it (each case failed
 * before its fix): a compressed 400 held to decide a stream_options retry, an interim 1xx
 * answer, an upstream refusing the operator's key, a tenant's long requests ejecting a
 * healthy upstream, clients that stop reading, calls queued for a connection, a redirect,
 * client headers that are the client's own, and an upstream url whose credentials would
 * never be sent.
 */
import { connect, createServer as netServer, type AddressInfo, type Socket } from 'node:net';
import OpenAI from 'openai';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/schema.js';
import { problemsOf, smallestConfig } from '../helpers/config-problems.js';
import {
  chatCompletion,
  chatStream,
  servedBy,
  startFakeUpstream,
  type FakeUpstream,
  type Received,
  type Reply,
} from '../helpers/fake-upstream.js';
import { KEYS, startHarness, withUpstreamsAB, type Harness } from '../helpers/harness.js';
import { until } from '../helpers/waiting.js';

let h: Harness | undefined;
let b: FakeUpstream | undefined;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  await h?.close();
  await b?.close();
  for (const cleanup of cleanups.splice(0)) await cleanup();
  h = undefined;
  b = undefined;
});

/** Upstream "a" (the harness's fake, `aReply`) and "b"; every plan's default is [a-model, b-model]. */
async function startTwo(a: Record<string, unknown>, aReply: (req: Received) => Reply): Promise<void> {
  b = await startFakeUpstream((req) => servedBy((req.body as { model: string }).model));
  h = await startHarness({
    reply: aReply,
    config: (base) => {
      const plans = base.plans as Record<string, Record<string, unknown>>;
      return {
        ...withUpstreamsAB(base, b!.url, { a }),
        pricing: { 'a-model': { input: 1, output: 2 }, 'b-model': { input: 1, output: 2 } },
        plans: {
          free: { ...plans.free, models: { default: ['a-model', 'b-model'] } },
          pro: { ...plans.pro, models: { default: ['a-model', 'b-model'] } },
        },
      };
    },
  });
}

/** The harness, its upstream holding `key` as its credential (the secret a refusal may quote). */
async function startKeyed(reply: (req: Received) => Reply, key: string): Promise<void> {
  h = await startHarness({
    reply,
    config: (base) => ({
      ...base,
      upstream: { ...(base.upstream as object), headers: { authorization: `Bearer ${key}` } },
    }),
  });
}

async function chat(key: string, content = 'hi', extra: Record<string, unknown> = {}) {
  const res = await request(`${h!.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content }], ...extra }),
  });
  const text = await res.body.text();
  let model: string | undefined;
  try {
    model = (JSON.parse(text) as { model?: string }).model;
  } catch {
    // A stream, or not JSON.
  }
  return { status: res.statusCode, headers: res.headers, text, model };
}

describe('a compressed 400 to a request the proxy added stream_options to', () => {
  it('is decoded before it is read: the key it quotes is redacted, and its blame is acted on', async () => {
    let calls = 0;
    await startKeyed(
      () =>
        ++calls === 1
          ? {
              kind: 'json',
              status: 400,
              gzip: true,
              body: {
                error: {
                  message:
                    'Unrecognized request argument supplied: stream_options. Key used: sk-upstream-secret',
                  type: 'invalid_request_error',
                },
              },
            }
          : { kind: 'stream', chunks: chatStream('small-model', ['hello'], undefined, false) },
      'sk-upstream-secret',
    );
    const r = await chat(KEYS.pro, 'hi', { model: 'small-model', stream: true });
    // Retried without stream_options, as an uncompressed 400 would have been.
    expect(calls).toBe(2);
    expect(r.status).toBe(200);
    expect(r.text).toContain('hello');
    expect(r.text).not.toContain('sk-upstream-secret');
  });

  it('that does not blame stream_options reaches the client decoded and redacted', async () => {
    await startKeyed(
      () => ({
        kind: 'json',
        status: 400,
        gzip: true,
        body: { error: { message: 'Bad thing. Key used: sk-upstream-secret' } },
      }),
      'sk-upstream-secret',
    );
    const r = await chat(KEYS.pro, 'hi', { model: 'small-model', stream: true });
    expect(r.status).toBe(400);
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.text).toContain('Bad thing');
    expect(r.text).not.toContain('sk-upstream-secret');
  });
});

describe('a redirect in answer to a model call', () => {
  it.each([301, 302, 307, 308])(
    '(%i) is a 502 for the client, whose SDK never re-sends the prompt elsewhere',
    async (status) => {
      b = await startFakeUpstream(servedBy('small-model'));
      h = await startHarness({
        reply: (req) => ({
          kind: 'json',
          status,
          headers: { location: `${b!.url}${req.path}` },
          body: {},
        }),
      });
      const client = new OpenAI({ baseURL: `${h.proxy.url}/v1`, apiKey: KEYS.pro, maxRetries: 0 });
      const error = await client.chat.completions
        .create({ model: 'small-model', messages: [{ role: 'user', content: 'my private prompt' }] })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
      expect((error as InstanceType<typeof OpenAI.APIError>).message).toContain('redirect');
      expect(b.received).toEqual([]);
      const warning = h.logs.find((line) => String(line.msg).includes('redirect'));
      expect(warning).toMatchObject({ status, location_origin: b.url });
    },
  );
});

describe('an interim 1xx answer from the upstream', () => {
  it.each([102, 103])('(%i) is passed over: the client gets the 200 that follows', async (interim) => {
    const body = JSON.stringify(
      chatCompletion('small-model', 'ok', { prompt_tokens: 1, completion_tokens: 1 }),
    );
    const server = netServer((socket: Socket) => {
      let text = '';
      socket.on('error', () => undefined);
      socket.on('data', (data) => {
        text += data.toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? 0);
        if (end === -1 || text.length < end + 4 + length) return;
        text = '';
        socket.write(
          `HTTP/1.1 ${interim} Interim\r\nLink: </x>; rel=preload\r\n\r\n` +
            `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => server.close());
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    h = await startHarness({
      config: (base) => ({ ...base, upstream: { ...(base.upstream as object), url } }),
    });
    const r = await chat(KEYS.pro, 'hi', { model: 'small-model' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text).choices[0].message.content).toBe('ok');
    await h.settled(1);
    expect(h.accessLogs()[0]).toMatchObject({ status: 200, outcome: 'completed' });
  });
});

describe("an upstream that refuses the proxy's key (401)", () => {
  it('falls back to the next model, and is ejected like any failing upstream', async () => {
    await startTwo({ eject_after: 2, eject_for_ms: 60_000 }, () => ({
      kind: 'json',
      status: 401,
      body: { error: { message: 'Incorrect API key provided: sk-a', code: 'invalid_api_key' } },
    }));
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await chat(KEYS.pro));
    expect(results.map((r) => [r.status, r.model])).toEqual(Array(4).fill([200, 'b-model']));
    // Ejected after two: the last two requests went to b alone.
    expect(h!.upstream.received).toHaveLength(2);
    expect(results.map((r) => r.text).join('')).not.toContain('sk-a');
  });

  it('answers 502 upstream_auth_failed when no candidate is left', async () => {
    h = await startHarness({
      reply: { kind: 'json', status: 401, body: { error: { message: 'Incorrect API key provided: sk-x' } } },
    });
    const r = await chat(KEYS.pro, 'hi', { model: 'small-model' });
    expect(r.status).toBe(502);
    expect(JSON.parse(r.text).error.code).toBe('upstream_auth_failed');
    expect(r.text).not.toContain('sk-x');
  });
});

describe('requests waiting for a connection to a stalled upstream', () => {
  it('fall back within timeout_ms of being sent, not one timeout after another', async () => {
    await startTwo({ timeout_ms: 400, connections: 1, eject_after: 100 }, () => ({ kind: 'hang' }));
    const started = Date.now();
    const results = await Promise.all(
      [1, 2, 3, 4, 5, 6].map(async () => {
        const r = await chat(KEYS.pro);
        return { model: r.model, ms: Date.now() - started };
      }),
    );
    expect(results.map((r) => r.model)).toEqual(Array(6).fill('b-model'));
    // One connection, six requests: queued one behind another, the sixth waited ~6 × 400 ms.
    expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(4 * 400);
  });

  it('are given up, not left to start later, when their client leaves', async () => {
    await startTwo({ timeout_ms: 2_000, connections: 1, eject_after: 100 }, () => ({ kind: 'hang' }));
    const first = chat(KEYS.pro).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const controller = new AbortController();
    const second = request(`${h!.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      signal: controller.signal,
      headers: { authorization: `Bearer ${KEYS.pro2}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    }).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    controller.abort();
    await second;
    // Booked as a hang-up while the first still holds the connection (for 2 s), not once its
    // call got a connection only to be aborted.
    const line = await until('the hang-up booked', async () => h!.accessLogs()[0], 1_000, 10);
    expect(line).toMatchObject({ tenant: 'hooli', outcome: 'client_aborted' });
    await first;
    expect(h!.upstream.received).toHaveLength(1);
  });
});

describe("a tenant's requests that run past max_duration_ms", () => {
  it('answer 504, but do not eject a healthy upstream for other tenants', async () => {
    await startTwo({ max_duration_ms: 300, eject_after: 2, eject_for_ms: 60_000 }, (req) =>
      JSON.stringify(req.body).includes('essay')
        ? ({
            ...(servedBy('a-model') as object),
            until: new Promise<void>((r) => setTimeout(r, 800)),
          } as Reply)
        : servedBy('a-model'),
    );
    expect((await chat(KEYS.pro)).model).toBe('a-model');
    for (let i = 0; i < 3; i++) expect((await chat(KEYS.free, 'write a 20,000 word essay')).status).toBe(504);
    expect((await chat(KEYS.pro)).model).toBe('a-model');
  });
});

describe('clients that stop reading a stream', () => {
  it('are cut off after server.response_stall_timeout_ms, freeing the upstream connections they held', async () => {
    const piece = `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'small-model', choices: [{ index: 0, delta: { content: 'x'.repeat(60_000) }, finish_reason: null }] })}\n\n`;
    h = await startHarness({
      reply: (req) =>
        (req.body as { stream?: boolean }).stream
          ? { kind: 'stream', chunks: Array(400).fill(piece), delayMs: 5 }
          : servedBy('small-model'),
      config: (base) => ({
        ...base,
        server: { response_stall_timeout_ms: 1_000 },
        upstream: { ...(base.upstream as object), connections: 2, timeout_ms: 30_000 },
      }),
    });
    const url = new URL(h.proxy.url);
    const body = JSON.stringify({
      model: 'small-model',
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
    });
    // One tenant takes both upstream connections with streams it never reads.
    for (let i = 0; i < 2; i++) {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.pro}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        );
        socket.pause();
      });
      socket.on('error', () => undefined);
      cleanups.push(() => socket.destroy());
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Another tenant's short answer comes once they are cut off, not when they hang up.
    const res = await request(`${h.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.pro2}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'small-model', messages: [{ role: 'user', content: 'hi' }] }),
      headersTimeout: 15_000,
    });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    await h.settled(3);
    // Cut off, not hung up: the sockets are still open on the client's side.
    const cut = h.accessLogs().filter((line) => line.tenant === 'globex');
    expect(cut.map((line) => [line.outcome, line.provenance])).toEqual([
      ['client_aborted', 'partial'],
      ['client_aborted', 'partial'],
    ]);
  }, 30_000);

  it.each([0, -1, 1.5, '30000', null, Number.POSITIVE_INFINITY])(
    'refuses a response_stall_timeout_ms of %j, naming it',
    async (value) => {
      const problems = await problemsOf(() =>
        parseConfig(smallestConfig({ server: { response_stall_timeout_ms: value } })),
      );
      expect(problems.map((p) => p.path)).toEqual(['server.response_stall_timeout_ms']);
    },
  );
});

describe('client headers that are the client’s own', () => {
  it('do not reach the upstream: cookies and method overrides', async () => {
    h = await startHarness({ reply: servedBy('small-model') });
    const res = await request(`${h.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${KEYS.pro}`,
        'content-type': 'application/json',
        cookie: 'session=tenant-browser-session',
        'x-http-method-override': 'DELETE',
        'x-http-method': 'DELETE',
        'x-method-override': 'DELETE',
        x_http_method_override: 'DELETE',
      },
      body: JSON.stringify({ model: 'small-model', messages: [{ role: 'user', content: 'hi' }] }),
    });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    const sent = Object.keys(h.lastReceived().headers);
    for (const name of [
      'cookie',
      'x-http-method-override',
      'x-http-method',
      'x-method-override',
      'x_http_method_override',
    ])
      expect(sent).not.toContain(name);
  });
});

describe('an upstream url', () => {
  it.each([
    ['user info', 'http://user:pass@127.0.0.1:9/v1', 'no user or password'],
    ['a user alone', 'http://user@127.0.0.1:9', 'no user or password'],
    ['a query', 'https://generativelanguage.googleapis.com/?key=AIzaSECRET', 'no query or fragment'],
    ['a fragment', 'http://127.0.0.1:9/#x', 'no query or fragment'],
  ])('with %s is refused at load, pointing to headers', async (_name, url, message) => {
    const problems = await problemsOf(() => parseConfig(smallestConfig({ upstream: { url } })));
    expect(problems.map((p) => p.path)).toEqual(['upstream.url']);
    expect(problems[0]!.message).toContain(message);
    expect(problems[0]!.message).toContain('headers');
  });

  it('with a path and a port is taken as before', () => {
    expect(() =>
      parseConfig(smallestConfig({ upstream: { url: 'https://example.test:8443/openai/v1' } })),
    ).not.toThrow();
  });
});
