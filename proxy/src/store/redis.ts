/**
 * The shared store for many replicas: every limit lives in Redis and each admission is ONE
 * atomic Lua script (lua/admit.lua: rpm sliding log, concurrency slots, token and budget
 * reservations), so limits stay exact whichever replica takes a request. After the
 * response, settle (lua/settle.lua) and record (lua/record.lua + XADD) are issued in the
 * same tick and ioredis auto-pipelining sends them in one round trip.
 *
 * Reservations and slots are stored with an expiry (the request's slot TTL): a replica
 * that dies mid-request stops holding its tenant's allowance once that TTL passes.
 * Every call is bounded by `timeout_ms`; failures reject, and guarded.ts decides policy.
 */
import type { RedisStoreConfig } from '../config/schema.js';
import type { LimitName } from '../errors.js';
import type { UsageEvent } from '../usage/usage-event.js';
import { LIMIT_ORDER, requiredOutput, retrySeconds } from './admission.js';
import { HOUR_FIELDS, eventTime, increments } from './memory-meter.js';
import { Cluster } from 'ioredis';
import { createStoreClient, type StoreClient } from './redis-client.js';
import { tenantKeys, usageStreamKey } from './redis-keys.js';
import { silentLogger, type StoreLogger } from './store-logger.js';
import {
  MINUTE_MS,
  budgetResets,
  budgetWindows,
  emptyHour,
  type AdmitRequest,
  type AdmitResult,
  type HourUsage,
  type LimitState,
  type Reservation,
  type Settlement,
  type Store,
  type UsageTotals,
} from './store.js';

/** A Redis call that did not answer within `timeout_ms`. */
export class StoreTimeoutError extends Error {
  readonly code = 'PROXY_ERR_STORE_TIMEOUT';
  constructor(operation: string, ms: number) {
    super(`redis ${operation} did not answer within ${ms} ms`);
    this.name = 'StoreTimeoutError';
  }
}

/** Optional collaborators of the Redis store. */
export interface RedisStoreDeps {
  readonly logger?: StoreLogger;
}

/** Day keys live two days, month keys 32, so late settlements still land in their window. */
const DAY_KEY_TTL_S = 2 * 86_400;
const MONTH_KEY_TTL_S = 32 * 86_400;
/** How long a recorded request id is remembered, so a replayed event is not counted twice. */
const RECORD_DEDUPE_S = 2 * 3_600;

function limitState(request: AdmitRequest, raw: string[]): LimitState {
  const [, , , countS, newestS, usedS, latestS] = raw;
  const { limits, now } = request;
  const state: LimitState = {};
  const count = Number(countS);
  if (limits.requests_per_minute !== undefined) {
    state.requests = {
      limit: limits.requests_per_minute,
      remaining: Math.max(0, limits.requests_per_minute - count),
      resetS: count === 0 ? 0 : retrySeconds(Number(newestS) + MINUTE_MS - now),
    };
  }
  if (limits.tokens_per_hour !== undefined) {
    const latest = Number(latestS);
    state.tokens = {
      limit: limits.tokens_per_hour,
      remaining: Math.max(0, Math.floor(limits.tokens_per_hour - Number(usedS))),
      resetS: latest > now ? retrySeconds(latest - now) : 0,
    };
  }
  return state;
}

function hourOf(tenant: string, now: number, raw: Record<string, string>): HourUsage {
  const hour = emptyHour(tenant, now);
  for (const field of HOUR_FIELDS) hour[field] = Number(raw[field] ?? 0);
  return hour;
}

