/**
 * What keeps slow or numerous clients from exhausting the proxy's listeners: header,
 * request and keep-alive timeouts on node:http, and a cap on open connections derived from
 * the process's open-file limit. Without them (`requestTimeout: 0` also turns node's
 * headersTimeout off) a thousand sockets trickling header bytes held a file descriptor
 * each, forever, and under a 1,024-descriptor limit locked every tenant out.
 */
import { connectionCap, deadlineCheckIntervalMs, openFilesLimit } from '@lanekeeper/contract';
import type { Config } from './config/schema.js';

/** Connections the admin listener takes at once (probes, scrapes, usage reads). */
export const ADMIN_MAX_CONNECTIONS = 64;

/** Descriptors kept for everything that is not a client connection: logs, config, Redis, DNS, the admin listener. */
const RESERVED_FDS = 256 + ADMIN_MAX_CONNECTIONS;
const MAX_DEFAULT_CONNECTIONS = 16_384;

/** The connection cap: the configured one, else what the descriptor limit leaves after the upstream pool. */
export function maxConnectionsFor(config: Config, fdLimit = openFilesLimit()): number {
  if (config.server.max_connections !== undefined) return config.server.max_connections;
  const pooled = Object.values(config.upstreams).reduce((sum, u) => sum + u.connections, 0);
  return connectionCap(pooled + RESERVED_FDS, { min: 64, max: MAX_DEFAULT_CONNECTIONS }, fdLimit);
}

/** node:http options for a listener with these limits. */
export function listenerOptions(config: Config): {
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  connectionsCheckingInterval: number;
} {
  const { headers_timeout_ms, request_timeout_ms, keep_alive_timeout_ms } = config.server;
  return {
    headersTimeout: headers_timeout_ms,
    requestTimeout: request_timeout_ms,
    keepAliveTimeout: keep_alive_timeout_ms,
    connectionsCheckingInterval: deadlineCheckIntervalMs(headers_timeout_ms),
  };
}
