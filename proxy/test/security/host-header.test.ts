/**
 * The request's host must be one value: two Host headers, or an absolute-form target naming
 * another host than Host, get 400 (RFC 9112 §3.2, §3.2.2) before anything reads either.
 * Subdomain identity reads Host, so either let one request be one tenant here and another
 * to whatever behind read the other value. And a request with no key is told where its own
 * SDK's dialect puts one.
 */
import { connect } from 'node:net';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { chatCompletion } from '../helpers/fake-upstream.js';
import { startHarness, type Harness } from '../helpers/harness.js';

const reply = {
  kind: 'json' as const,
  body: chatCompletion('small-model', 'ok', { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }),
};

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Sends `head` and a small chat body over a raw socket; the answer's text. */
function raw(head: string): Promise<string> {
  const { port } = new URL(h!.proxy.url);
  const body = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] });
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
    socket.write(
      `${head}content-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
}

async function subdomainHarness() {
  h = await startHarness({
    reply,
    config: (base) => ({
      ...base,
      identity: {
        sources: ['subdomain'],
        trust_unauthenticated: true,
        subdomain: { base_domain: 'ai.example.com' },
      },
    }),
  });
}

describe('the request host', () => {
  it('given twice is refused 400, whichever tenant either names', async () => {
    await subdomainHarness();
    const answer = await raw(
      'POST /v1/chat/completions HTTP/1.1\r\nhost: acme.ai.example.com\r\nhost: globex.ai.example.com\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('more than one Host header');
    expect(h!.upstream.received).toHaveLength(0);
  });

  it('named by an absolute-form target other than Host is refused 400', async () => {
    await subdomainHarness();
    const answer = await raw(
      'POST http://acme.ai.example.com/v1/chat/completions HTTP/1.1\r\nhost: globex.ai.example.com\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('names another host');
    expect(h!.upstream.received).toHaveLength(0);
  });

  it('named the same by target and Host (any port) passes', async () => {
    await subdomainHarness();
    const answer = await raw(
      'POST http://globex.ai.example.com/v1/chat/completions HTTP/1.1\r\nhost: globex.ai.example.com:80\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(h!.lastReceived().headers['x-tenant-id']).toBe('globex');
  });
});

describe('a request with no key', () => {
  it.each([
    ['/v1beta/models/gemini-2.5-flash:generateContent', { contents: [] }, 'x-goog-api-key'],
    ['/v1/messages', { messages: [] }, 'x-api-key header'],
    ['/v1/chat/completions', { messages: [] }, 'Authorization: Bearer'],
  ])('on %s is told where its own API puts one', async (path, body, hint) => {
    h = await startHarness({ reply });
    const res = await request(`${h.proxy.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.statusCode).toBe(401);
    expect(await res.body.text()).toContain(hint);
  });
});

describe('a request node cannot parse', () => {
  it.each([
    [
      'headers past 16 KiB',
      'POST /v1/chat/completions',
      `x-filler: ${'a'.repeat(20_000)}\r\n`,
      431,
      'openai',
    ],
    [
      'headers past 16 KiB on a Gemini path',
      'POST /v1beta/models/m:generateContent',
      `x-filler: ${'a'.repeat(20_000)}\r\n`,
      431,
      'gemini',
    ],
    ['a header with no colon', 'POST /v1/chat/completions', 'not a header\r\n', 400, 'openai'],
  ])(
    '(%s) is answered in its API, not with a bare status line',
    async (_name, line, extra, status, style) => {
      h = await startHarness({ reply });
      const answer = await raw(`${line} HTTP/1.1\r\nhost: x\r\n${extra}`);
      expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as {
        error: { message: string; code: unknown; status?: string };
      };
      expect(body.error.message).toBeTruthy();
      if (style === 'gemini') expect(body.error.code).toBe(status);
      else expect(typeof body.error.code).toBe('string');
      expect(h!.upstream.received).toHaveLength(0);
    },
  );
});
