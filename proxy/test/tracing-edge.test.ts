/**
 * Tracing at its edges, through the real proxy: off (an incoming traceparent passes through
 * untouched), sampled out (nothing exported), a collector that is down (requests unharmed, one
 * warning), and hostile settings refused at start.
 */
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startProxy } from '../src/main.js';
import { ConfigError } from '../src/errors.js';
import { chatCompletion, startFakeUpstream, type FakeUpstream } from './helpers/fake-upstream.js';
import { baseConfig, KEYS, startHarness, type Harness } from './helpers/harness.js';
import { freePort } from './helpers/waiting.js';
import { startOtlpReceiver, type OtlpReceiver } from '../../test/fakes/otlp/otlp-receiver.js';

const INCOMING = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const reply = {
  kind: 'json' as const,
  body: chatCompletion('small-model', 'ok', { prompt_tokens: 1, completion_tokens: 1 }),
};

let h: Harness | undefined;
let otlp: OtlpReceiver | undefined;
let second: FakeUpstream | undefined;
afterEach(async () => {
  await h?.close();
  await otlp?.close();
  await second?.close();
  h = undefined;
  otlp = undefined;
  second = undefined;
});

/** A receiver, and a proxy tracing to it from the environment `env` (OTEL_* only, no telemetry: block). */
async function tracedFromEnv(env: (receiverUrl: string) => Record<string, string>): Promise<Harness> {
  otlp = await startOtlpReceiver();
  h = await startHarness({ reply, start: { traceExportDelayMs: 20, env: env(otlp.url) } });
  return h;
}

/** Waits for `requests` access-log lines, stops the proxy (flushing any span) and checks nothing was exported. */
async function expectNothingExported(requests: number): Promise<void> {
  await h!.settled(requests);
  await h!.close();
  h = undefined;
  expect(otlp!.bodies).toEqual([]);
}

