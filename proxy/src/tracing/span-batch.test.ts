import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startOtlpReceiver, type OtlpReceiver } from '../../../test/fakes/otlp/otlp-receiver.js';
import { otlpJson } from './otlp-json.js';
import { otlpProto } from './otlp-proto.js';
import { createSpanBatch, type SpanBatch } from './span-batch.js';
import type { SpanFormat } from './span-format.js';

let receiver: OtlpReceiver | undefined;
let batch: SpanBatch | undefined;

afterEach(async () => {
  await batch?.shutdown();
  await receiver?.close();
  batch = receiver = undefined;
});

/** Writes one span into the batch, as the tracer does. */
function span(batch: SpanBatch, format: SpanFormat, name: string, model = 'small-model'): void {
  const w = batch.writer;
  w.begin(
    '0af7651916cd43dd8448eb211c80319c',
    'b7ad6b7169203331',
    '',
    false,
    name,
    2,
    1_700_000_000_000,
    1_700_000_000_001,
  );
  w.string(format.key('gen_ai.request.model'), model);
  w.end(0, undefined);
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 250 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
}

describe.each([
  ['protobuf', otlpProto],
  ['JSON', otlpJson],
])('span batches (%s)', (_name, format) => {
  it('sends a full batch at once, and the rest after the delay', async () => {
    receiver = await startOtlpReceiver();
    const results: (Error | undefined)[] = [];
    batch = createSpanBatch({
      url: `${receiver.url}/v1/traces`,
      serviceName: 'svc',
      format,
      onExportResult: (error) => results.push(error),
      scheduledDelayMs: 60_000,
      maxBatchSpans: 4,
    });
    for (let i = 0; i < 4; i++) span(batch, format, `s${i}`);
    await until(() => receiver!.spans.length === 4);
    expect(receiver.spans.map((s) => s.name)).toEqual(['s0', 's1', 's2', 's3']);
    expect(receiver.spans[0]?.resource['service.name']).toBe('svc');
    span(batch, format, 'late');
    await batch.flush();
    expect(receiver.spans.map((s) => s.name)).toContain('late');
    expect(results).toEqual([undefined, undefined]);
  });

  it('tells the results of exports in the order they were sent, not as they land', async () => {
    // The first export is held, the second answered at once; the first then fails. Told as
    // it landed, the collector read back, down, back.
    const held: ((status: number) => void)[] = [];
    let received = 0;
    const collector = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received++;
        if (received === 1) held.push((status) => res.writeHead(status).end());
        else res.writeHead(200, { 'content-type': format.contentType }).end();
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const results: (Error | undefined)[] = [];
    try {
      batch = createSpanBatch({
        url: `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`,
        serviceName: 'svc',
        format,
        onExportResult: (error) => results.push(error),
        scheduledDelayMs: 60_000,
        maxBatchSpans: 1,
      });
      span(batch, format, 'first');
      await until(() => held.length === 1);
      span(batch, format, 'second');
      await until(() => results.length === 1);
      expect(results).toEqual([undefined]);
      held[0]!(400);
      await batch.flush();
      expect(results).toEqual([undefined]);
      // Counted all the same.
      expect(batch.dropped).toBeGreaterThanOrEqual(1);
    } finally {
      await batch?.shutdown();
      batch = undefined;
      collector.closeAllConnections();
      await new Promise((r) => collector.close(r));
    }
  });

  it('sends text that is not ASCII as UTF-8', async () => {
    receiver = await startOtlpReceiver();
    batch = createSpanBatch({
      url: `${receiver.url}/v1/traces`,
      serviceName: 'svc',
      format,
      onExportResult: () => undefined,
    });
    const model = 'modèle-🦙-\u2028';
    span(batch, format, 'unicode', model);
    await batch.flush();
    expect(receiver.spans[0]?.attributes['gen_ai.request.model']).toBe(model);
  });

  it('splits batches by size, drops and counts spans bigger than a batch, and sends the rest at shutdown', async () => {
    receiver = await startOtlpReceiver();
    batch = createSpanBatch({
      url: `${receiver.url}/v1/traces`,
      serviceName: 'svc',
      format,
      onExportResult: () => undefined,
      scheduledDelayMs: 60_000,
      maxBatchSpans: 100,
      // Room for two spans of ~1 KB a body, not three.
      maxBatchBytes: format.envelope('svc').maxHead + 2_600,
    });
    const big = (name: string) => span(batch!, format, name, 'm'.repeat(1_000));
    big('a');
    big('b');
    big('c');
    span(batch, format, 'huge', 'm'.repeat(10_000));
    expect(batch.dropped).toBe(1);
    await until(() => receiver!.bodies.length === 1);
    expect(receiver.spans.map((s) => s.name)).toEqual(['a', 'b']);
    await batch.shutdown();
    expect(receiver.spans.map((s) => s.name)).toEqual(['a', 'b', 'c']);
    expect(receiver.bodies).toHaveLength(2);
    span(batch, format, 'after');
    expect(batch.dropped).toBe(2);
  });

  it('keeps one connection to the collector across exports', async () => {
    // A new connection per batch would add a handshake, and on a busy proxy a socket in
    // TIME_WAIT, every few hundred requests.
    let connections = 0;
    const collector = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': format.contentType });
        res.end();
      });
    });
    collector.on('connection', () => connections++);
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`;
    const results: (Error | undefined)[] = [];
    batch = createSpanBatch({
      url,
      serviceName: 'svc',
      format,
      onExportResult: (error) => results.push(error),
    });
    for (let i = 0; i < 3; i++) {
      span(batch, format, `s${i}`);
      await batch.flush();
      // Exports go seconds apart: the connection is back in the pool before the next one.
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(results).toEqual([undefined, undefined, undefined]);
    expect(connections).toBe(1);
    await batch.shutdown();
    collector.closeAllConnections();
    await new Promise<void>((resolve) => collector.close(() => resolve()));
  });

  it('reports a collector that refuses, counts the spans lost, and reports it back', async () => {
    let refuse = true;
    const collector = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(refuse ? 400 : 200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`;
    const results: (Error | undefined)[] = [];
    batch = createSpanBatch({
      url,
      serviceName: 'svc',
      format,
      onExportResult: (error) => results.push(error),
    });
    span(batch, format, 'lost');
    await batch.flush();
    expect(results).toHaveLength(1);
    expect(results[0]).toBeInstanceOf(Error);
    expect(batch.dropped).toBe(1);
    refuse = false;
    span(batch, format, 'kept');
    await batch.flush();
    expect(results[1]).toBeUndefined();
    await batch.shutdown();
    await new Promise<void>((resolve) => collector.close(() => resolve()));
  });
});
