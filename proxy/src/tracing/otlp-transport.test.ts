/**
 * The undici transport under the official exporter keeps what the official transport does
 * with the OTEL_EXPORTER_OTLP_* settings: headers, gzip, a collector's own CA, retries on
 * 429/502/503/504 with Retry-After (read by upstream/retry.ts, tested there), and a clear failure (never a crash) for what it refuses.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeProtobufExport } from '../../../test/fakes/otlp/otlp-receiver.js';
import { selfSignedCertificate } from '../../test/helpers/self-signed.js';
import { otlpProto } from './otlp-proto.js';
import { createSpanBatch, type SpanBatch } from './span-batch.js';

interface Received {
  headers: IncomingMessage['headers'];
  body: Buffer;
}

const ENV = [
  'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_EXPORTER_OTLP_TRACES_HEADERS',
  'OTEL_EXPORTER_OTLP_COMPRESSION',
  'OTEL_EXPORTER_OTLP_CERTIFICATE',
] as const;

let batch: SpanBatch | undefined;
let server: Server | undefined;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lk-otlp-tls-'));
  await selfSignedCertificate(dir, 'DNS:localhost,IP:127.0.0.1');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

afterEach(async () => {
  await batch?.shutdown();
  batch = undefined;
  if (server) {
    const closing = server;
    (closing as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
    await new Promise<void>((resolve) => closing.close(() => resolve()));
  }
  server = undefined;
  for (const name of ENV) delete process.env[name];
});

/** A collector that keeps what it got and answers with `answer` (200 by default). */
async function collector(
  answer: (req: IncomingMessage, res: ServerResponse, count: number) => void = (_req, res) => res.end(),
  tls = false,
): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      answer(req, res, received.length);
    });
  };
  server = tls
    ? createHttpsServer(
        { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
        handle,
      )
    : createHttpServer(handle);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}/v1/traces`, received };
}

/** Sends one span named `name` and returns what the batch reported. */
async function exportOne(url: string, name: string): Promise<(Error | undefined)[]> {
  const results: (Error | undefined)[] = [];
  batch = createSpanBatch({
    url,
    serviceName: 'svc',
    format: otlpProto,
    onExportResult: (error) => results.push(error),
  });
  batch.writer.begin('0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331', '', false, name, 2, 1, 2);
  batch.writer.end(0, undefined);
  await batch.flush();
  return results;
}

const spanNames = (body: Buffer) =>
  (decodeProtobufExport(body).resourceSpans ?? []).flatMap((rs) =>
    (rs.scopeSpans ?? []).flatMap((ss) => (ss.spans ?? []).map((span) => span.name)),
  );

describe('the OTLP transport over undici', () => {
  it('sends the OTEL_EXPORTER_OTLP_* headers (the traces ones winning) and a gzipped body', async () => {
    process.env.OTEL_EXPORTER_OTLP_HEADERS = 'authorization=Bearer%20abc,x-tenant=shared';
    process.env.OTEL_EXPORTER_OTLP_TRACES_HEADERS = 'x-tenant=traces';
    process.env.OTEL_EXPORTER_OTLP_COMPRESSION = 'gzip';
    const { url, received } = await collector();
    expect(await exportOne(url, 'zipped')).toEqual([undefined]);
    const [got] = received;
    expect(got!.headers.authorization).toBe('Bearer abc');
    expect(got!.headers['x-tenant']).toBe('traces');
    expect(got!.headers['content-type']).toBe('application/x-protobuf');
    expect(got!.headers['content-encoding']).toBe('gzip');
    expect(got!.headers['user-agent']).toContain('lanekeeper-proxy');
    expect(spanNames(gunzipSync(got!.body))).toEqual(['zipped']);
  });

  it('retries a collector that answers 503 with Retry-After, and sends the body once it takes it', async () => {
    const { url, received } = await collector((_req, res, count) => {
      if (count === 1) res.writeHead(503, { 'retry-after': '0' });
      res.end();
    });
    expect(await exportOne(url, 'again')).toEqual([undefined]);
    expect(received).toHaveLength(2);
    expect(spanNames(received[1]!.body)).toEqual(['again']);
    expect(batch!.dropped).toBe(0);
  });

  it('fails an export (never the proxy) on a header undici refuses, and counts its spans', async () => {
    // A CR LF decoded from the environment would split the request: refused before sending.
    process.env.OTEL_EXPORTER_OTLP_HEADERS = 'x-evil=a%0D%0Ax-injected:%20yes';
    const { url, received } = await collector();
    const results = await exportOne(url, 'refused');
    expect(results).toHaveLength(1);
    expect(results[0]).toBeInstanceOf(Error);
    expect(received).toHaveLength(0);
    expect(batch!.dropped).toBe(1);
  });

  it("trusts a collector's own CA from OTEL_EXPORTER_OTLP_CERTIFICATE, and nothing else", async () => {
    const { url, received } = await collector(undefined, true);
    const untrusted = await exportOne(url, 'untrusted');
    expect(untrusted[0]).toBeInstanceOf(Error);
    expect(received).toHaveLength(0);
    await batch!.shutdown();
    process.env.OTEL_EXPORTER_OTLP_CERTIFICATE = join(dir, 'cert.pem');
    expect(await exportOne(url, 'trusted')).toEqual([undefined]);
    expect(spanNames(received[0]!.body)).toEqual(['trusted']);
  });
});
