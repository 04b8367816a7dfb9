/**
 * The connection from the tenant route to Qdrant: one undici Pool (keep-alive) per route,
 * sending JSON with the deployment's api-key and never anything the client sent (its
 * Authorization header is the tenant's Lanekeeper key, not a Qdrant credential).
 */
import { Pool } from 'undici';
import { VectorRefusal } from './vector-refusal.js';

/** Qdrant's answer, with the JSON envelope parsed when there is one. */
export interface UpstreamReply {
  status: number;
  contentType: string;
  body: Buffer;
  /** The parsed body when it is JSON. */
  json?: unknown;
}

/** Sends requests to Qdrant. */
export interface VectorUpstream {
  request(method: string, path: string, query: URLSearchParams, body?: unknown): Promise<UpstreamReply>;
  close(): Promise<void>;
}

/** Options of createVectorUpstream. */
export interface VectorUpstreamOptions {
  url: string;
  apiKey?: string;
  timeoutMs?: number;
  connections?: number;
  /** Answers over this many bytes are abandoned (VectorRefusal 502). */
  maxResponseBytes: number;
}

/** The whole body, or a refusal as soon as it passes `max` bytes (the rest is not read). */
async function readCapped(
  body: AsyncIterable<Buffer> & { destroy(): unknown },
  max: number,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) {
      body.destroy();
      throw new VectorRefusal(
        502,
        'PROXY_ERR_VECTOR_RESPONSE_TOO_LARGE',
        `Qdrant's answer is over vector.max_response_bytes (${max} bytes): ask for fewer points (a smaller limit) or leave the vectors out (with_vector: false)`,
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** A keep-alive pool to Qdrant; a URL with a path (a Qdrant behind a prefix) keeps that prefix. */
export function createVectorUpstream(options: VectorUpstreamOptions): VectorUpstream {
  const base = new URL(options.url);
  const basePath = base.pathname.replace(/\/$/, '');
  const timeout = options.timeoutMs ?? 30_000;
  const pool = new Pool(base.origin, {
    connections: options.connections ?? 64,
    keepAliveTimeout: 10_000,
    headersTimeout: timeout,
    bodyTimeout: timeout,
  });
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.apiKey) headers['api-key'] = options.apiKey;

  return {
    async request(method, path, query, body) {
      const search = query.toString();
      try {
        const res = await pool.request({
          method: method as 'GET',
          path: `${basePath}${path}${search ? `?${search}` : ''}`,
          headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const buffer = await readCapped(res.body, options.maxResponseBytes);
        const contentType = String(res.headers['content-type'] ?? '');
        let json: unknown;
        if (contentType.includes('json')) {
          try {
            json = JSON.parse(buffer.toString('utf8'));
          } catch {
            json = undefined;
          }
        }
        return { status: res.statusCode, contentType, body: buffer, json };
      } catch (error) {
        if (error instanceof VectorRefusal) throw error;
        throw new VectorRefusal(
          502,
          'PROXY_ERR_VECTOR_UPSTREAM',
          `Lanekeeper could not reach Qdrant: ${(error as Error).message}`,
        );
      }
    },
    close: () => pool.close(),
  };
}
