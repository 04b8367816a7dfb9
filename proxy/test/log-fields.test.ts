/**
 * Every log line about a request carries what the access log does to find it: request_id,
 * tenant and, when tracing is on, trace_id (issue 18's one log shape). The line for an
 * upstream that could not be reached had no tenant. That line is at debug now: the warning
 * is the upstream's outage log's, once per outage, and names no request.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOtlpReceiver, type OtlpReceiver } from '../../test/fakes/otlp/otlp-receiver.js';
import { KEYS, startHarness, type Harness } from './helpers/harness.js';
import { REFUSING_UPSTREAM } from './helpers/waiting.js';

describe('log lines about a request', () => {
  let h: Harness;
  let otlp: OtlpReceiver;
  beforeAll(async () => {
    otlp = await startOtlpReceiver();
    h = await startHarness({
      config: (base) => ({
        ...base,
        upstream: { ...(base.upstream as object), url: REFUSING_UPSTREAM },
        telemetry: { otlp_endpoint: otlp.url, sample_ratio: 1 },
      }),
      start: { traceExportDelayMs: 50 },
    });
  });
  afterAll(async () => {
    await h.close();
    await otlp.close();
  });

  /** A chat of globex's, its body read, to the upstream nothing answers. */
  const chat = async () => {
    const res = await request(`${h.proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.pro}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    await res.body.text();
    return res;
  };

  it('name the request, its tenant and its trace on the line of an upstream not reached', async () => {
    const res = await chat();
    expect(res.statusCode).toBe(502);
    const id = String(res.headers['x-lanekeeper-request-id']);
    await h.settled(1);
    const access = h.accessLogs().find((l) => l.request_id === id)!;
    const warning = h.logs.find((l) => l.msg === 'upstream request failed' && l.request_id === id);
    expect(warning).toMatchObject({ level: 'debug', tenant: 'globex', trace_id: access.trace_id });
    expect(access.trace_id).toMatch(/^[0-9a-f]{32}$/);
    // More requests into the same outage add no warning.
    for (let i = 0; i < 5; i++) {
      expect((await chat()).statusCode).toBe(502);
    }
    await h.settled(6);
    expect(h.logs.filter((l) => l.level === 'warn')).toEqual([
      expect.objectContaining({
        msg: 'upstream default unavailable',
        upstream: 'default',
        err: expect.any(String),
      }),
    ]);
  });
});
