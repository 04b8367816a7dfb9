/**
 * A request's span ends exactly once, whichever way the request finished: completed, refused
 * by a stage, failed upstream, thrown inside the proxy, or left by a client mid-upload or
 * mid-wait. Counted with a recording tracer on the real handler and a fake upstream:
 * OpenTelemetry ignores a second end() and never exports a span that was not ended, so only
 * a count tells both mistakes apart.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { Pool, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { RequestContext } from '../src/context.js';
import { parseConfig } from '../src/config/schema.js';
import { InvalidRequestError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { buildRuntime } from '../src/runtime.js';
import { createProxyHandler } from '../src/server.js';
import { reply as localReply, type Stage } from '../src/stage.js';
import { createRecordMetricsStage } from '../src/stages/record-metrics.js';
import type { RequestTracer } from '../src/tracing/request-trace.js';
import { UpstreamHealth } from '../src/upstream/health.js';
import { UpstreamQuirks } from '../src/upstream-quirks.js';
import { chatCompletion, startFakeUpstream, type FakeUpstream, type Reply } from './helpers/fake-upstream.js';
import { baseConfig } from './helpers/harness.js';
import { REFUSING_UPSTREAM } from './helpers/waiting.js';
import { logLines } from '../../test/helpers/log-lines.js';

interface Ended {
  id: string;
  outcome: RequestContext['outcome'];
  status: number | undefined;
}

interface Proxy {
  url: string;
  upstream: FakeUpstream;
  started: string[];
  ended: Ended[];
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

let proxy: Proxy | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

/** The handler with `pipeline` below record-metrics, a recording tracer and a fake upstream. */
async function startProxy(pipeline: Stage[], answer: Reply, upstreamUrl?: string): Promise<Proxy> {
  const upstream = await startFakeUpstream(answer);
  const config = parseConfig(baseConfig(upstreamUrl ?? upstream.url));
  const runtime = buildRuntime(config);
  const metrics = new Metrics(config.metrics.max_tenants);
  const pools = new Map<string, Pool>();
  const { lines: logs, stream: sink } = logLines();
  const logger = createLogger('debug', sink);
  const started: string[] = [];
  const ended: Ended[] = [];
  const tracer: RequestTracer = {
    start(ctx) {
      started.push(ctx.id);
      return {
        traceId: undefined,
        continues: false,
        stage: () => ({ end: () => undefined }),
        attemptStart: () => `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`,
        attemptStatus: () => undefined,
        attemptEnd: () => undefined,
        end: (c) => void ended.push({ id: c.id, outcome: c.outcome, status: c.status }),
      };
    },
    shutdown: () => Promise.resolve(),
  };
  const handler = createProxyHandler({
    getRuntime: () => runtime,
    // The real first stage (it writes the access log, and used to end the span) above the test's.
    pipeline: [createRecordMetricsStage({ metrics, logger }), ...pipeline],
    dispatcher(target) {
      let pool = pools.get(target.origin);
      if (!pool) pools.set(target.origin, (pool = new Pool(target.origin)));
      return pool;
    },
    health: new UpstreamHealth(metrics),
    metrics,
    logger,
    isDraining: () => false,
    quirks: new UpstreamQuirks(),
    track: () => undefined,
    tracer,
  });
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    upstream,
    started,
    ended,
    logs,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...pools.values()].map((pool) => pool.destroy()));
      await upstream.close();
    },
  };
}

const passThrough: Stage = { name: 'pass-through', onRequest: () => undefined };
const ok: Reply = { kind: 'json', body: chatCompletion('small-model', 'ok', {}) };
const BODY = JSON.stringify({
  model: 'small-model',
  messages: [{ role: 'user', content: 'x'.repeat(2_000) }],
});

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!condition()) throw new Error(`never happened: ${what}`);
}

