/**
 * The shared store for many replicas: every limit lives in Redis and each admission is ONE
 * atomic Lua script (lua/admit.lua: rpm sliding log, concurrency slots, token and budget
 * reservations), so limits stay exact whichever replica takes a request. After the
 * response, settle and record do not each send their own commands: they wait for the end
 * of the event-loop turn, and everything that ended in that turn goes as ONE script call
 * (lua/finish.lua: settle, count and append to the usage stream), one per tenant in Redis
 * Cluster, where the stream is appended to by XADD beside it. ioredis' per-command cost was
 * the largest part of Redis mode's CPU, and settle + record + XADD were three of four.
 *
 * Reservations and slots are stored with an expiry (the request's slot TTL): a replica
 * that dies mid-request stops holding its tenant's allowance once that TTL passes.
 * Every call is bounded by `timeout_ms`; failures reject, and guarded.ts decides policy.
 */
import type { RedisStoreConfig } from '../config/schema.js';
import type { LimitName } from '../errors.js';
import type { UsageEvent } from '../usage/usage-event.js';
import { LIMIT_ORDER, requiredOutput, reservesWorstCase, retrySeconds } from './admission.js';
import { HOUR_FIELDS, eventTime } from './memory-meter.js';
import { Cluster } from 'ioredis';
import {
  ADMIT_SCRIPT,
  FINISH_SCRIPT,
  createStoreClient,
  runScript,
  type StoreClient,
} from './redis-client.js';
import { createDeadlines } from './redis-deadlines.js';
import { tenantKeyCache, usageStreamKey } from './redis-keys.js';
import { silentLogger, type StoreLogger } from './store-logger.js';
import {
  MINUTE_MS,
  budgetDay,
  budgetResets,
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
/** Most settles and records in one finish.lua call, so one call never holds Redis for long. */
const MAX_ENDINGS_PER_CALL = 64;

/** A settle or a record waiting for the end of the event-loop turn (see finish.lua). */
type Ending = (
  | { readonly kind: 'settle'; readonly reservation: Reservation; readonly actual: Settlement }
  | { readonly kind: 'record'; readonly event: UsageEvent }
) & { readonly resolve: () => void; readonly reject: (error: unknown) => void };

/** A counter as record.lua adds it: a whole, non-negative number. */
function count(value: number): number {
  return Math.max(0, Math.round(value));
}

function limitState(request: AdmitRequest, raw: readonly string[]): LimitState {
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
  const keysOf = tenantKeyCache(prefix);
  const stream = usageStreamKey(prefix, config.usage_stream);
  const retentionS = config.retention_hours * 3_600;
  // In Cluster the stream hashes to its own slot, so it cannot be touched by a tenant's script.
  const streamInScript = !config.cluster;
  const finishHeader = [
    DAY_KEY_TTL_S,
    MONTH_KEY_TTL_S,
    retentionS,
    Math.min(retentionS, RECORD_DEDUPE_S),
    streamInScript ? config.usage_stream_maxlen : '',
  ];
  const endings = new Map<string, Ending[]>();
  let endingsScheduled = false;
  /** finish.lua calls not answered yet, which close() lets finish before QUIT. */
  const finishing = new Set<Promise<void>>();
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

  /** Races a call against `timeout_ms` whatever state the connection is in (redis-deadlines.ts). */
  const bounded = createDeadlines(
    config.timeout_ms,
    (operation) => new StoreTimeoutError(operation, config.timeout_ms),
  );

  /** Queues a settle or record for the batch sent at the end of this event-loop turn. */
  function end(tenant: string, ending: Ending): void {
    // Standalone: one batch for all; Cluster: one per tenant, whose keys share a slot.
    const group = streamInScript ? '' : tenant;
    const batch = endings.get(group);
    if (batch) batch.push(ending);
    else endings.set(group, [ending]);
    if (!endingsScheduled) {
      endingsScheduled = true;
      // setImmediate, not a microtask: responses that end in the same turn (one poll of the
      // sockets) share the call.
      setImmediate(flushEndings);
    }
  }

  function flushEndings(): void {
    endingsScheduled = false;
    for (const batch of endings.values()) {
      for (let i = 0; i < batch.length; i += MAX_ENDINGS_PER_CALL) {
        sendEndings(batch.length <= MAX_ENDINGS_PER_CALL ? batch : batch.slice(i, i + MAX_ENDINGS_PER_CALL));
      }
    }
    endings.clear();
  }

  function sendEndings(batch: readonly Ending[]): void {
    const keys: string[] = streamInScript ? [stream] : [];
    const args: (string | number)[] = [...finishHeader];
    const appends: string[] = [];
    for (const ending of batch) {
      if (ending.kind === 'settle') {
        const { reservation, actual } = ending;
        const k = keysOf(reservation.tenant);
        const at = reservation.at;
        keys.push(k.slots, k.reservations, k.reserved, k.tokens, k.spendDay(at), k.spendMonth(at), k.settled);
        // What the admission took, so finish.lua skips what it did not: 1 a slot, 2 a reservation.
        const { limits } = reservation;
        const has = (reservation.slot ? 1 : 0) + (reservesWorstCase(limits) ? 2 : 0);
        args.push('s', reservation.requestId, count(actual.tokens), Math.max(0, actual.usd), at, has);
      } else {
        const { event } = ending;
        const k = keysOf(event.tenant);
        const at = eventTime(event);
        const json = JSON.stringify(event);
        if (!streamInScript) appends.push(json);
        keys.push(k.hour(at), k.hourIds(at), k.total);
        // The counters in HOUR_FIELDS order (record.lua names them), then the cost.
        args.push(
          'r',
          event.request_id,
          streamInScript ? json : '',
          1,
          count(event.input_tokens),
          count(event.output_tokens),
          count(event.cached_input_tokens),
          count(event.cache_write_tokens),
          count(event.reasoning_tokens),
          event.cost_usd ?? 0,
        );
      }
    }
    const call = bounded('finish', () => {
      const finished = runScript(client, FINISH_SCRIPT, keys, args);
      if (appends.length === 0) return finished;
      return Promise.all([
        finished,
        ...appends.map((json) =>
          client.xadd(stream, 'MAXLEN', '~', config.usage_stream_maxlen, '*', 'event', json),
        ),
      ]);
    }).then(
      () => {
        for (const ending of batch) ending.resolve();
      },
      (error: unknown) => {
        for (const ending of batch) ending.reject(error);
      },
    );
    finishing.add(call);
    void call.finally(() => finishing.delete(call));
  }

  return {
    kind: 'redis',

    async admit(request: AdmitRequest): Promise<AdmitResult> {
      const { limits, now } = request;
      const keys = keysOf(request.tenant);
      const day = budgetDay(now);
      const resets = budgetResets(now);
      const raw = (await bounded('admit', () =>
        runScript(
          client,
          ADMIT_SCRIPT,
          [
            keys.rpm,
            keys.slots,
            keys.tokens,
            keys.reservations,
            keys.reserved,
            keys.spendDay(now),
            keys.spendMonth(now),
          ],
          [
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
            day.day,
            day.month,
            resets.dayS,
            resets.monthS,
            requiredOutput(request),
          ],
        ),
      )) as string[];
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

    settle(reservation: Reservation, actual: Settlement): Promise<void> {
      return new Promise((resolve, reject) => {
        end(reservation.tenant, { kind: 'settle', reservation, actual, resolve, reject });
      });
    },

    record(event: UsageEvent): Promise<void> {
      return new Promise((resolve, reject) => {
        end(event.tenant, { kind: 'record', event, resolve, reject });
      });
    },

    async currentHour(tenant: string, now: number): Promise<HourUsage> {
      const raw = await bounded('currentHour', () => client.hgetall(keysOf(tenant).hour(now)));
      return hourOf(tenant, now, raw);
    },

    async allTime(tenant: string): Promise<UsageTotals> {
      const raw = await bounded('allTime', () => client.hgetall(keysOf(tenant).total));
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
      const pattern = keysOf(tenant).pattern;
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
      // What has ended is sent and answered before QUIT (bounded: failures were reported).
      if (endingsScheduled) flushEndings();
      await Promise.allSettled(finishing);
      try {
        await bounded('quit', () => client.quit());
      } catch {
        client.disconnect();
      }
    },
  };
}
