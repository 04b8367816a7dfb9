/**
 * Builds the ioredis client for a RedisStoreConfig: standalone or Cluster, redis:// or
 * rediss:// (TLS), user and password from the URL, and the three Lua scripts defined once
 * (ioredis calls them with EVALSHA and falls back to EVAL after a NOSCRIPT, e.g. after a
 * Redis restart). The store bounds every call by `timeout_ms` with its own race (redis.ts);
 * ioredis' commandTimeout is a looser backstop that clears abandoned commands, kept looser
 * because its timer rejects even when the reply is already waiting behind a busy event loop.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisStoreConfig } from '../config/schema.js';

function lua(name: string): string {
  return readFileSync(fileURLToPath(new URL(`./lua/${name}.lua`, import.meta.url)), 'utf8');
}

// Loaded once at module init; reservations.lua holds helpers both scripts share.
const RESERVATIONS = lua('reservations');
const ADMIT = `${RESERVATIONS}\n${lua('admit')}`;
const SETTLE = `${RESERVATIONS}\n${lua('settle')}`;
const RECORD = lua('record');

type Arg = string | number;

/** The store's Lua scripts as client commands. */
export interface StoreCommands {
  lkAdmit(...args: Arg[]): Promise<string[]>;
  lkSettle(...args: Arg[]): Promise<number>;
  lkRecord(...args: Arg[]): Promise<number>;
}

/** A standalone or cluster client with the store's scripts defined. */
export type StoreClient = (Redis | Cluster) & StoreCommands;

/** Connection options shared by standalone and cluster nodes, from the URL and config. */
export function connectionOptions(config: RedisStoreConfig): RedisOptions & { host: string; port: number } {
  const url = new URL(config.redis);
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0;
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : 6379,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: { servername: url.hostname } } : {}),
    ...(Number.isInteger(db) && db > 0 ? { db } : {}),
    commandTimeout: Math.max(1_000, config.timeout_ms * 4),
    connectTimeout: Math.max(1_000, config.timeout_ms * 4),
    // One retry per command at most: while Redis is away, commands fail (and the guarded
    // store takes over) instead of piling up in the offline queue.
    maxRetriesPerRequest: 1,
    enableAutoPipelining: true,
  };
}

/** Reconnect quickly at first, then every 2 s, forever: the guarded store decides what to do meanwhile. */
function reconnectDelay(times: number): number {
  return Math.min(times * 100, 2_000);
}

/** Opens a client for the config (connecting in the background) with the scripts defined. */
export function createStoreClient(config: RedisStoreConfig): StoreClient {
  const options = connectionOptions(config);
  let client: Redis | Cluster;
  if (config.cluster) {
    const { host, port, ...redisOptions } = options;
    client = new Cluster([{ host, port }], {
      redisOptions,
      clusterRetryStrategy: reconnectDelay,
      enableAutoPipelining: true,
      slotsRefreshTimeout: Math.max(1_000, config.timeout_ms * 4),
      // TLS endpoints of managed clusters announce IPs that do not match the certificate.
      ...(options.tls ? { dnsLookup: (address, callback) => callback(null, address) } : {}),
    });
  } else {
    client = new Redis({ ...options, retryStrategy: reconnectDelay });
  }
  client.defineCommand('lkAdmit', { numberOfKeys: 7, lua: ADMIT });
  client.defineCommand('lkSettle', { numberOfKeys: 7, lua: SETTLE });
  client.defineCommand('lkRecord', { numberOfKeys: 3, lua: RECORD });
  // Errors surface on each command; an unhandled 'error' event would crash the process.
  client.on('error', () => {});
  return client as StoreClient;
}
