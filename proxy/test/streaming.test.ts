/**
 * Streams as raw bytes: what the client receives compared byte for byte with what the
 * upstream sent, a client hanging up mid-stream, an upstream cutting off, and gzip.
 */
import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { chatCompletion, chatStream } from './helpers/fake-upstream.js';
import { KEYS, metricValue, startHarness, type Harness } from './helpers/harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const USAGE = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 };
const streamBody = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    model: 'small-model',
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
    ...extra,
  });

async function rawPost(
  harness: Harness,
  body: string,
  key: string = KEYS.pro,
): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  const res = await request(`${harness.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body,
  });
  return { status: res.statusCode, text: await res.body.text(), headers: res.headers };
}

describe('stream bytes', () => {
  it('reach the client unchanged when the client asked for usage itself', async () => {
    const chunks = chatStream('small-model', ['Hel', 'lo'], USAGE, true);
    h = await startHarness({ reply: { kind: 'stream', chunks, delayMs: 2 } });
    const r = await rawPost(h, streamBody({ stream_options: { include_usage: true } }));
    expect(r.status).toBe(200);
    expect(r.text).toBe(chunks.join(''));
    await h.settled(1);
    expect(h.accessLogs()[0]).toMatchObject({ input_tokens: 11, output_tokens: 7, provenance: 'reported' });
  });

  it('equal the stream the client would have had without usage, when the proxy asked for it', async () => {
    h = await startHarness({
      reply: (req) => {
        const include =
          (req.body as { stream_options?: { include_usage?: boolean } }).stream_options?.include_usage ===
          true;
        return {
          kind: 'stream',
          chunks: chatStream('small-model', ['Hel', 'lo'], USAGE, include),
          delayMs: 2,
        };
      },
    });
    const r = await rawPost(h, streamBody());
    expect(r.text).toBe(chatStream('small-model', ['Hel', 'lo'], undefined, false).join(''));
    await h.settled(1);
    expect(h.accessLogs()[0]).toMatchObject({ input_tokens: 11, output_tokens: 7, provenance: 'reported' });
  });

  it('are decoded from gzip for metering, and the client gets the plain body', async () => {
    h = await startHarness({
      reply: { kind: 'stream', gzip: true, chunks: chatStream('small-model', ['zip'], USAGE, true) },
    });
    const r = await rawPost(h, streamBody({ stream_options: { include_usage: true } }));
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.text).toBe(chatStream('small-model', ['zip'], USAGE, true).join(''));
    await h.settled(1);
    expect(h.accessLogs()[0]).toMatchObject({ input_tokens: 11, output_tokens: 7, provenance: 'reported' });
  });

  it('meters a gzip JSON answer', async () => {
    h = await startHarness({
      reply: { kind: 'json', gzip: true, body: chatCompletion('small-model', 'zipped', USAGE) },
    });
    const r = await rawPost(
      h,
      JSON.stringify({ model: 'small-model', messages: [{ role: 'user', content: 'hi' }] }),
    );
    expect(JSON.parse(r.text).choices[0].message.content).toBe('zipped');
    await h.settled(1);
    expect(h.accessLogs()[0]).toMatchObject({ input_tokens: 11, output_tokens: 7, provenance: 'reported' });
  });
});

describe('a compressed body cut short that the upstream ends cleanly', () => {
  it.each([false, true])(
    'ends the exchange (stream: %s): metered, logged, the client told, the slot freed',
    async (stream) => {
      const whole = stream
        ? Buffer.from(chatStream('small-model', ['zip'], USAGE, true).join(''))
        : Buffer.from(JSON.stringify(chatCompletion('small-model', 'zipped', USAGE)));
      const zipped = gzipSync(whole);
      // The gzip trailer (CRC and length) missing: every byte of the answer decodes, then the end fails.
      const cut = zipped.subarray(0, zipped.length - 8);
      h = await startHarness({
        reply: {
          kind: 'stream',
          chunks: [cut],
          contentType: stream ? 'text/event-stream' : 'application/json',
          headers: { 'content-encoding': 'gzip', 'content-length': String(cut.length) },
        },
        config: (base) => {
          const plans = base.plans as Record<string, Record<string, unknown>>;
          return { ...base, plans: { ...plans, pro: { ...plans.pro, rate_limits: { max_concurrent: 1 } } } };
        },
      });
      const body = stream
        ? streamBody({ stream_options: { include_usage: true } })
        : streamBody({ stream: false });
      const first = await rawPost(h, body).then(
        (r) => r,
        (error: unknown) => error,
      );
      // The head was out: the client sees the body cut, not a clean end.
      expect(first).toBeInstanceOf(Error);
      await h.settled(1);
      expect(h.accessLogs()[0]).toMatchObject({
        outcome: 'upstream_error',
        input_tokens: 11,
        output_tokens: 7,
      });
      // max_concurrent 1: the next request gets the slot at once.
      h.upstream.reply({ kind: 'json', body: chatCompletion('small-model', 'ok', USAGE) });
      const next = await rawPost(h, streamBody({ stream: false }));
      expect(next.status).toBe(200);
    },
  );
});

describe('a stream cut short', () => {
  it('aborts the upstream when the client hangs up, and meters what was used as partial', async () => {
    const pieces = Array.from({ length: 200 }, (_, i) => `word${i} `);
    h = await startHarness({
      reply: { kind: 'stream', chunks: chatStream('small-model', pieces, USAGE, true), delayMs: 10 },
    });
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${h!.proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
      });
      req.on('response', (res) => {
        let seen = 0;
        res.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen > 2000) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', () => undefined);
      setTimeout(() => reject(new Error('no data within 5 s')), 5000).unref();
      req.end(streamBody());
    });
    await h.settled(1);
    for (let i = 0; i < 100 && h.upstream.aborted === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(h.upstream.aborted).toBe(1);
    const line = h.accessLogs()[0]!;
    expect(line.provenance).toBe('partial');
    expect(line.outcome).toBe('client_aborted');
    expect(line.output_tokens as number).toBeGreaterThan(0);
    expect(line.output_tokens as number).toBeLessThan(400);
    const metrics = await (await fetch(`${h.proxy.adminUrl}/metrics`)).text();
    expect(
      metricValue(metrics, 'lanekeeper_usage_records_total', { tenant: 'globex', provenance: 'partial' }),
    ).toBe(1);
    expect(
      metricValue(metrics, 'lanekeeper_unreported_tokens_total', {
        tenant: 'globex',
        kind: 'output',
        provenance: 'partial',
      }),
    ).toBe(line.output_tokens);
  });

  it('meters a stream the upstream cut off, with estimated output', async () => {
    h = await startHarness({
      reply: {
        kind: 'stream',
        chunks: chatStream('small-model', ['one ', 'two ', 'three ', 'four'], USAGE, true),
        cutAfter: 3,
      },
    });
    await rawPost(h, streamBody()).catch(() => undefined);
    await h.settled(1);
    const line = h.accessLogs()[0]!;
    expect(line.provenance).toBe('partial');
    expect(line.output_tokens as number).toBeGreaterThan(0);
  });
});

describe('an upstream that rejects stream_options', () => {
  it('is retried once without it, remembered, and its streams are metered as estimated', async () => {
    h = await startHarness({
      reply: (req) =>
        (req.body as { stream_options?: unknown }).stream_options
          ? {
              kind: 'json',
              status: 400,
              body: {
                error: {
                  message: 'Unrecognized request argument supplied: stream_options',
                  type: 'invalid_request_error',
                  code: null,
                },
              },
            }
          : {
              kind: 'stream',
              chunks: chatStream('small-model', ['four ', 'words ', 'of ', 'output'], undefined, false),
            },
    });
    const first = await rawPost(h, streamBody());
    expect(first.status).toBe(200);
    expect(first.text).toBe(
      chatStream('small-model', ['four ', 'words ', 'of ', 'output'], undefined, false).join(''),
    );
    expect(h.upstream.received).toHaveLength(2);
    expect((h.upstream.received[1]!.body as Record<string, unknown>).stream_options).toBeUndefined();

    const second = await rawPost(h, streamBody());
    expect(second.status).toBe(200);
    expect(h.upstream.received).toHaveLength(3);
    await h.settled(2);
    for (const line of h.accessLogs()) {
      expect(line.provenance).toBe('estimated');
      expect(line.output_tokens as number).toBeGreaterThan(0);
    }
  });

  // An upstream that takes stream_options, and names it in 400s a tenant can provoke: a bad
  // value of the tenant's own inside stream_options, or text of the request echoed back.
  function pickyUpstream(): Parameters<typeof startHarness>[0] {
    return {
      reply: (req) => {
        const body = req.body as {
          stream_options?: Record<string, unknown>;
          messages: { content: string }[];
        };
        const options = body.stream_options ?? {};
        const echoed = body.messages[0]!.content.includes('poison');
        if (Object.keys(options).some((key) => key !== 'include_usage') || echoed)
          return {
            kind: 'json',
            status: 400,
            body: {
              error: {
                message: echoed
                  ? `Invalid content: ${body.messages[0]!.content}`
                  : "Invalid type for 'stream_options.include_obfuscation'",
                type: 'invalid_request_error',
                code: null,
              },
            },
          };
        return {
          kind: 'stream',
          chunks: chatStream('small-model', ['ok'], USAGE, options.include_usage === true),
        };
      },
    };
  }

  it.each([
    ['a bad stream_options value of its own', { stream_options: { include_obfuscation: 'x' } }],
    [
      'text naming stream_options echoed in a 400',
      { messages: [{ role: 'user', content: 'poison stream_options include_usage' }] },
    ],
  ])(
    'is not learned from one tenant provoking %s: the others stay metered as reported',
    async (_name, attack) => {
      h = await startHarness(pickyUpstream());
      const hostile = await rawPost(h, streamBody(attack), KEYS.pro2);
      expect(hostile.status).toBe(400);
      const attempts = h.upstream.received.length;
      // The retry without the field (echo case) failed the same way: nothing was proven.
      expect(attempts).toBeLessThanOrEqual(2);

      const victim = await rawPost(h, streamBody());
      expect(victim.status).toBe(200);
      const sent = h.upstream.received.at(-1)!.body as Record<string, unknown>;
      expect(sent.stream_options).toEqual({ include_usage: true });
      await h.settled(2);
      const line = h.accessLogs().find((l) => l.status === 200)!;
      expect(line.provenance).toBe('reported');
      expect(line.input_tokens).toBe(USAGE.prompt_tokens);
      expect(line.output_tokens).toBe(USAGE.completion_tokens);
    },
  );

  it('passes on a 400 that has nothing to do with stream_options', async () => {
    h = await startHarness({
      reply: {
        kind: 'json',
        status: 400,
        body: { error: { message: 'messages is required', type: 'invalid_request_error', code: null } },
      },
    });
    const r = await rawPost(h, streamBody());
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text).error.message).toBe('messages is required');
    expect(h.upstream.received).toHaveLength(1);
  });
});

describe('drain_on_client_abort', () => {
  it('keeps reading after the client hangs up, so the provider-reported usage is captured', async () => {
    const pieces = Array.from({ length: 60 }, (_, i) => `word${i} `);
    h = await startHarness({
      reply: { kind: 'stream', chunks: chatStream('small-model', pieces, USAGE, true), delayMs: 5 },
      config: (base) => ({
        ...base,
        upstream: { ...(base.upstream as object), drain_on_client_abort: true },
      }),
    });
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${h!.proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
      });
      req.on('response', (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
      setTimeout(() => reject(new Error('no data within 5 s')), 5000).unref();
      req.end(streamBody());
    });
    await h.settled(1);
    expect(h.upstream.aborted).toBe(0);
    expect(h.accessLogs()[0]).toMatchObject({
      outcome: 'client_aborted',
      provenance: 'reported',
      input_tokens: 11,
      output_tokens: 7,
    });
  });
});
