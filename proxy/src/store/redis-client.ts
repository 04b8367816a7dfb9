/**
 * Builds the ioredis client for a RedisStoreConfig: standalone or Cluster, redis:// or
 * rediss:// (TLS), user and password from the URL; and runs the store's Lua scripts by
 * EVALSHA, falling back to EVAL after a NOSCRIPT (a restarted, failed-over or new node).
 * The store bounds every call by `timeout_ms` with its own race (redis.ts); ioredis'
 * commandTimeout is a looser backstop that clears abandoned commands, kept looser because
 * its timer rejects even when the reply is already waiting behind a busy event loop.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisStoreConfig } from '../config/schema.js';

function lua(name: string): string {
  return readFileSync(fileURLToPath(new URL(`./lua/${name}.lua`, import.meta.url)), 'utf8');
}

/** A Lua script and its SHA1, the name EVALSHA calls it by. */
export interface LuaScript {
  readonly lua: string;
  readonly sha: string;
}

function script(...parts: string[]): LuaScript {
  const body = parts.join('\n');
  return { lua: body, sha: createHash('sha1').update(body).digest('hex') };
}

// Loaded once at module init; reservations.lua, batch.lua, guard.lua, settle.lua and record.lua hold helpers.
const RESERVATIONS = lua('reservations');
/**
 * Admits any number of requests, one after another (lua/admit-batch.lua): admit.lua, the one
 * source of the admission rules, becomes the body of a function called once per admission
 * with its own 7 KEYS and 17 ARGV.
 */
export const ADMIT_BATCH_SCRIPT = script(
  RESERVATIONS,
  'local function lk_admit(KEYS, ARGV)',
  lua('admit'),
  'end',
  lua('admit-batch'),
);
/** Settles and records any number of requests (lua/finish.lua). */
export const FINISH_SCRIPT = script(
  RESERVATIONS,
  lua('batch'),
  lua('guard'),
  lua('settle'),
  lua('record'),
  lua('finish'),
);
/** Pushes out the expiry of one tenant's in-flight slots and reservations (lua/refresh.lua). */
export const REFRESH_SCRIPT = script(lua('refresh'));

type Arg = string | number;

/** A standalone or cluster client. */
export type StoreClient = Redis | Cluster;

/**
 * Runs a script by EVALSHA and, when the server does not know it, once by EVAL (which also
 * caches it there). Plain commands, not ioredis' defineCommand: its script commands cost an
 * extra closure per call, and they cannot take a varying number of keys.
 */
export async function runScript(
  client: StoreClient,
  { sha, lua: body }: LuaScript,
  keys: readonly string[],
  args: readonly Arg[],
): Promise<unknown> {
  try {
    return await client.evalsha(sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return client.eval(body, keys.length, ...keys, ...args);
  }
}

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
    // Off: the store already gathers what arrives in one event-loop turn into one admit
    // call and one finish call (one of each per tenant in Cluster), and ioredis's
    // auto-pipelines kept about 1 MB of each request's objects alive across every minor GC
    // at 500 req/s (16% of new space surviving against 9% without; scavenges of 8.6 ms
    // against 1.4 ms), the main source of Redis mode's latency tail. Measured with
    // --trace-gc-nvp and in the bench (docs/performance.md).
    enableAutoPipelining: false,
  };
}

/** Reconnect quickly at first, then every 2 s, forever: the guarded store decides what to do meanwhile. */
function reconnectDelay(times: number): number {
  return Math.min(times * 100, 2_000);
}

/** Opens a client for the config (connecting in the background). */
export function createStoreClient(config: RedisStoreConfig): StoreClient {
  const options = connectionOptions(config);
  let client: Redis | Cluster;
  if (config.cluster) {
    const { host, port, ...redisOptions } = options;
    client = new Cluster([{ host, port }], {
      redisOptions,
      clusterRetryStrategy: reconnectDelay,
      enableAutoPipelining: false,
      slotsRefreshTimeout: Math.max(1_000, config.timeout_ms * 4),
      // TLS endpoints of managed clusters announce IPs that do not match the certificate.
      ...(options.tls ? { dnsLookup: (address, callback) => callback(null, address) } : {}),
    });
  } else {
    client = new Redis({ ...options, retryStrategy: reconnectDelay });
  }
  // Errors surface on each command; an unhandled 'error' event would crash the process.
  client.on('error', () => {});
  return client;
}
