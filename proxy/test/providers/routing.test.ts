/**
 * Several upstreams behind one proxy, through the official openai SDK and raw HTTP: each
 * plan model goes to the upstream whose `models` match it, with that upstream's credential
 * and no other; an alias's fallback list is tried in order when a call fails before the
 * first byte (never after); retries honour Retry-After; an upstream that keeps failing is
 * ejected and let back in by one probe; a request counts once against the tenant's limits,
 * and its tokens and cost are booked on the model and upstream that served it.
 */
import OpenAI from 'openai';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  chatCompletion,
  chatStream,
  servedBy,
  startFakeUpstream,
  type FakeUpstream,
  type Received,
  type Reply,
} from '../helpers/fake-upstream.js';
import {
  ADMIN_AUTH,
  KEYS,
  metricValue,
  startHarness,
  withUpstreamsAB,
  type Harness,
} from '../helpers/harness.js';
import { REFUSING_UPSTREAM } from '../helpers/waiting.js';

let h: Harness | undefined;
let b: FakeUpstream | undefined;
afterEach(async () => {
  await h?.close();
  await b?.close();
  h = undefined;
  b = undefined;
});

/** The harness's upstream is "a" (models a-*), a second fake upstream is "b" (models b-*). */
async function start(
  plan: Record<string, unknown>,
  upstreams: { a?: Record<string, unknown>; b?: Record<string, unknown> } = {},
  replies: { a?: Reply | ((n: number) => Reply); b?: Reply | ((req: Received) => Reply) } = {},
): Promise<{ h: Harness; b: FakeUpstream }> {
  b = await startFakeUpstream(replies.b ?? ((req) => servedBy((req.body as { model: string }).model)));
  let calls = 0;
  const aReply = replies.a;
  h = await startHarness({
    reply:
      typeof aReply === 'function'
        ? () => aReply(++calls)
        : (aReply ?? ((req) => servedBy((req.body as { model: string }).model))),
    config: (base) => ({
      ...withUpstreamsAB(base, b!.url, {
        a: { models: ['a-*', 'small-model', 'big-model'], ...upstreams.a },
        b: upstreams.b,
      }),
      pricing: { 'a-model': { input: 1, output: 2 }, 'b-model': { input: 100, output: 200 } },
      plans: {
        ...(base.plans as Record<string, unknown>),
        free: { models: { default: 'a-model' }, rate_limits: { requests_per_minute: 100 }, ...plan },
      },
    }),
  });
  return { h, b };
}

