import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startOtlpSink, type OtlpSink } from './otlp-sink.js';

let sink: OtlpSink | undefined;
afterEach(async () => {
  await sink?.stop();
  sink = undefined;
});

describe('the bench OTLP sink', () => {
  it('answers every export 200 and counts requests and body bytes, whatever the body', async () => {
    sink = await startOtlpSink();
    // Not OTLP at all: the sink never decodes, so it cannot choke on it.
    const bodies = ['{"resourceSpans":[]}', 'not json {', Buffer.alloc(70_000, 7)];
    for (const body of bodies) {
      const res = await request(`${sink.url}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('{}');
    }
    expect(sink.received).toEqual({ requests: 3, bytes: 20 + 10 + 70_000 });
  });
});