async function chat(harness: Harness, headers: Record<string, string> = {}) {
  const res = await request(`${harness.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'small-model', messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.body.text();
  return res.statusCode;
}

describe('tracing off', () => {
  it('passes an incoming traceparent upstream untouched', async () => {
    h = await startHarness({ reply });
    expect(await chat(h, { traceparent: INCOMING, tracestate: 'vendor=1' })).toBe(200);
    expect(h.lastReceived().headers.traceparent).toBe(INCOMING);
    expect(h.lastReceived().headers.tracestate).toBe('vendor=1');
    expect(h.logs.some((l) => l.msg === 'tracing on')).toBe(false);
  });

  it('ignores OTEL_* variables when OTEL_SDK_DISABLED is true', async () => {
    h = await startHarness({
      reply,
      start: { env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_SDK_DISABLED: 'true' } },
    });
    expect(await chat(h, { traceparent: INCOMING })).toBe(200);
    expect(h.lastReceived().headers.traceparent).toBe(INCOMING);
  });
});

describe('sampling', () => {
  it('exports nothing at sample_ratio 0, yet still sends a fresh traceparent upstream', async () => {
    otlp = await startOtlpReceiver();
    const endpoint = otlp.url;
    h = await startHarness({
      reply,
      config: (base) => ({ ...base, telemetry: { otlp_endpoint: endpoint, sample_ratio: 0 } }),
      start: { traceExportDelayMs: 20 },
    });
    expect(await chat(h)).toBe(200);
    const sent = String(h.lastReceived().headers.traceparent);
    expect(sent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    // A client that did not sample its trace is not sampled here either.
    expect(await chat(h, { traceparent: INCOMING.replace(/-01$/, '-00') })).toBe(200);
    await expectNothingExported(2);
  });

  it('reads the ratio and the endpoint from OTEL_* when the config has none', async () => {
    const traced = await tracedFromEnv((url) => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: url,
      OTEL_TRACES_SAMPLER_ARG: '1',
      OTEL_SERVICE_NAME: 'env-named',
    }));
    expect(await chat(traced)).toBe(200);
    const span = await otlp!.waitFor((s) => s.kind === 2);
    expect(span.resource['service.name']).toBe('env-named');
    expect(otlp!.contentTypes[0]).toBe('application/x-protobuf');
  });

  it.each(['http/protobuf', 'http/json'])(
    'puts OTEL_RESOURCE_ATTRIBUTES on the resource, decoded, under OTEL_SERVICE_NAME (%s)',
    async (protocol) => {
      const traced = await tracedFromEnv((url) => ({
        OTEL_EXPORTER_OTLP_ENDPOINT: url,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
        OTEL_SERVICE_NAME: 'env-named',
        OTEL_RESOURCE_ATTRIBUTES:
          'deployment.environment.name=prod, service.name=overridden,k8s.pod.name=lk-7f9c,team=a%2Cb%3Dc%20%C3%A9',
      }));
      expect(await chat(traced)).toBe(200);
      const span = await otlp!.waitFor((s) => s.kind === 2);
      expect(span.resource).toEqual({
        'service.name': 'env-named',
        'deployment.environment.name': 'prod',
        'k8s.pod.name': 'lk-7f9c',
        team: 'a,b=c é',
      });
    },
  );

  it('exports nothing under OTEL_TRACES_SAMPLER=always_off, even for a sampled caller', async () => {
    const traced = await tracedFromEnv((url) => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: url,
      OTEL_TRACES_SAMPLER: 'always_off',
    }));
    expect(await chat(traced)).toBe(200);
    expect(String(traced.lastReceived().headers.traceparent)).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(await chat(traced, { traceparent: INCOMING })).toBe(200);
    // The caller's trace goes on upstream, not sampled: the sampler is not parent-based.
    expect(String(traced.lastReceived().headers.traceparent)).toMatch(
      new RegExp(`^00-${INCOMING.split('-')[1]}-[0-9a-f]{16}-00$`),
    );
    await expectNothingExported(2);
  });

  it('samples by its own ratio under OTEL_TRACES_SAMPLER=traceidratio, whatever the caller decided', async () => {
    const traced = await tracedFromEnv((url) => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: url,
      OTEL_TRACES_SAMPLER: 'traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '1',
    }));
    const unsampled = INCOMING.replace(/-01$/, '-00');
    expect(await chat(traced, { traceparent: unsampled })).toBe(200);
    const sent = String(traced.lastReceived().headers.traceparent);
    expect(sent).toMatch(new RegExp(`^00-${INCOMING.split('-')[1]}-[0-9a-f]{16}-01$`));
    const span = await otlp!.waitFor((s) => s.kind === 2);
    expect(span.traceId).toBe(INCOMING.split('-')[1]);
    expect(span.parentSpanId).toBe(INCOMING.split('-')[2]);
    expect(traced.logs.find((l) => l.msg === 'tracing on')).toMatchObject({
      sample_ratio: 1,
      parent_based: false,
    });
  });

  it('posts to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, over the general endpoint', async () => {
    const traced = await tracedFromEnv((url) => ({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${url}/custom/spans`,
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
    }));
    expect(await chat(traced)).toBe(200);
    await traced.settled(1);
    // Closing flushes the spans.
    await traced.close();
    h = undefined;
    expect(otlp!.paths.length).toBeGreaterThan(0);
    expect(new Set(otlp!.paths)).toEqual(new Set(['/custom/spans']));
    // Protobuf keeps attribute keys as UTF-8: the request's spans are in the body.
    expect(otlp!.bodies.join('')).toContain('gen_ai.operation.name');
    expect(otlp!.bodies.join('')).toContain('lanekeeper.rate_limit');
  });

  it('traces nothing when OTEL_TRACES_EXPORTER is none', async () => {
    const traced = await tracedFromEnv((url) => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: url,
      OTEL_TRACES_EXPORTER: 'none',
    }));
    expect(await chat(traced, { traceparent: INCOMING })).toBe(200);
    expect(traced.lastReceived().headers.traceparent).toBe(INCOMING);
    expect(traced.logs.some((l) => l.msg === 'tracing on')).toBe(false);
    await expectNothingExported(1);
  });

  it('exports OTLP/JSON when OTEL_EXPORTER_OTLP_PROTOCOL is http/json', async () => {
    const traced = await tracedFromEnv((url) => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    }));
    expect(await chat(traced, { traceparent: INCOMING })).toBe(200);
    const span = await otlp!.waitFor((s) => s.kind === 2);
    expect(otlp!.contentTypes[0]).toBe('application/json');
    expect(JSON.parse(otlp!.bodies[0]!)).toHaveProperty('resourceSpans');
    expect(span.traceId).toBe(INCOMING.split('-')[1]);
    expect(span.attributes['http.response.status_code']).toBe(200);
    const children = await otlp!.waitFor((s) => s.parentSpanId === span.spanId && s.kind === 3);
    expect(children.attributes['gen_ai.request.model']).toBeDefined();
  });
});