async function post(p: Proxy): Promise<number> {
  const res = await request(`${p.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: BODY,
  });
  await res.body.text();
  return res.statusCode;
}

/** Sends a request head and the first `sent` bytes of BODY over a raw socket. */
async function rawPost(p: Proxy, sent: number) {
  const url = new URL(p.url);
  const socket = connect(Number(url.port), url.hostname);
  await once(socket, 'connect');
  const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\ncontent-length: ${BODY.length}\r\n\r\n`;
  await new Promise<void>((resolve, reject) =>
    socket.write(head + BODY.slice(0, sent), (error) => (error ? reject(error) : resolve())),
  );
  return socket;
}

/** The one end of the one request, after the exchange had every chance to end it again. */
async function endedOnce(p: Proxy): Promise<Ended> {
  await until(() => p.ended.length > 0, 'the request span ended');
  // A second request through the same proxy, finished: anything due for the first is done.
  const before = p.ended.length;
  p.upstream.reply(ok);
  await post(p).catch(() => undefined);
  await until(() => p.ended.length > before, 'the second request span ended');
  expect(p.started).toHaveLength(2);
  expect(p.ended.map((e) => e.id)).toEqual(p.started);
  return p.ended[0] as Ended;
}

describe('the request span ends exactly once', () => {
  it('when the request completes', async () => {
    proxy = await startProxy([passThrough], ok);
    expect(await post(proxy)).toBe(200);
    expect(await endedOnce(proxy)).toMatchObject({ outcome: 'completed', status: 200 });
  });

  it('when a stage refuses the request', async () => {
    const refuse: Stage = { name: 'refuse', onRequest: () => localReply(new InvalidRequestError('no')) };
    proxy = await startProxy([refuse], ok);
    expect(await post(proxy)).toBe(400);
    expect(await endedOnce(proxy)).toMatchObject({ outcome: 'local_reply', status: 400 });
  });

  it('when the upstream cannot be reached', async () => {
    proxy = await startProxy([passThrough], ok, REFUSING_UPSTREAM);
    expect(await post(proxy)).toBe(502);
    expect(await endedOnce(proxy)).toMatchObject({ outcome: 'local_reply', status: 502 });
  });

  it('when a request hook throws inside the proxy', async () => {
    const boom: Stage = {
      name: 'boom',
      onRequest: () => {
        throw new Error('bug in a stage');
      },
    };
    proxy = await startProxy([passThrough, boom], ok);
    expect(await post(proxy)).toBe(500);
    expect(await endedOnce(proxy)).toMatchObject({ outcome: 'upstream_error' });
  });

  it('when a response-end hook throws', async () => {
    const boom: Stage = {
      name: 'boom',
      onResponseEnd: () => {
        throw new Error('bug in a stage');
      },
    };
    proxy = await startProxy([boom, passThrough], ok);
    expect(await post(proxy)).toBe(200);
    expect(await endedOnce(proxy)).toMatchObject({ outcome: 'completed', status: 200 });
    expect(proxy.logs.some((l) => l.msg === 'response-end hook failed')).toBe(true);
  });

  it('when ending the response throws, so no response-end hook runs', async () => {
    const refuse: Stage = {
      name: 'refuse-then-throw',
      onRequest: () => localReply(new InvalidRequestError('no')),
      onResponseChunk: () => {
        throw new Error('bug in a chunk hook');
      },
    };
    proxy = await startProxy([refuse], ok);
    // The head was out when it threw: the client sees the connection cut.
    await expect(post(proxy)).rejects.toThrow();
    await endedOnce(proxy);
    expect(proxy.logs.some((l) => l.msg === 'could not end the failed request')).toBe(true);
  });

  it('when the client hangs up mid-upload', async () => {
    proxy = await startProxy([passThrough], ok);
    const socket = await rawPost(proxy, BODY.length / 2);
    socket.destroy();
    expect(await endedOnce(proxy)).toMatchObject({ outcome: 'client_aborted' });
    expect(proxy.upstream.received).toHaveLength(1);
  });

  it('when the client hangs up while the upstream is thinking', async () => {
    proxy = await startProxy([passThrough], { kind: 'hang' });
    const socket = await rawPost(proxy, BODY.length);
    await until(() => proxy?.upstream.received.length === 1, 'the upstream got the request');
    socket.destroy();
    expect(await endedOnce(proxy)).toMatchObject({ outcome: 'client_aborted' });
  });
});
