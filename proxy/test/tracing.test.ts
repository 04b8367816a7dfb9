/**
 * Traces through the real proxy: an OTLP/HTTP receiver in the test gets one SERVER span per
 * request continuing the client's traceparent, a rate-limit child, a CLIENT span per upstream
 * call whose traceparent the fake upstream received, GenAI and HTTP attributes, and never a
 * prompt or a completion.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatCompletion, chatStream, type Received, type Reply } from './helpers/fake-upstream.js';
import { KEYS, startHarness, type Harness } from './helpers/harness.js';
import {
  startOtlpReceiver,
  type OtlpReceiver,
  type ReceivedSpan,
} from '../../test/fakes/otlp/otlp-receiver.js';

const PROMPT = 'secret-prompt-words-7781';
const COMPLETION = 'secret-completion-words-9923';
const STREAMED = ['stream-piece-alpha-551', 'stream-piece-beta-552'];
const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
// OTLP span kinds.
const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;

/** Answers with the model it was sent (and the usage a test asserts), as JSON or a stream. */
const echoModel = (req: Received): Reply => {
  const body = req.body as { model?: string; stream?: boolean };
  if (body.stream)
    return {
      kind: 'stream',
      chunks: chatStream(
        body.model ?? 'm',
        STREAMED,
        { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 },
        true,
      ),
    };
  return {
    kind: 'json',
    body: chatCompletion(`${body.model ?? 'm'}-2025`, COMPLETION, {
      prompt_tokens: 10,
      completion_tokens: 20,
      total_tokens: 30,
    }),
  };
};

let h: Harness;
let otlp: OtlpReceiver;

beforeAll(async () => {
  otlp = await startOtlpReceiver();
  h = await startHarness({
    reply: echoModel,
    config: (base) => ({
      ...base,
      telemetry: { otlp_endpoint: otlp.url, sample_ratio: 1, service_name: 'proxy-under-test' },
    }),
    start: { traceExportDelayMs: 50 },
  });
});
afterAll(async () => {
  await h.close();
  await otlp.close();
});