async function chat(model?: string, extra: Record<string, unknown> = {}) {
  const res = await request(`${h!.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      ...(model ? { model } : {}),
      messages: [{ role: 'user', content: 'hi' }],
      ...extra,
    }),
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers,
    text,
    json: () => JSON.parse(text) as { model?: string; error: { type?: string; message: string } },
  };
}

async function metrics(): Promise<string> {
  const res = await request(`${h!.proxy.adminUrl}/metrics`, { headers: ADMIN_AUTH });
  return res.body.text();
}

describe('routing by model', () => {
  it("sends each model to the upstream whose models match it, with that upstream's credential only", async () => {
    await start({ models: { default: 'a-model', other: 'b-model' } });
    const client = new OpenAI({ apiKey: KEYS.free, baseURL: `${h!.proxy.url}/v1`, maxRetries: 0 });
    const viaA = await client.chat.completions.create({
      model: 'default',
      messages: [{ role: 'user', content: 'x' }],
    });
    const viaB = await client.chat.completions.create({
      model: 'other',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(viaA.choices[0]?.message.content).toBe('served by a-model');
    expect(viaB.choices[0]?.message.content).toBe('served by b-model');
    expect(h!.upstream.received).toHaveLength(1);
    expect(b!.received).toHaveLength(1);
    expect(h!.upstream.received[0]!.headers.authorization).toBe('Bearer sk-a');
    expect(b!.received[0]!.headers.authorization).toBe('Bearer sk-b');
    expect(JSON.stringify(b!.received[0]!.headers)).not.toContain('sk-a');
    expect(JSON.stringify(h!.upstream.received[0]!.headers)).not.toContain(KEYS.free);
    await h!.settled(2);
    expect(h!.accessLogs().map((l) => [l.upstream, l.model])).toEqual([
      ['a', 'a-model'],
      ['b', 'b-model'],
    ]);
  });

  it("refuses a client header named like another upstream's credential header", async () => {
    await start({ models: { default: 'a-model' } }, { b: { headers: { 'x-b-key': 'sk-b' } } });
    const res = await chat(undefined, {});
    expect(res.status).toBe(200);
    const sneaky = await request(`${h!.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.free}`, 'x-b-key': 'forged', x_b_key: 'forged' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(sneaky.statusCode).toBe(200);
    await sneaky.body.text();
    expect(h!.upstream.received.at(-1)!.headers['x-b-key']).toBeUndefined();
    expect(h!.upstream.received.at(-1)!.headers['x_b_key']).toBeUndefined();
  });
});

describe('requests the upstream API cannot take', () => {
  it('refuses with 400 in the client dialect, before any limit counts it and without calling the upstream', async () => {
    // An Anthropic Messages client whose model a Gemini-dialect upstream serves: no
    // translator covers that pair.
    await start(
      { models: { default: 'a-model', claude: 'b-model' }, rate_limits: { requests_per_minute: 1 } },
      { b: { dialect: 'gemini' } },
    );
    const res = await request(`${h!.proxy.url}/v1/messages`, {
      method: 'POST',
      headers: {
        'x-api-key': KEYS.free,
        'anthropic-version': '2023-06-01',
        'content-type': 'application/json',
      },
      body: JSON.stringify({ model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.statusCode).toBe(400);
    const body = (await res.body.json()) as { type: string; error: { type: string; message: string } };
    expect(body.type).toBe('error');
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toContain('gemini');
    expect(b!.received).toHaveLength(0);
    // The refusal used none of the one request a minute.
    expect((await chat()).status).toBe(200);
  });
});

describe('fallbacks', () => {
  it.each([429, 500, 502, 503, 504, 529])(
    'moves to the next model when the first answers %i, counts the request once and books the served model',
    async (status) => {
      await start(
        { models: { default: ['a-model', 'b-model'] }, rate_limits: { requests_per_minute: 1 } },
        {},
        { a: { kind: 'json', status, body: { error: { message: 'busy', type: 'server_error' } } } },
      );
      const res = await chat();
      expect(res.status).toBe(200);
      expect(res.json().model).toBe('b-model');
      expect(h!.upstream.received).toHaveLength(1);
      expect(b!.received).toHaveLength(1);
      expect((b!.received[0]!.body as { model: string }).model).toBe('b-model');
      await h!.settled(1);
      const [line] = h!.accessLogs();
      expect(line).toMatchObject({
        upstream: 'b',
        model: 'b-model',
        status: 200,
        input_tokens: 10,
        output_tokens: 5,
      });
      // b-model's price: 10 * 100 + 5 * 200 per million.
      expect(line!.cost_usd).toBeCloseTo((10 * 100 + 5 * 200) / 1e6, 12);
      expect(
        metricValue(await metrics(), 'lanekeeper_fallbacks_total', {
          from: 'a-model',
          to: 'b-model',
          reason: String(status),
        }),
      ).toBe(1);
      // One request per minute: the fallback did not count a second one.
      expect((await chat()).status).toBe(429);
    },
  );

  it('sends the next upstream none of the account headers only the first let clients send', async () => {
    await start(
      { models: { default: ['a-model', 'b-model'] } },
      { a: { pass_client_headers: ['anthropic-beta'] } },
      { a: { kind: 'json', status: 503, body: { error: { message: 'busy', type: 'server_error' } } } },
    );
    const res = await request(`${h!.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${KEYS.free}`,
        'content-type': 'application/json',
        'anthropic-beta': 'files-api-2025-04-14',
      },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(h!.upstream.received[0]!.headers['anthropic-beta']).toBe('files-api-2025-04-14');
    expect(b!.received[0]!.headers['anthropic-beta']).toBeUndefined();
  });

  it('moves on when the first upstream cannot be reached, and when it does not answer in time', async () => {
    await start(
      { models: { default: ['a-model', 'b-model'], slow: ['a-slow', 'b-model'] } },
      { a: { url: REFUSING_UPSTREAM } },
    );
    const res = await chat();
    expect(res.status).toBe(200);
    expect(res.json().model).toBe('b-model');
    expect(metricValue(await metrics(), 'lanekeeper_fallbacks_total', { reason: 'connect_error' })).toBe(1);
  });

  it('moves on when the upstream does not answer before its timeout', async () => {
    await start(
      { models: { default: ['a-model', 'b-model'] } },
      { a: { timeout_ms: 300 } },
      { a: { kind: 'hang' } },
    );
    const res = await chat();
    expect(res.status).toBe(200);
    expect(res.json().model).toBe('b-model');
    expect(metricValue(await metrics(), 'lanekeeper_fallbacks_total', { reason: 'timeout' })).toBe(1);
  });

  it('never falls back once the client has a byte: a stream cut mid-way stays cut', async () => {
    await start(
      { models: { default: ['a-model', 'b-model'] } },
      {},
      {
        a: {
          kind: 'stream',
          chunks: chatStream(
            'a-model',
            ['Hel', 'lo', ' there'],
            { prompt_tokens: 3, completion_tokens: 3 },
            true,
          ),
          cutAfter: 2,
        },
      },
    );
    const res = await request(`${h!.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], stream: true }),
    });
    expect(res.statusCode).toBe(200);
    let text = '';
    // The proxy cuts the client's stream too, so the client sees a truncated answer.
    await expect(
      (async () => {
        for await (const chunk of res.body) text += String(chunk);
      })(),
    ).rejects.toThrow();
    expect(text).toContain('Hel');
    expect(b!.received).toHaveLength(0);
  });

  it('passes a failure on, status kept, when no fallback is left', async () => {
    await start(
      { models: { default: ['a-model', 'b-model'] } },
      {},
      {
        a: { kind: 'json', status: 503, body: { error: { message: 'a down' } } },
        b: { kind: 'json', status: 502, body: { error: { message: 'b down' } } },
      },
    );
    const res = await chat();
    expect(res.status).toBe(502);
    expect(res.text).toContain('b down');
  });

  it('does not fall back on a client error (400): the next model would refuse it too', async () => {
    await start(
      { models: { default: ['a-model', 'b-model'] } },
      {},
      { a: { kind: 'json', status: 400, body: { error: { message: 'bad' } } } },
    );
    expect((await chat()).status).toBe(400);
    expect(b!.received).toHaveLength(0);
  });
});

