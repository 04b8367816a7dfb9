/**
 * What the proxy does to an upstream response's head before the client sees it: drops the
 * hop-by-hop headers and those about the operator's account (headers.ts), and decodes a
 * compressed body so metering reads plain bytes.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import zlib from 'node:zlib';
import { HOP_BY_HOP_HEADERS, UPSTREAM_ACCOUNT_HEADERS } from '../headers.js';

/**
 * Response headers to pass on: hop-by-hop ones (and any the Connection header names) are the
 * proxy's own business, and the account's are no tenant's.
 */
export function forwardableHeaders(
  headers: Record<string, string | string[] | undefined>,
): OutgoingHttpHeaders {
  const connection = headers.connection;
  const named =
    connection === undefined
      ? undefined
      : new Set(
          (Array.isArray(connection) ? connection.join(',') : connection)
            .split(',')
            .map((t) => t.trim().toLowerCase())
            .filter(Boolean),
        );
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (
      value === undefined ||
      HOP_BY_HOP_HEADERS.has(name) ||
      UPSTREAM_ACCOUNT_HEADERS.has(name) ||
      named?.has(name)
    )
      continue;
    out[name] = value;
  }
  return out;
}

export function decoderFor(encoding: string): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | undefined {
  switch (encoding.trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip({ flush: zlib.constants.Z_SYNC_FLUSH });
    case 'deflate':
      return zlib.createInflate({ flush: zlib.constants.Z_SYNC_FLUSH });
    case 'br':
      return zlib.createBrotliDecompress({ flush: zlib.constants.BROTLI_OPERATION_FLUSH });
    default:
      return undefined;
  }
}
