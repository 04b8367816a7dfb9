/**
 * What keeps slow or numerous clients from exhausting the control plane's listener, as the
 * proxy's listener-limits.ts does for its own: a request must arrive whole within
 * `requestTimeoutMs`, and connections past a cap are closed at once. Without them a client
 * with no token held a socket forever by sending a sign-in body (or any body: bodies are read
 * before a route or token is checked) a byte at a time; 600 such sockets under a 512-file
 * limit left proxies unable to fetch their config and PostgreSQL's pool unable to connect.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import { connectionCap, deadlineCheckIntervalMs, openFilesLimit } from '@lanekeeper/contract';

/** Descriptors kept for everything that is not a client: PostgreSQL, Redis, Qdrant, logs. */
const RESERVED_FDS = 128;
const MAX_DEFAULT_CONNECTIONS = 4_096;

/** The connection cap: the configured one, else what the open-files limit leaves. */
export function maxConnectionsFor(configured: number | undefined, fdLimit = openFilesLimit()): number {
  if (configured !== undefined) return configured;
  return connectionCap(RESERVED_FDS, { min: 32, max: MAX_DEFAULT_CONNECTIONS }, fdLimit);
}

/** A node:http server with these limits, for Fastify's `serverFactory`. */
export function createLimitedServer(
  handler: RequestListener,
  limits: { requestTimeoutMs: number; maxConnections?: number },
): Server {
  const headersTimeout = Math.min(10_000, limits.requestTimeoutMs);
  const server = createServer(
    {
      headersTimeout,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: 5_000,
      connectionsCheckingInterval: deadlineCheckIntervalMs(headersTimeout),
    },
    handler,
  );
  server.maxConnections = maxConnectionsFor(limits.maxConnections);
  return server;
}
