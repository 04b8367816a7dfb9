/**
 * Control-plane traces, configured by the OTEL_* environment: an API call becomes a SERVER
 * span continuing the caller's traceparent, and a booked ledger batch becomes a span. A
 * collector that is down is logged through the same outage log as the proxy's.
 */
import { logShape } from '@lanekeeper/contract';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane } from '../src/main.js';
import { startControlPlaneTracing } from '../src/tracing.js';
import { call } from './helpers/http.js';
import { createTestEnv, type TestEnv } from './helpers/test-env.js';
import { startOtlpReceiver, type OtlpReceiver } from '../../test/fakes/otlp/otlp-receiver.js';
import { logLines } from '../../test/helpers/log-lines.js';

const CLIENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CLIENT_SPAN = 'b7ad6b7169203331';

let t: TestEnv;
let otlp: OtlpReceiver;
let cp: { url: string; close(): Promise<void> };

beforeAll(async () => {
  otlp = await startOtlpReceiver();
  t = await createTestEnv({
    extra: {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_BSP_SCHEDULE_DELAY: '20',
      OTEL_SERVICE_NAME: 'cp-under-test',
      LANEKEEPER_USAGE_STREAM: 'usage-traced',
    },
  });
  cp = await startControlPlane(t.env);
});
afterAll(async () => {
  await cp?.close();
  await t?.dispose();
  await otlp?.close();
});

describe('control-plane tracing', () => {
  it('exports a server span for an API call, continuing its traceparent', async () => {
    const res = await call(cp.url, 'GET', '/v1/plans?limit=5', {
      token: t.adminToken,
      headers: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` },
    });
    expect(res.status).toBe(200);
    const span = await otlp.waitFor((s) => s.attributes['http.route'] === '/v1/plans');
    expect(span.kind).toBe(2);
    expect(span.name).toBe('GET /v1/plans');
    expect(span.traceId).toBe(CLIENT_TRACE);
    expect(span.parentSpanId).toBe(CLIENT_SPAN);
    expect(span.resource['service.name']).toBe('cp-under-test');
    expect(span.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/v1/plans',
      'http.response.status_code': 200,
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(cp.url).port),
    });
    expect(otlp.bodies.join('\n')).not.toContain(t.adminToken);
  });

  it('names the tenant a call is about, and no tenant from a path that is not one', async () => {
    const plan = await call(cp.url, 'POST', '/v1/plans', {
      token: t.adminToken,
      body: { id: 'traced-plan', models: { default: 'm' } },
    });
    expect(plan.status).toBe(201);
    const created = await call(cp.url, 'POST', '/v1/tenants', {
      token: t.adminToken,
      body: { id: 'traced-tenant', plan: 'traced-plan' },
    });
    expect(created.status).toBe(201);
    const read = await call(cp.url, 'GET', '/v1/tenants/traced-tenant/usage', { token: t.adminToken });
    expect(read.status).toBe(200);
    const span = await otlp.waitFor((s) => s.attributes['url.path'] === '/v1/tenants/traced-tenant/usage');
    expect(span.attributes).toMatchObject({
      'http.route': '/v1/tenants/:id/usage',
      'lanekeeper.tenant': 'traced-tenant',
    });
    // Hostile ids, refused before any handler (400; 414 past Fastify's longest parameter,
    // refused by the router itself): no span names them as a tenant.
    for (const id of ['Traced-Tenant', 'x'.repeat(300), '..%2Fplans', 'a%00b']) {
      const res = await call(cp.url, 'GET', `/v1/tenants/${id}`, { token: t.adminToken });
      expect([id.slice(0, 20), res.status]).toEqual([id.slice(0, 20), id.length > 100 ? 414 : 400]);
      const refused = await otlp.waitFor((s) => s.attributes['url.path'] === `/v1/tenants/${id}`);
      expect(refused.attributes['http.response.status_code']).toBe(res.status);
      expect(refused.attributes).not.toHaveProperty('lanekeeper.tenant');
    }
    const named = otlp.spans.filter((s) => s.attributes['lanekeeper.tenant'] !== undefined);
    expect(named.map((s) => s.attributes['url.path'])).toEqual(['/v1/tenants/traced-tenant/usage']);
    // Calls about no one tenant carry none.
    const list = await otlp.waitFor((s) => s.attributes['http.route'] === '/v1/plans');
    expect(list.attributes).not.toHaveProperty('lanekeeper.tenant');
  });

  it('traces a request the router refuses before any hook, with its status and no route', async () => {
    const res = await call(cp.url, 'GET', '/v1/tenants/%E0%A4%A/keys', {
      headers: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` },
    });
    expect(res.status).toBe(400);
    const span = await otlp.waitFor((s) => s.attributes['url.path'] === '/v1/tenants/%E0%A4%A/keys');
    expect(span).toMatchObject({ name: 'GET', kind: 2, traceId: CLIENT_TRACE, parentSpanId: CLIENT_SPAN });
    expect(span.attributes['http.response.status_code']).toBe(400);
    expect(span.attributes).not.toHaveProperty('http.route');
    expect(span.attributes).not.toHaveProperty('lanekeeper.tenant');
    const long = await call(cp.url, 'POST', `/v1/tenants/${'q'.repeat(150)}/keys`);
    expect(long.status).toBe(414);
    const longSpan = await otlp.waitFor(
      (s) =>
        s.attributes['http.request.method'] === 'POST' &&
        s.attributes['url.path'] === `/v1/tenants/${'q'.repeat(150)}/keys`,
    );
    expect(longSpan.attributes['http.response.status_code']).toBe(414);
  });

  it('marks a refused call with its status and no error', async () => {
    const res = await call(cp.url, 'GET', '/v1/tenants', { token: 'wrong-token' });
    expect(res.status).toBe(401);
    const span = await otlp.waitFor(
      (s) => s.attributes['url.path'] === '/v1/tenants' && s.attributes['http.response.status_code'] === 401,
    );
    expect(span.status.code ?? 0).not.toBe(2);
  });

  it('exports a span per booked ledger batch', async () => {
    await t.redis.xadd(`${t.prefix}usage-traced`, '*', 'event', '{"not": "an event"}');
    const span = await otlp.waitFor((s) => s.name === 'lanekeeper.ledger.book', 15_000);
    expect(span.attributes['messaging.batch.message_count']).toBe(1);
    expect(span.attributes['lanekeeper.ledger.rejected']).toBe(1);
  });
});

