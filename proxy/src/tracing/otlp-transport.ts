/**
 * The socket layer under the official OTLP/HTTP exporter: its export delegate (queue,
 * concurrency limit, timeout) and its configuration (the OTEL_EXPORTER_OTLP_* headers,
 * compression and TLS files) are the package's own; the IExporterTransport, the interface
 * the package exports for this, sends with undici's dispatcher instead of Node's
 * `http.request`, and retries as the package's own transport does.
 *
 * Why: the official transport pipes each body through a Readable into a ClientRequest and
 * reads a client IncomingMessage back. Those objects pass through the same Node stream and
 * HTTP functions as every proxied request (the server side's IncomingMessage and
 * ServerResponse) and turned them megamorphic: side by side (bench/trace-ab.ts, 9 windows),
 * the proxy spent 9.5 µs a request less with this transport, every window between 6.4 and
 * 12.0 µs less; in bench/trace-perf.ts that cost showed outside any frame of the tracer.
 * The proxy already sends every upstream call with undici, so exporting adds no new shapes.
 */
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import {
  OTLPExporterError,
  type ExportResponse,
  type IExporterTransport,
} from '@opentelemetry/otlp-exporter-base';
import type { convertLegacyHttpOptions } from '@opentelemetry/otlp-exporter-base/node-http';
import { Agent, type Dispatcher } from 'undici';
import { retryAfterMs } from '../upstream/retry.js';

/** The exporter's merged configuration (code, then OTEL_EXPORTER_OTLP_* environment, then defaults). */
export type OtlpHttpConfiguration = ReturnType<typeof convertLegacyHttpOptions>;

const gzipAsync = promisify(gzip);

/** The statuses the official transport retries (is-export-retryable.js). */
const RETRYABLE = new Set([429, 502, 503, 504]);

/** The official RetryingTransport's policy. */
const MAX_RETRIES = 5;
const INITIAL_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 5_000;
const BACKOFF_MULTIPLIER = 1.5;

const USER_AGENT = 'lanekeeper-proxy (OTel-OTLP-Exporter-JavaScript transport interface)';

/** TLS files the official agent factory read from the environment. */
interface TlsFiles {
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
}

class UndiciTransport implements IExporterTransport {
  private readonly url: URL;
  private agent: Promise<Agent> | undefined;

  constructor(private readonly config: OtlpHttpConfiguration) {
    this.url = new URL(config.url);
  }

  /**
   * Sends, and sends again while the collector says retryable, as the official
   * RetryingTransport does (the package does not export it): at most 5 retries, after the
   * collector's Retry-After or a backoff from 1 s growing 1.5× up to 5 s, never past the
   * export's deadline.
   */
  async send(data: Uint8Array, timeoutMillis: number): Promise<ExportResponse> {
    const deadline = Date.now() + timeoutMillis;
    let result = await this.sendOnce(data, timeoutMillis);
    let backoff = INITIAL_BACKOFF_MS;
    for (let retries = 0; result.status === 'retryable' && retries < MAX_RETRIES; retries++) {
      const wait = result.retryInMillis ?? Math.min(backoff, MAX_BACKOFF_MS) + Math.random() * 0.4 - 0.2;
      backoff *= BACKOFF_MULTIPLIER;
      const left = deadline - Date.now();
      if (wait > left) return result;
      await new Promise((resolve) => setTimeout(resolve, Math.max(wait, 0)));
      result = await this.sendOnce(data, deadline - Date.now());
    }
    return result;
  }

  private async sendOnce(data: Uint8Array, timeoutMillis: number): Promise<ExportResponse> {
    try {
      const agent = await (this.agent ??= this.createAgent());
      const gzipped = this.config.compression === 'gzip';
      const body = gzipped ? await gzipAsync(data) : data;
      const headers: Record<string, string> = {
        ...this.config.headers(),
        'user-agent': this.config.userAgent ? `${this.config.userAgent} ${USER_AGENT}` : USER_AGENT,
        'content-length': String(body.length),
      };
      if (gzipped) headers['content-encoding'] = 'gzip';
      return await new Promise<ExportResponse>((resolve) => {
        const chunks: Buffer[] = [];
        let status = 0;
        let retryAfter: string | string[] | undefined;
        const handler: Dispatcher.DispatchHandler = {
          onRequestStart() {},
          onResponseStart(_controller, statusCode, responseHeaders) {
            status = statusCode;
            retryAfter = responseHeaders['retry-after'];
          },
          onResponseData(_controller, chunk) {
            chunks.push(chunk);
          },
          onResponseEnd() {
            const bytes = Buffer.concat(chunks);
            if (status < 299) resolve({ status: 'success', data: bytes });
            else if (RETRYABLE.has(status))
              resolve({ status: 'retryable', retryInMillis: retryAfterMs(retryAfter) });
            else
              resolve({
                status: 'failure',
                error: new OTLPExporterError(`collector answered ${status}`, status, bytes.toString('utf8')),
              });
          },
          onResponseError(_controller, error) {
            resolve({ status: 'failure', error });
          },
        };
        agent.dispatch(
          {
            origin: this.url.origin,
            path: `${this.url.pathname}${this.url.search}`,
            method: 'POST',
            headers,
            body,
            headersTimeout: timeoutMillis,
            bodyTimeout: timeoutMillis,
          },
          handler,
        );
      });
    } catch (error) {
      // A header from the environment undici refuses, a TLS file it cannot use: this export fails.
      return { status: 'failure', error: error instanceof Error ? error : new Error(String(error)) };
    }
  }

  shutdown(): void {
    void this.agent?.then((agent) => agent.close()).catch(() => undefined);
  }

  /**
   * The official agent factory reads OTEL_EXPORTER_OTLP_CERTIFICATE, _CLIENT_CERTIFICATE and
   * _CLIENT_KEY into the Node agent it makes; the same files go to undici's TLS options.
   */
  private async createAgent(): Promise<Agent> {
    const official = (await this.config.agentFactory(this.url.protocol)) as { options?: TlsFiles };
    const { ca, cert, key } = official.options ?? {};
    // One connection per export the delegate lets run at once.
    return new Agent({ connections: this.config.concurrencyLimit, connect: { ca, cert, key } });
  }
}

export function createUndiciTransport(config: OtlpHttpConfiguration): IExporterTransport {
  return new UndiciTransport(config);
}
