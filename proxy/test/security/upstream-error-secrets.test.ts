/**
 * Providers quote the key they were called with in some refusals: Google answers a suspended
 * or restricted key with a 403 whose message holds `api_key:AIza…` whole. Passed on, every
 * tenant read the operator's key. Error answers now reach clients with each configured
 * upstream secret replaced, however the upstream splits its bytes, in the client's own
 * dialect and through translation.
 */
import OpenAI from 'openai';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream, type Reply } from '../helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';

const GOOGLE_KEY = 'AIzaSyD-operator-0123456789abcdefXYZ';
const OPENAI_KEY = 'sk-operator-4f9a2c7e1b3d5f7a9c0e';
/** A header value the operator set that is no credential: the client may read it. */
const REGION = 'eu-west-1-production';

/** Google's answer to a suspended key (the shape of a real CONSUMER_SUSPENDED 403). */
const SUSPENDED = JSON.stringify({
  error: {
    code: 403,
    message: `Permission denied: Consumer 'api_key:${GOOGLE_KEY}' has been suspended.`,
    status: 'PERMISSION_DENIED',
    details: [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'CONSUMER_SUSPENDED',
        domain: 'googleapis.com',
        metadata: {
          consumer: `projects/api_key:${GOOGLE_KEY}`,
          service: 'generativelanguage.googleapis.com',
        },
      },
    ],
  },
});

const INCORRECT_KEY = JSON.stringify({
  error: {
    message: `Incorrect API key provided: ${OPENAI_KEY} (Bearer ${OPENAI_KEY}). Region ${REGION}.`,
    type: 'invalid_request_error',
    code: 'invalid_api_key',
  },
});

/** `body` in pieces of `size` bytes, so a key is cut across chunks. */
function pieces(body: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < body.length; i += size) out.push(body.slice(i, i + size));
  return out;
}

describe('an error answer quoting the operator key, to a client of the same dialect', () => {
  let h: Harness;
  let next: Reply;
  beforeAll(async () => {
    h = await startHarness({
      reply: () => next,
      config: (base) => ({
        ...base,
        upstream: {
          ...(base.upstream as object),
          headers: {
            'x-goog-api-key': GOOGLE_KEY,
            authorization: `Bearer ${OPENAI_KEY}`,
            'x-region': REGION,
          },
        },
      }),
    });
  });
  afterAll(() => h.close());

  const gemini = async () => {
    const res = await request(`${h.proxy.url}/v1beta/models/small-model:generateContent`, {
      method: 'POST',
      headers: { 'x-goog-api-key': KEYS.pro, 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
    });
    return { status: res.statusCode, text: await res.body.text() };
  };

  it('gives a Gemini client Google 403 with the key replaced, still JSON', async () => {
    next = { kind: 'json', status: 403, body: JSON.parse(SUSPENDED) };
    const { status, text } = await gemini();
    expect(status).toBe(403);
    expect(text).not.toContain(GOOGLE_KEY);
    const body = JSON.parse(text) as { error: { message: string; details: { reason: string }[] } };
    expect(body.error.message).toBe("Permission denied: Consumer 'api_key:[redacted]' has been suspended.");
    expect(body.error.details[0]!.reason).toBe('CONSUMER_SUSPENDED');
  });

  it.each([1, 2, 7, 13, 36, 64])(
    'replaces the key however the upstream cuts its bytes (%i-byte chunks)',
    async (size) => {
      next = {
        kind: 'stream',
        status: 403,
        contentType: 'application/json',
        chunks: pieces(SUSPENDED, size),
      };
      const { status, text } = await gemini();
      expect(status).toBe(403);
      expect(text).toBe(SUSPENDED.replaceAll(GOOGLE_KEY, '[redacted]'));
    },
  );

  it('replaces a bearer token, alone or with its scheme, and leaves values that are no credential', async () => {
    next = { kind: 'stream', status: 400, contentType: 'application/json', chunks: pieces(INCORRECT_KEY, 5) };
    const res = await request(`${h.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    const text = await res.body.text();
    expect(res.statusCode).toBe(400);
    expect(text).not.toContain(OPENAI_KEY);
    expect((JSON.parse(text) as { error: { message: string } }).error.message).toBe(
      `Incorrect API key provided: [redacted] ([redacted]). Region ${REGION}.`,
    );
  });

  it('leaves a success answer as the upstream sent it', async () => {
    const answer = {
      id: 'c',
      object: 'chat.completion',
      model: 'small-model',
      choices: [{ index: 0, message: { role: 'assistant', content: `hello from ${REGION}` } }],
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
    };
    next = { kind: 'json', body: answer };
    const res = await request(`${h.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual(answer);
  });
});

describe('an error answer quoting the operator key, translated for an OpenAI client', () => {
  let h: Harness | undefined;
  let google: FakeUpstream | undefined;
  afterEach(async () => {
    await h?.close();
    await google?.close();
  });

  it('gives the OpenAI SDK the 403 in its own shape, with no key in it', async () => {
    google = await startFakeUpstream({
      kind: 'stream',
      status: 403,
      contentType: 'application/json',
      chunks: pieces(SUSPENDED, 9),
    });
    h = await startHarness({
      config: (base) => {
        const { upstream, ...rest } = base;
        return {
          ...rest,
          upstreams: {
            openai: { ...(upstream as object), dialect: 'openai', models: ['small-model'] },
            gemini: {
              url: google!.url,
              dialect: 'gemini',
              headers: { 'x-goog-api-key': GOOGLE_KEY },
              models: ['gemini-*'],
            },
          },
          pricing: { ...(rest.pricing as object), 'gemini-flash': { input: 1, output: 2 } },
          plans: { ...(rest.plans as object), pro: { models: { default: 'gemini-flash' } } },
        };
      },
    });
    const client = new OpenAI({ apiKey: KEYS.pro, baseURL: `${h.proxy.url}/v1`, maxRetries: 0 });
    const error = (await client.chat.completions
      .create({ model: 'default', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error.status).toBe(403);
    expect(JSON.stringify(error.error)).not.toContain(GOOGLE_KEY);
    expect(error.message).toContain('api_key:[redacted]');
    expect(google.received[0]!.headers['x-goog-api-key']).toBe(GOOGLE_KEY);
  });
});
