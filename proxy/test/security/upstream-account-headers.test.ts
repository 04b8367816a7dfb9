/**
 * Upstream response headers about the operator's account (its organisation and project
 * ids, the provider's cookies) or the provider's own site (Alt-Svc, HSTS) never reach a
 * tenant, JSON or streamed, through the official SDK or a raw client; the provider's
 * headers about the request itself still do. Nor does an upstream's 401, which is about the
 * operator's key and may quote it. Nor can a tenant's request headers choose the account
 * (organisation, project, beta features) the operator's key is used as.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatCompletion, chatStream } from '../helpers/fake-upstream.js';
import { refusedPaths } from '../helpers/config-problems.js';
import { KEYS, startHarness, type Harness } from '../helpers/harness.js';

const ACCOUNT = {
  'openai-organization': 'operator-org-7f3a',
  'openai-project': 'proj_internal',
  'anthropic-organization-id': '3c5e7a1b-aaaa-bbbb-cccc-0123456789ab',
  'set-cookie': '__cf_bm=secret-bot-cookie; path=/; domain=.api.openai.com; HttpOnly',
  'alt-svc': 'h3=":443"; ma=86400',
  'strict-transport-security': 'max-age=31536000; includeSubDomains; preload',
};
const USAGE = { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 };

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    reply: (req) => {
      const headers = { ...ACCOUNT, 'openai-processing-ms': '12', 'x-request-id': 'req_upstream_1' };
      return (req.body as { stream?: boolean }).stream
        ? { kind: 'stream', chunks: chatStream('small-model', ['ok'], USAGE, true), headers }
        : { kind: 'json', body: chatCompletion('small-model', 'ok', USAGE), headers };
    },
  });
});
afterAll(() => h.close());

function expectNoAccountHeaders(headers: Record<string, unknown>): void {
  for (const name of Object.keys(ACCOUNT)) expect(headers[name], name).toBeUndefined();
  expect(JSON.stringify(headers)).not.toContain('operator-org');
  expect(JSON.stringify(headers)).not.toContain('__cf_bm');
}

describe("the operator's account headers", () => {
  it.each([false, true])(
    'are dropped from a response (stream: %s), the request headers kept',
    async (stream) => {
      const res = await request(`${h.proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], stream }),
      });
      await res.body.text();
      expect(res.statusCode).toBe(200);
      expectNoAccountHeaders(res.headers);
      expect(res.headers['openai-processing-ms']).toBe('12');
      expect(res.headers['x-request-id']).toBe('req_upstream_1');
    },
  );

  it('never reach the official SDK', async () => {
    const client = new OpenAI({ apiKey: KEYS.pro, baseURL: `${h.proxy.url}/v1`, maxRetries: 0 });
    const { response } = await client.chat.completions
      .create({ model: 'small-model', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expectNoAccountHeaders(Object.fromEntries(response.headers.entries()));
  });
});

describe("an upstream refusing the operator's key", () => {
  const QUOTED = 'Incorrect API key provided: sk-upstr*****cret. You can find your API key at …';
  let refusing: Harness;
  beforeAll(async () => {
    refusing = await startHarness({
      reply: {
        kind: 'json',
        status: 401,
        body: { error: { message: QUOTED, type: 'invalid_request_error', code: 'invalid_api_key' } },
      },
      // Ejected at its first refusal, so the first request already has the outage's warning.
      config: (base) => ({ ...base, upstream: { ...(base.upstream as object), eject_after: 1 } }),
    });
  });
  afterAll(() => refusing.close());

  it("is a 502 of the proxy's to the OpenAI SDK, not a 401 quoting the key, and a warning", async () => {
    const client = new OpenAI({ apiKey: KEYS.pro, baseURL: `${refusing.proxy.url}/v1`, maxRetries: 0 });
    const error = await client.chat.completions
      .create({ model: 'small-model', messages: [{ role: 'user', content: 'hi' }] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error).not.toBeInstanceOf(OpenAI.AuthenticationError);
    expect(error).toMatchObject({ status: 502, code: 'upstream_auth_failed' });
    expect(JSON.stringify((error as InstanceType<typeof OpenAI.APIError>).error)).not.toContain('sk-');
    // The operator's warning is the upstream's outage line, with what to check.
    const warnings = refusing.logs.filter((l) => l.level === 'warn');
    expect(warnings.some((l) => String(l.err).includes("refused the proxy's credentials"))).toBe(true);
  });

  it("is a 502 in Anthropic's error shape to the Anthropic SDK, streamed or not", async () => {
    const client = new Anthropic({ apiKey: KEYS.pro, baseURL: refusing.proxy.url, maxRetries: 0 });
    for (const stream of [false, true]) {
      const error = await client.messages
        .create({ model: 'small-model', max_tokens: 5, stream, messages: [{ role: 'user', content: 'hi' }] })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(Anthropic.APIError);
      expect(error).toMatchObject({ status: 502 });
      expect(JSON.stringify((error as InstanceType<typeof Anthropic.APIError>).error)).not.toContain('sk-');
    }
  });
});

/**
 * The other way: request headers that choose what the operator's credential is used as
 * (the OpenAI organisation and project it bills, the Google Cloud project charged, the
 * Anthropic account's beta features), which a tenant must not pick.
 */