async function chat(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const res = await request(`${h.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ messages: [{ role: 'user', content: PROMPT }], ...body }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, text, requestId: String(res.headers['x-lanekeeper-request-id']) };
}

const requestSpan = (requestId: string) =>
  otlp.waitFor((s) => s.kind === SERVER && s.attributes['lanekeeper.request_id'] === requestId);

const childrenOf = (parent: ReceivedSpan) => otlp.spans.filter((s) => s.parentSpanId === parent.spanId);

function parseTraceparent(value: unknown): { traceId: string; spanId: string; flags: string } {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(String(value));
  if (!match) throw new Error(`not a traceparent: ${String(value)}`);
  return { traceId: match[1] as string, spanId: match[2] as string, flags: match[3] as string };
}

describe('tracing through the proxy', () => {
  it('exports a server span for a JSON request continuing the incoming traceparent', async () => {
    const res = await chat({ model: 'small-model' }, { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` });
    expect(res.status).toBe(200);
    expect(res.text).toContain(COMPLETION);
    const span = await requestSpan(res.requestId);
    expect(span.traceId).toBe(CLIENT_TRACE);
    expect(span.parentSpanId).toBe(CLIENT_SPAN);
    expect(span.name).toBe('POST /v1/chat/completions');
    expect(span.resource['service.name']).toBe('proxy-under-test');
    expect(span.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.path': '/v1/chat/completions',
      'url.scheme': 'http',
      'server.address': '127.0.0.1',
      'http.response.status_code': 200,
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'small-model',
      'gen_ai.response.model': 'small-model-2025',
      'gen_ai.usage.input_tokens': 10,
      'gen_ai.usage.output_tokens': 20,
      'lanekeeper.tenant': 'acme',
      'lanekeeper.plan': 'free',
      'lanekeeper.usage.provenance': 'reported',
      'lanekeeper.stream': false,
    });
    // small-model: $1 and $2 per million tokens.
    expect(span.attributes['lanekeeper.cost_usd']).toBeCloseTo((10 * 1 + 20 * 2) / 1e6, 12);
    expect(span.status.code ?? 0).not.toBe(ERROR);
  });

  it('sends the upstream a traceparent that is a child of the request span', async () => {
    const res = await chat({ model: 'small-model' }, { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` });
    const sent = parseTraceparent(h.lastReceived().headers.traceparent);
    const span = await requestSpan(res.requestId);
    expect(sent.traceId).toBe(CLIENT_TRACE);
    expect(sent.flags).toBe('01');
    const call = await otlp.waitFor((s) => s.spanId === sent.spanId);
    expect(call.kind).toBe(CLIENT);
    expect(call.parentSpanId).toBe(span.spanId);
    expect(call.name).toBe('chat small-model');
    expect(call.attributes).toMatchObject({
      'http.request.method': 'POST',
      'server.address': '127.0.0.1',
      'http.response.status_code': 200,
      'gen_ai.request.model': 'small-model',
      'gen_ai.response.model': 'small-model-2025',
      'gen_ai.usage.input_tokens': 10,
      'lanekeeper.upstream': 'default',
    });
    expect(String(call.attributes['url.full'])).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions$/);
  });

  it("sends a client's tracestate upstream with the trace it came with, and never with a new one", async () => {
    const cases = [
      // A valid traceparent, sampled or not: the trace goes on, and its tracestate with it.
      { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`, continues: true },
      { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-00`, continues: true },
      // No traceparent, or one that is invalid (all-zero ids, bad hex, two of them joined):
      // a new trace, so the tracestate is discarded (W3C Trace Context, processing model).
      { traceparent: undefined, continues: false },
      { traceparent: `00-${'0'.repeat(32)}-${CLIENT_SPAN}-01`, continues: false },
      { traceparent: `00-${CLIENT_TRACE.replace('4b', 'zz')}-${CLIENT_SPAN}-01`, continues: false },
      {
        traceparent: [`00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`, `00-${'ab'.repeat(16)}-${CLIENT_SPAN}-01`],
        continues: false,
      },
    ];
    for (const { traceparent, continues } of cases) {
      const headers: Record<string, string | string[]> = { tracestate: 'vendor=opaque,other=1' };
      if (traceparent !== undefined) headers.traceparent = traceparent;
      const res = await request(`${h.proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.free}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ model: 'small-model', messages: [{ role: 'user', content: PROMPT }] }),
      });
      await res.body.text();
      expect(res.statusCode).toBe(200);
      const received = h.lastReceived().headers;
      const sent = parseTraceparent(received.traceparent);
      const label = JSON.stringify(traceparent);
      expect([label, sent.traceId === CLIENT_TRACE]).toEqual([label, continues]);
      expect([label, received.tracestate]).toEqual([label, continues ? 'vendor=opaque,other=1' : undefined]);
    }
  });

  it('wraps the rate-limit admission in a child span', async () => {
    const res = await chat({ model: 'small-model' });
    const span = await requestSpan(res.requestId);
    // A new trace: no incoming traceparent.
    expect(span.parentSpanId).toBe('');
    expect(span.traceId).not.toBe(CLIENT_TRACE);
    const admission = childrenOf(span).find((s) => s.name === 'lanekeeper.rate_limit');
    expect(admission?.attributes['lanekeeper.admitted']).toBe(true);
  });

  it('exports a streamed request with its usage', async () => {
    const res = await chat(
      { model: 'small-model', stream: true },
      { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` },
    );
    expect(res.status).toBe(200);
    expect(res.text).toContain(STREAMED[0]);
    const span = await requestSpan(res.requestId);
    expect(span.parentSpanId).toBe(CLIENT_SPAN);
    expect(span.attributes).toMatchObject({
      'lanekeeper.stream': true,
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'small-model',
      'gen_ai.usage.input_tokens': 12,
      'gen_ai.usage.output_tokens': 7,
      'http.response.status_code': 200,
      'lanekeeper.tenant': 'acme',
    });
    const sent = parseTraceparent(h.lastReceived().headers.traceparent);
    const call = await otlp.waitFor((s) => s.spanId === sent.spanId);
    expect(call.parentSpanId).toBe(span.spanId);
  });

  it('marks a failed upstream call and its request as errors', async () => {
    h.upstream.reply({ kind: 'json', status: 503, body: { error: { message: 'overloaded' } } });
    try {
      const res = await chat({ model: 'small-model' });
      expect(res.status).toBe(503);
      const span = await requestSpan(res.requestId);
      expect(span.status.code).toBe(ERROR);
      expect(span.attributes['http.response.status_code']).toBe(503);
      const call = childrenOf(span).find((s) => s.kind === CLIENT);
      expect(call?.status.code).toBe(ERROR);
      expect(call?.attributes['error.type']).toBe('503');
    } finally {
      h.upstream.reply(() => ({ kind: 'json', body: chatCompletion('small-model', COMPLETION, {}) }));
    }
  });

  it("gives every span its own request's tenant, plan, models and stream, whatever spans came before", async () => {
    // Spans copy runs of attributes already written for equal values (otel-request-tracer.ts
    // RunCache): interleaved tenants sharing a plan, models and both response kinds must each
    // read back exactly as sent, repeated combinations included.
    const tenants = [
      { id: 'globex', key: KEYS.pro, plan: 'pro' },
      { id: 'hooli', key: KEYS.pro2, plan: 'pro' },
      { id: 'acme', key: KEYS.free, plan: 'free' },
    ];
    h.upstream.reply(echoModel);
    const sent = [];
    for (let i = 0; i < 12; i++) {
      const tenant = tenants[i % 3]!;
      const asked = tenant.plan === 'pro' && i % 2 === 1 ? 'smart' : 'small-model';
      const stream = i % 4 < 2;
      const res = await request(`${h.proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tenant.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: asked, stream, messages: [{ role: 'user', content: PROMPT }] }),
      });
      await res.body.text();
      expect(res.statusCode).toBe(200);
      const model = asked === 'smart' ? 'big-model' : 'small-model';
      sent.push({ requestId: String(res.headers['x-lanekeeper-request-id']), tenant, asked, model, stream });
    }
    for (const one of sent) {
      const span = await requestSpan(one.requestId);
      const responseModel = one.stream ? one.model : `${one.model}-2025`;
      expect(span.attributes).toMatchObject({
        'lanekeeper.tenant': one.tenant.id,
        'lanekeeper.plan': one.tenant.plan,
        'lanekeeper.model_requested': one.asked,
        'gen_ai.request.model': one.model,
        'gen_ai.response.model': responseModel,
        'lanekeeper.stream': one.stream,
      });
      const call = childrenOf(span).find((s) => s.kind === CLIENT);
      expect(call?.name).toBe(`chat ${one.model}`);
      expect(call?.attributes).toMatchObject({
        'gen_ai.request.model': one.model,
        'gen_ai.response.model': responseModel,
      });
      // The tenant on every span, children included.
      const family = [span, ...childrenOf(span)];
      expect(family.map((s) => s.name).sort()).toEqual(
        [`chat ${one.model}`, 'POST /v1/chat/completions', 'lanekeeper.rate_limit'].sort(),
      );
      for (const s of family)
        expect([s.name, s.attributes['lanekeeper.tenant']]).toEqual([s.name, one.tenant.id]);
    }
  });

  it('names on every span the tenant the key identifies, whatever tenant headers the client adds', async () => {
    const res = await chat(
      { model: 'small-model' },
      { 'x-tenant-id': 'globex', 'x-lanekeeper-tenant': 'globex', tenant: 'globex' },
    );
    expect(res.status).toBe(200);
    const span = await requestSpan(res.requestId);
    const family = [span, ...childrenOf(span)];
    expect(family).toHaveLength(3);
    for (const s of family) expect([s.name, s.attributes['lanekeeper.tenant']]).toEqual([s.name, 'acme']);
  });

  it('never exports a prompt, a completion or a credential', async () => {
    await otlp.waitFor(() => otlp.bodies.length > 0);
    const everything = otlp.bodies.join('\n');
    expect(everything.length).toBeGreaterThan(0);
    for (const secret of [PROMPT, COMPLETION, ...STREAMED, KEYS.free, 'sk-upstream-secret'])
      expect(everything).not.toContain(secret);
  });
});

