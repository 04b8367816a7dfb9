/**
 * The OTLP/HTTP endpoint that the test receiver (otlp-receiver.ts) and the bench's sink
 * (bench/otlp-sink.ts) both stand up: on loopback, port 0 unless given, every export read to
 * its end and answered 200 with an empty ExportTraceServiceResponse in the request's own
 * encoding (`{}`, or no bytes for protobuf), as the OTLP spec asks. What happens to the bytes is the caller's: the receiver
 * decodes them, the bench sink only counts them (decoding would load the bench process).
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OtlpHttpServer {
  /** The base endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT takes it. */
  readonly url: string;
  close(): Promise<void>;
}

/** What is done with one export request's body. */
export interface ExportReader {
  data(chunk: Buffer): void;
  /** The body is complete; the request is answered right after. */
  end(): void;
}

export async function startOtlpHttpServer(
  onExport: (req: IncomingMessage) => ExportReader,
  port = 0,
): Promise<OtlpHttpServer> {
  const server = createServer((req, res) => {
    const reader = onExport(req);
    req.on('data', (chunk: Buffer) => reader.data(chunk));
    req.on('end', () => {
      reader.end();
      if (String(req.headers['content-type']).startsWith('application/x-protobuf')) {
        res.writeHead(200, { 'content-type': 'application/x-protobuf' });
        res.end();
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