describe('fallbacks and spend budgets', () => {
  it('reserve at the dearest model of the chain: a fallback to a pricier model stays within budget', async () => {
    // a-model costs 1/2 per million tokens, b-model 100/200; b answers with as many tokens as allowed.
    const BUDGET = 0.5;
    await start(
      {
        models: { default: ['a-model', 'b-model'] },
        max_output_tokens: 1000,
        rate_limits: { budget_usd_per_day: BUDGET },
      },
      {},
      {
        a: { kind: 'json', status: 503, body: { error: { message: 'busy', type: 'server_error' } } },
        b: (req) => {
          const asked = req.body as { max_completion_tokens?: number; max_tokens?: number };
          const out = asked.max_completion_tokens ?? asked.max_tokens ?? 1000;
          return {
            kind: 'json',
            body: chatCompletion('b-model', 'ok', {
              prompt_tokens: 10,
              completion_tokens: out,
              total_tokens: 10 + out,
            }),
          };
        },
      },
    );
    const replies = await Promise.all(Array.from({ length: 8 }, () => chat(undefined, { max_tokens: 1000 })));
    const served = replies.filter((r) => r.status === 200).length;
    expect(served).toBeGreaterThan(0);
    expect(replies.every((r) => r.status === 200 || r.status === 429)).toBe(true);
    await h!.settled(replies.length);
    const spent = h!.accessLogs().reduce((sum, line) => sum + ((line.cost_usd as number | null) ?? 0), 0);
    // Reserved at a-model's price, all eight were admitted and b served them: 8 × $0.201.
    expect(spent).toBeGreaterThan(0);
    expect(spent).toBeLessThanOrEqual(BUDGET + 1e-9);
  });
});