describe('requests that end early', () => {
  const jsonReply = () => ({ kind: 'json' as const, body: chatCompletion('small-model', COMPLETION, {}) });
  const serverSpansOf = (traceId: string) =>
    otlp.spans.filter((s) => s.kind === SERVER && s.traceId === traceId);

  /** Opens a raw connection and sends a chat request's head and the first `sent` bytes of its body. */
  async function rawChat(traceId: string, body: string, sent: number) {
    const url = new URL(h.proxy.url);
    const socket = connect(Number(url.port), url.hostname);
    await once(socket, 'connect');
    const head = [
      'POST /v1/chat/completions HTTP/1.1',
      `host: ${url.host}`,
      `authorization: Bearer ${KEYS.free}`,
      'content-type: application/json',
      `content-length: ${Buffer.byteLength(body)}`,
      `traceparent: 00-${traceId}-${CLIENT_SPAN}-01`,
      '',
      '',
    ].join('\r\n');
    await new Promise<void>((resolve, reject) =>
      socket.write(head + body.slice(0, sent), (error) => (error ? reject(error) : resolve())),
    );
    return socket;
  }

  /** Waits for a later request's span: batches go out in order, so anything due has arrived. */
  async function flushed() {
    const res = await chat({ model: 'small-model' });
    await requestSpan(res.requestId);
  }

  it('ends the request span of a client that hangs up mid-upload, once, as client_aborted', async () => {
    const traceId = 'a1'.repeat(16);
    const body = JSON.stringify({
      model: 'small-model',
      messages: [{ role: 'user', content: 'x'.repeat(4_000) }],
    });
    const socket = await rawChat(traceId, body, body.length / 2);
    socket.destroy();
    const span = await otlp.waitFor((s) => s.kind === SERVER && s.traceId === traceId);
    expect(span.parentSpanId).toBe(CLIENT_SPAN);
    expect(span.attributes['lanekeeper.outcome']).toBe('client_aborted');
    expect(span.attributes['url.path']).toBe('/v1/chat/completions');
    await flushed();
    expect(serverSpansOf(traceId)).toHaveLength(1);
    // Nothing went upstream, so no call span either.
    expect(otlp.spans.filter((s) => s.traceId === traceId && s.kind === CLIENT)).toEqual([]);
  });

  it('ends the request span and its call span of a client that hangs up mid-stream', async () => {
    const pieces = Array.from({ length: 200 }, (_, i) => `piece-${i}`);
    h.upstream.reply({
      kind: 'stream',
      chunks: chatStream('small-model', pieces, { prompt_tokens: 3, completion_tokens: 200 }, true),
      delayMs: 20,
    });
    try {
      const traceId = 'b2'.repeat(16);
      const body = JSON.stringify({
        model: 'small-model',
        stream: true,
        messages: [{ role: 'user', content: 'hi' }],
      });
      const socket = await rawChat(traceId, body, body.length);
      // The stream has begun reaching the client when it hangs up.
      await once(socket, 'data');
      socket.destroy();
      const span = await otlp.waitFor((s) => s.kind === SERVER && s.traceId === traceId, 15_000);
      expect(span.attributes['lanekeeper.outcome']).toBe('client_aborted');
      expect(span.attributes['lanekeeper.stream']).toBe(true);
      const call = await otlp.waitFor((s) => s.kind === CLIENT && s.traceId === traceId);
      expect(call.parentSpanId).toBe(span.spanId);
      h.upstream.reply(jsonReply);
      await flushed();
      expect(serverSpansOf(traceId)).toHaveLength(1);
    } finally {
      h.upstream.reply(jsonReply);
    }
  }, 20_000);

  it('ends the request span of a request refused locally, once', async () => {
    const traceId = 'c3'.repeat(16);
    const res = await request(`${h.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer not-a-key',
        'content-type': 'application/json',
        traceparent: `00-${traceId}-${CLIENT_SPAN}-01`,
      },
      body: JSON.stringify({ model: 'small-model', messages: [] }),
    });
    await res.body.text();
    expect(res.statusCode).toBe(401);
    const span = await otlp.waitFor((s) => s.kind === SERVER && s.traceId === traceId);
    expect(span.attributes['lanekeeper.outcome']).toBe('local_reply');
    expect(span.attributes['http.response.status_code']).toBe(401);
    await flushed();
    expect(serverSpansOf(traceId)).toHaveLength(1);
    // No tenant was identified: no span of the trace names one.
    const trace = otlp.spans.filter((s) => s.traceId === traceId);
    expect(trace.length).toBeGreaterThan(0);
    for (const s of trace) expect(s.attributes).not.toHaveProperty('lanekeeper.tenant');
  });
});

describe('trace ids in logs and metrics', () => {
  it('puts the trace id on the access-log line', async () => {
    const count = h.accessLogs().length;
    const res = await chat({ model: 'small-model' });
    await h.settled(count + 1);
    const span = await requestSpan(res.requestId);
    const line = h.accessLogs().find((l) => l.request_id === res.requestId);
    expect(line?.trace_id).toBe(span.traceId);
  });

  it('serves OpenMetrics with trace-id exemplars on the duration histogram when asked', async () => {
    const res = await chat({ model: 'small-model' });
    const span = await requestSpan(res.requestId);
    const om = await fetch(`${h.proxy.adminUrl}/metrics`, {
      headers: { accept: 'application/openmetrics-text; version=1.0.0' },
    });
    expect(om.headers.get('content-type')).toContain('application/openmetrics-text');
    const text = await om.text();
    expect(text.endsWith('# EOF\n')).toBe(true);
    const exemplars = text
      .split('\n')
      .filter(
        (l) => l.startsWith('lanekeeper_request_duration_seconds_bucket') && l.includes(' # {trace_id="'),
      );
    expect(exemplars.length).toBeGreaterThan(0);
    expect(text).toContain(`trace_id="${span.traceId}"`);
    expect(text).toMatch(/^lanekeeper_requests_total\{/m);
    expect(text).not.toMatch(/_total_total/);
    // The Prometheus text that follows is untouched (prom-client renames counters in place).
    const plain = await (await fetch(`${h.proxy.adminUrl}/metrics`)).text();
    expect(plain).toMatch(/^lanekeeper_requests_total\{/m);
    expect(plain).not.toContain('# {trace_id=');
    expect(plain).not.toContain('# EOF');
    // promtool check metrics parses only the Prometheus text format (exemplars are a parse error there).
    await promtoolAccepts(plain);
  });
});

/** `promtool check metrics` on the text when promtool is installed; lint findings are fine, parse errors are not. */
async function promtoolAccepts(text: string): Promise<void> {
  const { existsSync } = await import('node:fs');
  if (!existsSync('/usr/bin/promtool')) return;
  const { spawnSync } = await import('node:child_process');
  const run = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  expect(run.stderr + run.stdout).not.toMatch(/error while linting|parse error|text format parsing error/i);
}
