/**
 * Answers built to fool the meter, from a misbehaving (or hostile) upstream: a JSON body too
 * big to parse in memory with its usage at the end, usage reported on an error answer, and
 * figures no answer can have (1e19, negatives, fractions, 1e400). Each is booked from what
 * the upstream reported, clamped where absurd, and flagged; in Redis mode with fail_closed
 * an absurd figure once made the Redis script fail and gave other tenants 503s.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reply } from '../helpers/fake-upstream.js';
import {
  ADMIN_AUTH,
  KEYS,
  metricValue,
  startHarness,
  type Harness,
  accessLineOf,
} from '../helpers/harness.js';
import { REFUSING_UPSTREAM } from '../helpers/waiting.js';

const PAD = 'x'.repeat(1024);

/** A body of about `kib` KiB in the dialect's own shape, with its usage at the very end. */
function bigAnswer(path: string, kib: number, usage: { input: number; output: number }): unknown {
  const filler = Array.from({ length: kib }, () => PAD).join('');
  if (path.startsWith('/v1/messages'))
    return {
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'small-model',
      content: [{ type: 'text', text: filler }],
      stop_reason: 'end_turn',
      usage: { input_tokens: usage.input, output_tokens: usage.output },
    };
  if (path.startsWith('/v1beta/'))
    return {
      candidates: [{ content: { role: 'model', parts: [{ text: filler }] }, finishReason: 'STOP' }],
      modelVersion: 'small-model',
      usageMetadata: {
        promptTokenCount: usage.input,
        candidatesTokenCount: usage.output,
        totalTokenCount: usage.input + usage.output,
      },
    };
  if (path.startsWith('/api/'))
    return {
      model: 'small-model',
      message: { role: 'assistant', content: filler },
      done: true,
      prompt_eval_count: usage.input,
      eval_count: usage.output,
    };
  return {
    id: 'c',
    object: 'chat.completion',
    model: 'small-model',
    choices: [{ index: 0, message: { role: 'assistant', content: filler }, finish_reason: 'stop' }],
    usage: {
      prompt_tokens: usage.input,
      completion_tokens: usage.output,
      total_tokens: usage.input + usage.output,
    },
  };
}

const REQUESTS: Record<string, unknown> = {
  '/v1/chat/completions': { messages: [{ role: 'user', content: 'hi' }] },
  '/v1/messages': { max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] },
  '/v1beta/models/small-model:generateContent': { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
  '/api/chat': { model: 'small-model', stream: false, messages: [{ role: 'user', content: 'hi' }] },
};