describe('a fallback', () => {
  it('exports a call span per upstream tried, the failed one an error, each sent its own traceparent', async () => {
    otlp = await startOtlpReceiver();
    const served = chatCompletion('b-model', 'ok', { prompt_tokens: 3, completion_tokens: 4 });
    second = await startFakeUpstream({ kind: 'json', body: served });
    const url = second.url;
    h = await startHarness({
      reply: { kind: 'json', status: 503, body: { error: { message: 'busy', type: 'server_error' } } },
      config: (base) => {
        const { upstream: first, ...rest } = base;
        return {
          ...rest,
          upstreams: {
            a: {
              ...(first as Record<string, unknown>),
              dialect: 'openai',
              models: ['a-*', 'small-model', 'big-model'],
            },
            b: { url, dialect: 'openai', models: ['b-*'] },
          },
          plans: {
            ...(base.plans as Record<string, unknown>),
            free: { models: { default: ['a-model', 'b-model'] } },
          },
          telemetry: { otlp_endpoint: otlp!.url },
        };
      },
      start: { traceExportDelayMs: 20 },
    });
    const res = await request(`${h.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${KEYS.free}`,
        'content-type': 'application/json',
        traceparent: INCOMING,
      },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    const server = await otlp.waitFor((s) => s.kind === 2);
    expect(server.parentSpanId).toBe('00f067aa0ba902b7');
    expect(server.attributes).toMatchObject({
      'lanekeeper.upstream': 'b',
      'gen_ai.request.model': 'b-model',
      'gen_ai.usage.output_tokens': 4,
    });
    await otlp.waitFor((s) => s.kind === 3 && s.attributes['lanekeeper.upstream'] === 'b');
    const calls = otlp.spans.filter((s) => s.kind === 3 && s.parentSpanId === server.spanId);
    expect(calls.map((s) => s.attributes['lanekeeper.upstream'])).toEqual(['a', 'b']);
    const [failed, ok] = calls;
    expect(failed?.status.code).toBe(2);
    expect(failed?.attributes).toMatchObject({ 'http.response.status_code': 503, 'error.type': '503' });
    expect(failed?.attributes['http.request.resend_count']).toBeUndefined();
    expect(ok?.status.code ?? 0).toBe(0);
    expect(ok?.attributes).toMatchObject({
      'http.response.status_code': 200,
      'http.request.resend_count': 1,
    });
    // Each upstream was sent the traceparent of its own call span, in the caller's trace.
    expect(h.lastReceived().headers.traceparent).toBe(`00-${server.traceId}-${failed?.spanId}-01`);
    expect(second.received[0]?.headers.traceparent).toBe(`00-${server.traceId}-${ok?.spanId}-01`);
    expect(server.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });
});

describe('a collector that is down', () => {
  const outageLines = (harness: Harness) =>
    harness.logs.filter((l) => l.dependency === 'trace export (otlp)');

  it('does not fail requests and logs one warning, without a stack', async () => {
    const port = await freePort();
    h = await startHarness({
      reply,
      config: (base) => ({ ...base, telemetry: { otlp_endpoint: `http://127.0.0.1:${port}` } }),
      start: { traceExportDelayMs: 20 },
    });
    for (let i = 0; i < 3; i++) expect(await chat(h)).toBe(200);
    const warnings = () => (h ? outageLines(h).filter((l) => l.level === 'warn') : []);
    for (let i = 0; i < 400 && warnings().length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    for (let i = 0; i < 3; i++) expect(await chat(h)).toBe(200);
    // Let the later batches fail too.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatchObject({
      msg: 'trace export (otlp) unavailable',
      endpoint: `http://127.0.0.1:${port}`,
    });
    expect(JSON.stringify(warnings()[0])).not.toContain('    at ');
    expect(h.logs.filter((l) => l.level === 'error')).toEqual([]);
  }, 20_000);

  it('logs three minutes of refused connections as one outage: a summary with the count, one recovery line', async () => {
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    // The outage log reads the clock once per export result while down: each failed batch
    // moves it 5 s, so 37 batches are three simulated minutes.
    let reads = 0;
    h = await startHarness({
      reply,
      config: (base) => ({ ...base, telemetry: { otlp_endpoint: endpoint } }),
      start: { traceExportDelayMs: 20, traceExportOutage: { now: () => ++reads * 5_000 } },
    });
    // Paced, not back to back: the batches come every 20 ms of wall time, and on a fast
    // machine 5,000 unpaced requests ended before 37 of them had failed.
    for (let i = 0; i < 4_000 && reads < 37; i++) {
      expect(await chat(h)).toBe(200);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(reads).toBeGreaterThanOrEqual(37);

    otlp = await startOtlpReceiver({ port });
    const recovered = () => outageLines(h!).filter((l) => l.level === 'info');
    for (let i = 0; i < 2_000 && recovered().length === 0; i++) {
      expect(await chat(h)).toBe(200);
      await new Promise((r) => setTimeout(r, 10));
    }
    // Later exports succeed without another recovery line.
    const seen = new Set(otlp.spans);
    expect(await chat(h)).toBe(200);
    await otlp.waitFor((span) => !seen.has(span));

    const warnings = outageLines(h).filter((l) => l.level === 'warn');
    expect(warnings.length).toBeGreaterThanOrEqual(2);
    expect(warnings.length).toBeLessThanOrEqual(5);
    expect(warnings[0]).toMatchObject({ msg: 'trace export (otlp) unavailable', endpoint });
    const summaries = warnings.filter((l) => l.msg === 'trace export (otlp) still unavailable');
    expect(summaries.length).toBeGreaterThanOrEqual(1);
    expect(summaries[0]).toMatchObject({ endpoint, failures: expect.any(Number) });
    expect(summaries[0]?.failures).toBeGreaterThanOrEqual(12);
    expect(recovered()).toHaveLength(1);
    expect(recovered()[0]).toMatchObject({ msg: 'trace export (otlp) available again', endpoint });
    expect(recovered()[0]?.failures).toBeGreaterThanOrEqual(36);
    expect(h.logs.filter((l) => JSON.stringify(l).includes('    at '))).toEqual([]);
    expect(h.logs.filter((l) => l.level === 'error')).toEqual([]);
  }, 60_000);
});

describe('the export delay from the environment', () => {
  it('exports as soon as OTEL_BSP_SCHEDULE_DELAY says, not after the default 2 s', async () => {
    otlp = await startOtlpReceiver();
    h = await startHarness({
      reply,
      start: { env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: ' 50 ' } },
    });
    expect(await chat(h)).toBe(200);
    const span = await otlp.waitFor((s) => s.kind === 2, 1_500);
    expect(span.attributes['http.response.status_code']).toBe(200);
  });
});