describe('control-plane trace export to a collector that is down', () => {
  it('goes through the outage log: one warning without a stack, one line when it is back', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const endpoint = `http://127.0.0.1:${port}`;
    const { lines, stream: sink } = logLines();
    const logger = pino(logShape('lanekeeper-control-plane'), sink);
    const tracing = await startControlPlaneTracing(
      { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '20', OTEL_TRACES_SAMPLER_ARG: '1' },
      logger,
    );
    if (!tracing) throw new Error('tracing did not start');
    let receiver: OtlpReceiver | undefined;
    try {
      const outage = () => lines.filter((l) => l.dependency === 'trace export (otlp)');
      const book = () =>
        tracing.traceBatch(1, async () => ({ inserted: 1, duplicates: 0, rejected: 0, erased: 0 }));
      for (let i = 0; i < 500 && outage().length === 0; i++) {
        await book();
        await new Promise((r) => setTimeout(r, 10));
      }
      // More failed batches stay within the same outage.
      for (let i = 0; i < 5; i++) await book();
      receiver = await startOtlpReceiver({ port });
      for (let i = 0; i < 500 && outage().length < 2; i++) {
        await book();
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(outage().map((l) => `${String(l.level)} ${String(l.msg)}`)).toEqual([
        'warn trace export (otlp) unavailable',
        'info trace export (otlp) available again',
      ]);
      expect(outage()[0]).toMatchObject({ endpoint, err: expect.stringContaining('ECONNREFUSED') });
      expect(outage()[1]).toMatchObject({ endpoint, failures: expect.any(Number) });
      expect(lines.filter((l) => JSON.stringify(l).includes('    at '))).toEqual([]);
    } finally {
      await tracing.shutdown();
      await receiver?.close();
    }
  }, 20_000);
});

describe('control-plane tracing settings the standard environment refuses', () => {
  it.each(['0', '-20', '1e3', '20ms', '3600001', '__proto__'])(
    'stops at start with OTEL_BSP_SCHEDULE_DELAY=%j, naming it',
    async (delay) => {
      const start = startControlPlaneTracing(
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_BSP_SCHEDULE_DELAY: delay },
        pino({ level: 'silent' }),
      );
      await expect(start).rejects.toThrow(/invalid environment: OTEL_BSP_SCHEDULE_DELAY/);
    },
  );
});

describe('control-plane sampling from the standard environment', () => {
  it('exports nothing under OTEL_TRACES_SAMPLER=always_off, and every batch under always_on', async () => {
    const receiver = await startOtlpReceiver();
    const { lines, stream: sink } = logLines();
    const logger = pino(logShape('lanekeeper-control-plane'), sink);
    try {
      for (const sampler of ['always_off', 'always_on']) {
        const tracing = await startControlPlaneTracing(
          {
            OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
            OTEL_BSP_SCHEDULE_DELAY: '20',
            OTEL_TRACES_SAMPLER: sampler,
          },
          logger,
        );
        if (!tracing) throw new Error('tracing did not start');
        for (let i = 0; i < 3; i++)
          await tracing.traceBatch(i + 1, async () => ({
            inserted: 1,
            duplicates: 0,
            rejected: 0,
            erased: 0,
          }));
        // Shutting down flushes whatever was sampled.
        await tracing.shutdown();
        const batches = receiver.spans.filter((s) => s.name === 'lanekeeper.ledger.book');
        expect([sampler, batches.length]).toEqual([sampler, sampler === 'always_on' ? 3 : 0]);
      }
      expect(lines.filter((l) => l.msg === 'tracing on').map((l) => l.parent_based)).toEqual([false, false]);
    } finally {
      await receiver.close();
    }
  });
});