async function send(
  h: Harness,
  path: string,
  key: string = KEYS.pro,
): Promise<{ status: number; id: string }> {
  const res = await request(`${h.proxy.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify(REQUESTS[path]),
  });
  await res.body.text();
  return { status: res.statusCode, id: String(res.headers['x-lanekeeper-request-id']) };
}

const accessLine = (h: Harness, id: string) => accessLineOf(h, id, 2_000);

describe('a JSON answer over max_json_response_bytes', () => {
  let h: Harness;
  let next: Reply;

  beforeAll(async () => {
    h = await startHarness({
      reply: () => next,
      config: (base) => ({ ...base, max_json_response_bytes: 64 * 1024 }),
    });
  });
  afterAll(() => h.close());

  it.each(Object.keys(REQUESTS))('is metered from its tail on %s, not booked as 0 output', async (path) => {
    next = { kind: 'json', body: bigAnswer(path, 2048, { input: 1234, output: 56789 }) };
    const { status, id } = await send(h, path);
    expect(status).toBe(200);
    const line = await accessLine(h, id);
    expect(line.input_tokens).toBe(1234);
    expect(line.output_tokens).toBe(56789);
    expect(line.provenance).toBe('reported');
  });

  it('does not take a usage-looking string inside the content for the usage', async () => {
    const body = bigAnswer('/v1/chat/completions', 256, { input: 7, output: 9 }) as {
      choices: { message: { content: string } }[];
    };
    body.choices[0]!.message.content += '"usage":{"prompt_tokens":1,"completion_tokens":1}';
    next = { kind: 'json', body };
    const { id } = await send(h, '/v1/chat/completions');
    const line = await accessLine(h, id);
    expect(line.output_tokens).toBe(9);
  });
});

describe('usage reported on an error answer', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      reply: {
        kind: 'json',
        status: 400,
        body: {
          error: {
            message: 'content filtered after generation',
            type: 'invalid_request_error',
            code: 'filtered',
          },
          usage: { prompt_tokens: 40, completion_tokens: 300, total_tokens: 340 },
        },
      },
    });
  });
  afterAll(() => h.close());

  it('is booked as reported, not as zero', async () => {
    const { status, id } = await send(h, '/v1/chat/completions');
    expect(status).toBe(400);
    const line = await accessLine(h, id);
    expect(line.input_tokens).toBe(40);
    expect(line.output_tokens).toBe(300);
    expect(line.provenance).toBe('reported');
  });
});

describe('absurd usage figures in Redis mode with fail_closed', () => {
  let h: Harness;
  let redis: Redis;
  let absurd: unknown = 1e19;
  const prefix = `lk-sec-meter-${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    redis = new Redis('redis://127.0.0.1:6379');
    h = await startHarness({
      reply: (req) => {
        const tenant = req.headers['x-tenant-id'];
        const output = tenant === 'globex' ? absurd : 5;
        return {
          kind: 'json',
          body: {
            id: 'c',
            object: 'chat.completion',
            model: 'small-model',
            choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
            usage: { prompt_tokens: 3, completion_tokens: output },
          },
        };
      },
      config: (base) => {
        const plans = base.plans as Record<string, Record<string, unknown>>;
        return {
          ...base,
          store: { redis: 'redis://127.0.0.1:6379', key_prefix: prefix },
          on_store_error: 'fail_closed',
          plans: { ...plans, pro: { ...plans.pro, rate_limits: { max_concurrent: 10 } } },
        };
      },
    });
  });
  afterAll(async () => {
    await h.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  it.each([
    ['1e19', 1e19, 1e12],
    ['a negative count', -5, 0],
    ['a fraction', 1.5, 1],
    ['1e400 (Infinity in JSON)', '1e400', 1e12],
  ])('clamps %s, books it as invalid, and keeps every other tenant served', async (_name, value, booked) => {
    absurd = value;
    if (value === '1e400') {
      h.upstream.reply(() => ({
        kind: 'stream',
        contentType: 'application/json',
        chunks: [
          '{"id":"c","object":"chat.completion","model":"small-model","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1e400}}',
        ],
      }));
    }
    const { status, id } = await send(h, '/v1/chat/completions', KEYS.pro);
    expect(status).toBe(200);
    const line = await accessLine(h, id);
    expect(line.output_tokens).toBe(booked);
    expect(line.provenance).toBe('invalid');
    expect(
      h.logs.some((l) => l.request_id === id && l.level === 'warn' && String(l.msg).includes('clamped')),
    ).toBe(true);
    // Another tenant is untouched: no 503 from a failed store call.
    for (let i = 0; i < 5; i++) expect((await send(h, '/v1/chat/completions', KEYS.pro2)).status).toBe(200);
    // The absurd tenant's own Redis counters hold a whole, bounded number.
    const usage = (await (
      await request(`${h.proxy.adminUrl}/v1/usage/globex`, { headers: ADMIN_AUTH })
    ).body.json()) as {
      output_tokens: number;
    };
    expect(Number.isSafeInteger(usage.output_tokens)).toBe(true);
    expect(h.logs.filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);
  });

  it('counts the clamped figures in lanekeeper_usage_invalid_total', async () => {
    const text = await (await request(`${h.proxy.adminUrl}/metrics`)).body.text();
    expect(metricValue(text, 'lanekeeper_usage_invalid_total', { tenant: 'globex', field: 'output' })).toBe(
      4,
    );
  });
});

describe('a JSON answer over the cap with no usage at its end', () => {
  let h: Harness;

  beforeAll(async () => {
    const filler = 'x'.repeat(400 * 1024);
    h = await startHarness({
      reply: {
        kind: 'json',
        body: {
          id: 'c',
          object: 'chat.completion',
          model: 'small-model',
          choices: [{ index: 0, message: { role: 'assistant', content: filler } }],
        },
      },
      config: (base) => ({ ...base, max_json_response_bytes: 64 * 1024 }),
    });
  });
  afterAll(() => h.close());

  it('is estimated from its size, not booked as 0 output', async () => {
    const { id } = await send(h, '/v1/chat/completions');
    const line = await accessLine(h, id);
    expect(line.provenance).toBe('estimated');
    expect(line.output_tokens).toBeGreaterThanOrEqual(100 * 1024);
  });
});

describe('a JSON answer under the cap with no usage at all', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      reply: (req) =>
        req.path.startsWith('/v1/messages')
          ? {
              kind: 'json',
              body: {
                id: 'msg_1',
                type: 'message',
                role: 'assistant',
                model: 'small-model',
                content: [{ type: 'text', text: 'word '.repeat(2_700) }],
                stop_reason: 'end_turn',
              },
            }
          : {
              kind: 'json',
              body: {
                id: 'c',
                object: 'chat.completion',
                model: 'small-model',
                choices: [{ index: 0, message: { role: 'assistant', content: 'word '.repeat(2_700) } }],
              },
            },
    });
  });
  afterAll(() => h.close());

  it.each(['/v1/chat/completions', '/v1/messages'])(
    'is estimated from its size on %s, not booked as 0 output',
    async (path) => {
      const { status, id } = await send(h, path);
      expect(status).toBe(200);
      const line = await accessLine(h, id);
      expect(line.provenance).toBe('estimated');
      // ~13.5 KB of text: about 2,700 tokens counted, ~3,400 by size.
      expect(line.output_tokens).toBeGreaterThan(2_000);
    },
  );
});