describe("a client choosing the operator's account", () => {
  const CHOSEN = {
    'OpenAI-Organization': 'org-victim',
    'OpenAI-Project': 'proj_victim',
    'anthropic-beta': 'files-api-2025-04-14,mcp-client-2025-04-04',
    'x-goog-user-project': 'victim-project',
  };
  const send = (harness: Harness, headers: Record<string, string>) =>
    request(`${harness.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    }).then(async (res) => {
      await res.body.text();
      return res.statusCode;
    });

  it('is not passed on: the headers are dropped, the request served, other headers kept', async () => {
    expect(await send(h, { ...CHOSEN, 'x-app-feature': 'kept', 'content-encoding': 'gzip' })).toBe(200);
    const got = h.lastReceived().headers;
    for (const name of Object.keys(CHOSEN)) expect(got[name.toLowerCase()], name).toBeUndefined();
    expect(JSON.stringify(got)).not.toContain('victim');
    expect(got['x-app-feature']).toBe('kept');
    // The body went re-serialised as plain JSON: a client's encoding no longer describes it.
    expect(got['content-encoding']).toBeUndefined();
  });

  it('is not passed on from the official SDK', async () => {
    const client = new OpenAI({
      apiKey: KEYS.pro,
      baseURL: `${h.proxy.url}/v1`,
      organization: 'org-victim',
      project: 'proj_victim',
      maxRetries: 0,
    });
    await client.chat.completions.create({
      model: 'small-model',
      messages: [{ role: 'user', content: 'hi' }],
    });
    const got = h.lastReceived().headers;
    expect([got['openai-organization'], got['openai-project']]).toEqual([undefined, undefined]);
  });

  it('passes only the headers the upstream lets clients send', async () => {
    const passing = await startHarness({
      reply: { kind: 'json', body: chatCompletion('small-model', 'ok', USAGE) },
      config: (base) => ({
        ...base,
        upstream: { ...(base.upstream as object), pass_client_headers: ['Anthropic-Beta'] },
      }),
    });
    try {
      expect(await send(passing, CHOSEN)).toBe(200);
      const got = passing.lastReceived().headers;
      expect(got['anthropic-beta']).toBe(CHOSEN['anthropic-beta']);
      expect([got['openai-organization'], got['openai-project'], got['x-goog-user-project']]).toEqual([
        undefined,
        undefined,
        undefined,
      ]);
    } finally {
      await passing.close();
    }
  });

  it.each([
    ['a credential', ['authorization']],
    ['the tenant header', ['x-tenant-id']],
    ['any other header', ['x-app-feature']],
    ['an empty name', ['']],
    ['a header split by CR LF', ['anthropic-beta\r\nx-injected: 1']],
    ['a number', [42]],
    ['a string, not a list', 'anthropic-beta'],
  ])('refuses pass_client_headers naming %s, with its path', async (_name, value) => {
    const paths = await refusedPaths({
      upstream: { url: 'http://127.0.0.1:9', pass_client_headers: value },
    });
    expect(paths.some((path) => path.startsWith('upstream.pass_client_headers'))).toBe(true);
  });
});