/** Creates the Redis-backed store; it connects in the background and reconnects forever. */
export function createRedisStore(config: RedisStoreConfig, deps: RedisStoreDeps = {}): Store {
  const logger = deps.logger ?? silentLogger;
  if (/[{}]/.test(config.key_prefix)) {
    // Redis Cluster hashes only the first {...} of a key: braces in the prefix would put
    // every tenant in one slot and break the per-tenant hash tag.
    throw new Error(`store.key_prefix must not contain "{" or "}" (got "${config.key_prefix}")`);
  }
  const client: StoreClient = createStoreClient(config);
  const prefix = config.key_prefix;
  const stream = usageStreamKey(prefix, config.usage_stream);
  const retentionS = config.retention_hours * 3_600;
  let lastError = '';
  client.on('error', (error: Error) => {
    if (error.message === lastError) return;
    lastError = error.message;
    logger.warn({ err: error.message, store: 'redis' }, 'redis connection error');
  });
  client.on('ready', () => {
    if (lastError) logger.info({ store: 'redis' }, 'redis connection ready');
    lastError = '';
  });

  /**
   * Races a call against `timeout_ms`, whatever state the connection is in. When the timer
   * fires, the rejection waits one turn of the event loop (setImmediate runs after the I/O
   * poll), so a reply that arrived while the loop was busy still wins: a slow event loop
   * must not turn answered calls into timeouts.
   */
  function bounded<T>(operation: string, call: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        setImmediate(() => {
          if (done) return;
          done = true;
          reject(new StoreTimeoutError(operation, config.timeout_ms));
        });
      }, config.timeout_ms);
      call().then(
        (value) => {
          clearTimeout(timer);
          if (done) return;
          done = true;
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          if (done) return;
          done = true;
          reject(error);
        },
      );
    });
  }

  return {
    kind: 'redis',

    async admit(request: AdmitRequest): Promise<AdmitResult> {
      const { limits, now } = request;
      const keys = tenantKeys(prefix, request.tenant);
      const windows = budgetWindows(now);
      const resets = budgetResets(now);
      const raw = await bounded('admit', () =>
        client.lkAdmit(
          keys.rpm,
          keys.slots,
          keys.tokens,
          keys.reservations,
          keys.reserved,
          keys.spendDay(now),
          keys.spendMonth(now),
          now,
          request.requestId,
          limits.requests_per_minute ?? 0,
          limits.max_concurrent ?? 0,
          limits.tokens_per_hour ?? 0,
          limits.budget_usd_per_day ?? -1,
          limits.budget_usd_per_month ?? -1,
          Math.max(0, Math.ceil(request.promptTokens)),
          request.maxOutput === undefined ? -1 : Math.max(0, Math.floor(request.maxOutput)),
          request.inputPrice,
          request.outputPrice,
          request.slotTtlMs,
          windows.day,
          windows.month,
          resets.dayS,
          resets.monthS,
          requiredOutput(request),
        ),
      );
      const state = limitState(request, raw);
      if (raw[0] !== '1') {
        return {
          ok: false,
          limit: LIMIT_ORDER[Number(raw[1])] as LimitName,
          retryAfterS: retrySeconds(Number(raw[2])),
          state,
        };
      }
      const grantedOutput = Number(raw[1]);
      const reservation: Reservation = {
        tenant: request.tenant,
        requestId: request.requestId,
        at: now,
        tokens: Number(raw[7]),
        usd: Number(raw[8]),
        slot: limits.max_concurrent !== undefined,
        limits,
      };
      return { ok: true, reservation, grantedOutput: grantedOutput < 0 ? undefined : grantedOutput, state };
    },

    async settle(reservation: Reservation, actual: Settlement): Promise<void> {
      const keys = tenantKeys(prefix, reservation.tenant);
      await bounded('settle', () =>
        client.lkSettle(
          keys.slots,
          keys.reservations,
          keys.reserved,
          keys.tokens,
          keys.spendDay(reservation.at),
          keys.spendMonth(reservation.at),
          keys.settled,
          reservation.requestId,
          Math.max(0, Math.round(actual.tokens)),
          Math.max(0, actual.usd),
          reservation.at,
          DAY_KEY_TTL_S,
          MONTH_KEY_TTL_S,
        ),
      );
    },

    async record(event: UsageEvent): Promise<void> {
      const keys = tenantKeys(prefix, event.tenant);
      const at = eventTime(event);
      const add = increments(event);
      const pairs = HOUR_FIELDS.flatMap((field) =>
        field === 'estimated_cost' ? [] : [field, Math.max(0, Math.round(add[field]))],
      );
      await bounded('record', () =>
        Promise.all([
          client.lkRecord(
            keys.hour(at),
            keys.hourIds(at),
            keys.total,
            event.request_id,
            retentionS,
            Math.min(retentionS, RECORD_DEDUPE_S),
            ...pairs,
            'estimated_cost',
            add.estimated_cost,
          ),
          client.xadd(stream, 'MAXLEN', '~', config.usage_stream_maxlen, '*', 'event', JSON.stringify(event)),
        ]),
      );
    },

    async currentHour(tenant: string, now: number): Promise<HourUsage> {
      const raw = await bounded('currentHour', () => client.hgetall(tenantKeys(prefix, tenant).hour(now)));
      return hourOf(tenant, now, raw);
    },

    async allTime(tenant: string): Promise<UsageTotals> {
      const raw = await bounded('allTime', () => client.hgetall(tenantKeys(prefix, tenant).total));
      const { hour: _hour, ...totals } = hourOf(tenant, 0, raw);
      return totals;
    },

    async healthy(): Promise<boolean> {
      try {
        return (await bounded('ping', () => client.ping())) === 'PONG';
      } catch {
        return false;
      }
    },

    async eraseTenant(tenant: string): Promise<number> {
      const pattern = tenantKeys(prefix, tenant).pattern;
      const nodes = client instanceof Cluster ? client.nodes('master') : [client];
      // Before a cluster client knows its topology it lists no nodes: an erasure that
      // scanned nothing must fail, not report success.
      if (nodes.length === 0) throw new Error('redis cluster topology not known yet; retry the erasure');
      let removed = 0;
      for (const node of nodes) {
        let cursor = '0';
        do {
          const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          cursor = next;
          if (found.length > 0) removed += await node.unlink(...found);
        } while (cursor !== '0');
      }
      return removed;
    },

    async close(): Promise<void> {
      try {
        await bounded('quit', () => client.quit());
      } catch {
        client.disconnect();
      }
    },
  };
}