describe('hostile settings', () => {
  it.each([
    [{ sample_ratio: 1.5 }],
    [{ sample_ratio: -1 }],
    [{ sample_ratio: 'abc' }],
    [{ otlp_endpoint: 'not a url' }],
    [{ otlp_endpoint: 'file:///etc/passwd' }],
    [{ otlp_endpoint: 'http://127.0.0.1:4318', protocol: 'grpc' }],
  ])('refuses to start with telemetry %j', async (telemetry) => {
    const start = startProxy({ config: { ...baseConfig('http://127.0.0.1:9'), telemetry }, env: {} });
    await expect(start).rejects.toBeInstanceOf(ConfigError);
    await expect(start).rejects.toThrow(/telemetry\.(sample_ratio|otlp_endpoint|protocol)/);
  });

  it.each([
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'file:///tmp/spans' }, 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_SAMPLER_ARG: 'abc' },
      'OTEL_TRACES_SAMPLER_ARG',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
      'OTEL_EXPORTER_OTLP_PROTOCOL',
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_SAMPLER: 'always-on' },
      'OTEL_TRACES_SAMPLER',
    ],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'ftp://127.0.0.1/x' }, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'yes' }, 'OTEL_SDK_DISABLED'],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_EXPORTER: 'jaeger' },
      'OTEL_TRACES_EXPORTER',
    ],
    ...['0', '-5', '1e3', '1.5', '0x10', '100ms', '3600001', '99999999999', '\u0661\u0662', '__proto__'].map(
      (delay): [Record<string, string>, string] => [
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_BSP_SCHEDULE_DELAY: delay },
        'OTEL_BSP_SCHEDULE_DELAY',
      ],
    ),
  ])('refuses to start with the environment %j', async (env, variable) => {
    const start = startProxy({ config: baseConfig('http://127.0.0.1:9'), env });
    await expect(start).rejects.toBeInstanceOf(ConfigError);
    const { message } = (await start.catch((error: unknown) => error)) as Error;
    // Named once, as the problem's path: not "X: X must be ...".
    expect(message.split(variable).length - 1).toBe(1);
  });
});
