/**
 * A do-nothing OTLP/HTTP collector for the traced bench target: reads each export, answers
 * 200, counts the bytes. It runs in the bench process, so the proxy pays the real cost of
 * building, batching and sending spans over loopback. It shares the test receiver's server
 * (test/fakes/otlp/otlp-http-server.ts) but never decodes a body: that would load the bench.
 */
import { startOtlpHttpServer } from '../test/fakes/otlp/otlp-http-server.js';

export interface OtlpSink {
  readonly url: string;
  /** Export requests and body bytes received so far. */
  readonly received: { requests: number; bytes: number };
  stop(): Promise<void>;
}

export async function startOtlpSink(): Promise<OtlpSink> {
  const received = { requests: 0, bytes: 0 };
  const http = await startOtlpHttpServer(() => ({
    data: (chunk) => (received.bytes += chunk.length),
    end: () => received.requests++,
  }));
  return { url: http.url, received, stop: () => http.close() };
}