describe('retries', () => {
  it('retries on the same upstream, honouring Retry-After, and counts each retry', async () => {
    await start(
      { models: { default: 'a-model' } },
      { a: { retries: { attempts: 3, on: [503], max_backoff_ms: 5_000 } } },
      {
        a: (n) =>
          n < 3
            ? {
                kind: 'json',
                status: 503,
                headers: { 'retry-after': '1' },
                body: { error: { message: 'later' } },
              }
            : servedBy('a-model'),
      },
    );
    const started = Date.now();
    const res = await chat();
    expect(res.status).toBe(200);
    expect(h!.upstream.received).toHaveLength(3);
    // Two waits of the upstream's one second each (a lower bound: never sooner).
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
    expect(
      metricValue(await metrics(), 'lanekeeper_upstream_retries_total', { upstream: 'a', reason: '503' }),
    ).toBe(2);
    expect(
      metricValue(await metrics(), 'lanekeeper_upstream_requests_total', { upstream: 'a', status: '503' }),
    ).toBe(2);
  });

  it('does not retry past the upstream timeout, and does not retry what `on` does not name', async () => {
    await start(
      { models: { default: 'a-model' } },
      { a: { timeout_ms: 1_000, retries: { attempts: 5, on: [503] } } },
      {
        a: {
          kind: 'json',
          status: 503,
          headers: { 'retry-after': '30' },
          body: { error: { message: 'later' } },
        },
      },
    );
    expect((await chat()).status).toBe(503);
    expect(h!.upstream.received).toHaveLength(1);
    await h!.close();
    h = undefined;
    await b!.close();
    await start(
      { models: { default: 'a-model' } },
      { a: { retries: { attempts: 5, on: [503] } } },
      { a: { kind: 'json', status: 500, body: { error: { message: 'broken' } } } },
    );
    expect((await chat()).status).toBe(500);
    expect(h!.upstream.received).toHaveLength(1);
  });
});

describe('outlier ejection', () => {
  it('skips an upstream after eject_after failures, then lets one probe back in', async () => {
    let healthy = false;
    await start(
      { models: { default: ['a-model', 'b-model'] } },
      { a: { eject_after: 2, eject_for_ms: 400 } },
      {
        a: () =>
          healthy ? servedBy('a-model') : { kind: 'json', status: 503, body: { error: { message: 'down' } } },
      },
    );
    expect((await chat()).json().model).toBe('b-model');
    expect((await chat()).json().model).toBe('b-model');
    expect(metricValue(await metrics(), 'lanekeeper_upstream_up', { upstream: 'a' })).toBe(0);
    // Ejected: a is not called at all.
    expect((await chat()).json().model).toBe('b-model');
    expect(h!.upstream.received).toHaveLength(2);
    healthy = true;
    await new Promise((r) => setTimeout(r, 450));
    // The probe goes to a, succeeds, and a is back.
    expect((await chat()).json().model).toBe('a-model');
    expect(metricValue(await metrics(), 'lanekeeper_upstream_up', { upstream: 'a' })).toBe(1);
    expect((await chat()).json().model).toBe('a-model');
  });
});