/**
 * Calls the upstream took and never answered: the provider has the prompt and bills it,
 * whether the client hung up before the answer's head or the upstream passed its timeout.
 * A tenant sending large prompts and leaving before the first byte was metered nothing.
 */
describe('a call the upstream took and never answered', () => {
  const PROMPT = { messages: [{ role: 'user', content: 'lorem ipsum dolor '.repeat(1_500) }] };
  const sendPrompt = (proxy: Harness, signal?: AbortSignal) =>
    request(`${proxy.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
      body: JSON.stringify(PROMPT),
      ...(signal ? { signal } : {}),
    });
  let h: Harness;
  let release: () => void = () => undefined;
  beforeAll(async () => {
    h = await startHarness({
      reply: () => ({
        kind: 'json',
        body: { id: 'c', object: 'chat.completion', model: 'small-model', choices: [] },
        until: new Promise<void>((resolve) => (release = resolve)),
      }),
      config: (base) => ({ ...base, upstream: { ...(base.upstream as object), timeout_ms: 400 } }),
    });
  });
  afterAll(async () => {
    release();
    await h.close();
  });

  it('charges the prompt of a request whose client hung up before the answer, as partial', async () => {
    const controller = new AbortController();
    const sent = sendPrompt(h, controller.signal).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 150));
    expect(h.upstream.received.length).toBeGreaterThan(0);
    controller.abort();
    await sent;
    await h.settled(1);
    const [line] = h.accessLogs();
    expect(line).toMatchObject({ outcome: 'client_aborted', provenance: 'partial', output_tokens: 0 });
    expect(line!.input_tokens as number).toBeGreaterThan(4_000);
    expect(line!.cost_usd as number).toBeGreaterThan(0);
  });

  it('charges the prompt of a request the upstream did not answer in time (504)', async () => {
    const res = await sendPrompt(h);
    await res.body.text();
    expect(res.statusCode).toBe(504);
    await h.settled(2);
    const line = h.accessLogs()[1]!;
    expect(line).toMatchObject({ status: 504, provenance: 'partial', output_tokens: 0 });
    expect(line.input_tokens as number).toBeGreaterThan(4_000);
  });

  it('charges nothing when the upstream could not be reached: it never had the prompt', async () => {
    const refused = await startHarness({
      reply: { kind: 'json', body: {} },
      config: (base) => ({ ...base, upstream: { ...(base.upstream as object), url: REFUSING_UPSTREAM } }),
    });
    try {
      const res = await sendPrompt(refused);
      await res.body.text();
      expect(res.statusCode).toBe(502);
      await refused.settled(1);
      const [line] = refused.accessLogs();
      expect(line?.provenance ?? null).toBeNull();
      expect(line?.input_tokens ?? null).toBeNull();
    } finally {
      await refused.close();
    }
  });
});

/**
 * Anthropic reports a stream's input in message_start and its output only in the closing
 * message_delta. A stream cut short by a mid-stream error (Anthropic's overloaded_error, with
 * the status still 200), or by a relay that drops the closing events, was booked at the
 * input alone and 0 output, as `reported`: the tenant kept every word for free.
 */
describe('an Anthropic stream that ends without its closing usage', () => {
  const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  const TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(11);
  const opening = [
    sse('message_start', {
      type: 'message_start',
      message: {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'small-model',
        content: [],
        usage: { input_tokens: 1000, output_tokens: 1 },
      },
    }),
    sse('content_block_start', {
      type: 'content_block_start',
      index: 0,
      content_block: { type: 'text', text: '' },
    }),
    ...Array.from({ length: 20 }, () =>
      sse('content_block_delta', {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'text_delta', text: TEXT },
      }),
    ),
  ];
  const ENDINGS: Record<string, string[]> = {
    'a mid-stream overloaded_error': [
      sse('error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }),
    ],
    'no closing events at all': [],
    'the closing usage': [
      sse('content_block_stop', { type: 'content_block_stop', index: 0 }),
      sse('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { output_tokens: 2345 },
      }),
      sse('message_stop', { type: 'message_stop' }),
    ],
  };
  let ending: string[] = [];
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ reply: () => ({ kind: 'stream', chunks: [...opening, ...ending] }) });
  });
  afterAll(() => h.close());

  const streamed = async (key: string) => {
    const res = await request(`${h.proxy.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: JSON.stringify({ max_tokens: 4000, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const text = await res.body.text();
    expect(res.statusCode).toBe(200);
    return { text, line: await accessLine(h, String(res.headers['x-lanekeeper-request-id'])) };
  };

  it.each([
    ['a mid-stream overloaded_error', 'partial'],
    ['no closing events at all', 'estimated'],
  ])(
    'after %s, keeps the reported input and estimates the output streamed (%s)',
    async (name, provenance) => {
      ending = ENDINGS[name]!;
      const { text, line } = await streamed(KEYS.pro);
      expect(text).toContain(TEXT);
      expect(line.provenance).toBe(provenance);
      expect(line.input_tokens).toBe(1000);
      // 20 deltas of ~495 characters: ~2,500 tokens by any count, never 0.
      expect(line.output_tokens as number).toBeGreaterThan(1_500);
      expect(line.output_tokens as number).toBeLessThan(4_000);
      expect(line.cost_usd as number).toBeGreaterThan(0);
    },
  );

  it('books the reported output, as reported, when the closing usage comes', async () => {
    ending = ENDINGS['the closing usage']!;
    const { line } = await streamed(KEYS.pro);
    expect(line).toMatchObject({ provenance: 'reported', input_tokens: 1000, output_tokens: 2345 });
  });

  it('charges the estimated output against tokens_per_hour like any other', async () => {
    ending = ENDINGS['a mid-stream overloaded_error']!;
    const before = (await (
      await request(`${h.proxy.adminUrl}/v1/usage/hooli`, { headers: ADMIN_AUTH })
    ).body.json()) as { output_tokens?: number };
    const { line } = await streamed(KEYS.pro2);
    const after = (await (
      await request(`${h.proxy.adminUrl}/v1/usage/hooli`, { headers: ADMIN_AUTH })
    ).body.json()) as { output_tokens: number };
    expect(after.output_tokens - (before.output_tokens ?? 0)).toBe(line.output_tokens);
  });
});

/**
 * Ollama's OpenAI /v1/completions (wire-formats.md) puts an all-zero usage on every early
 * chunk and the real one on the last. Those zeros were taken for figures: a client that read
 * the answer and hung up before the last chunk was booked 0 input, 0 output and $0.
 */
describe('a stream with zero usage placeholders, its client gone before the final usage', () => {
  const sse = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
  const zero = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  const chunk = (text: string) =>
    sse({
      id: 'c',
      object: 'text_completion',
      model: 'small-model',
      choices: [{ text, index: 0, finish_reason: null }],
      usage: zero,
    });
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      reply: {
        kind: 'stream',
        chunks: [
          ...Array.from({ length: 300 }, (_, i) => chunk(`word${i} `)),
          sse({
            id: 'c',
            object: 'text_completion',
            model: 'small-model',
            choices: [],
            usage: { prompt_tokens: 500, completion_tokens: 900, total_tokens: 1400 },
          }),
          'data: [DONE]\n\n',
        ],
        delayMs: 5,
      },
    });
  });
  afterAll(() => h.close());

  /** Reads about 20 KB of the answer (a hundred words and more), then hangs up. */
  const readThenHangUp = () =>
    new Promise<{ text: string; id: string }>((resolve, reject) => {
      const req = httpRequest(`${h.proxy.url}/v1/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
      });
      let text = '';
      req.on('response', (res) =>
        res.on('data', (data: Buffer) => {
          text += data.toString();
          if (text.length >= 20_000) {
            req.destroy();
            resolve({ text, id: String(res.headers['x-lanekeeper-request-id']) });
          }
        }),
      );
      req.on('error', () => undefined);
      setTimeout(() => reject(new Error('no 20 KB of answer in 10 s')), 10_000).unref();
      req.end(
        JSON.stringify({
          model: 'small-model',
          prompt: 'lorem ipsum dolor sit amet '.repeat(200),
          stream: true,
        }),
      );
    });

  it('books the prompt and the text delivered as estimated figures, not the zeros', async () => {
    const { text, id } = await readThenHangUp();
    expect(text).toContain('word90 ');
    const line = await accessLine(h, id);
    expect(line).toMatchObject({ outcome: 'client_aborted', provenance: 'partial' });
    // ~5.4 KB of prompt; at least ninety words delivered.
    expect(line.input_tokens as number).toBeGreaterThan(1_000);
    expect(line.output_tokens as number).toBeGreaterThan(90);
    expect(line.cost_usd as number).toBeGreaterThan(0);
  });
});

/**
 * Output reported, input not: Ollama leaves prompt_eval_count out when the whole prompt came
 * from its cache (as some OpenAI-compatible servers leave prompt_tokens). Booked as a
 * reported 0, a tenant repeating a long prompt was charged its output alone.
 */
describe.each([true, false])('an Ollama answer without prompt_eval_count (stream %s)', (stream) => {
  const done = { model: 'small-model', done: true, eval_count: 5 };
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      reply: stream
        ? {
            kind: 'stream',
            contentType: 'application/x-ndjson',
            chunks: [
              `${JSON.stringify({ model: 'small-model', message: { role: 'assistant', content: 'ok' }, done: false })}\n`,
              `${JSON.stringify({ ...done, message: { role: 'assistant', content: '' } })}\n`,
            ],
          }
        : { kind: 'json', body: { ...done, message: { role: 'assistant', content: 'ok' } } },
      config: (base) => {
        const plans = base.plans as Record<string, Record<string, unknown>>;
        return {
          ...base,
          upstream: { ...(base.upstream as object), dialect: 'ollama' },
          plans: { ...plans, free: { ...plans.free, max_context: 200_000 } },
        };
      },
    });
  });
  afterAll(() => h.close());

  it('books the prompt as estimated, not as 0', async () => {
    const res = await request(`${h.proxy.url}/api/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'small-model',
        stream,
        messages: [{ role: 'user', content: 'lorem ipsum dolor sit amet '.repeat(1_500) }],
      }),
    });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    const line = await accessLine(h, String(res.headers['x-lanekeeper-request-id']));
    expect(line.provenance).toBe('estimated');
    // ~40 KB of prompt.
    expect(line.input_tokens).toBeGreaterThan(5_000);
    expect(line.output_tokens).toBe(5);
  });
});
