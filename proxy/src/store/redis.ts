/**
 * The shared store for many replicas: every limit lives in Redis and each admission runs
 * atomically inside a Lua script (lua/admit.lua: rpm per-second buckets, concurrency slots, token
 * and budget reservations), so limits stay exact whichever replica takes a request.
 * Nothing is sent per request: admissions wait for the end of the event-loop turn, and
 * those that arrived in that turn go as ONE script call (lua/admit-batch.lua runs admit.lua
 * for each, in arrival order); after the response, settles and records that ended in the
 * turn go as ONE call too (lua/finish.lua: settle, count and append to the usage stream).
 * In Redis Cluster a script may only touch keys of one slot, so each is one call per tenant,
 * and the stream is appended to by XADD beside it. ioredis' per-command cost (and a socket
 * write per command) was the largest part of Redis mode's CPU.
 *
 * Reservations and slots are stored with an expiry (the request's slot TTL): a replica
 * that dies mid-request stops holding its tenant's allowance once that TTL passes.
 * Every call is bounded by `timeout_ms`; failures reject, and guarded.ts decides policy.
 * A finish call retried after a lost answer counts once by its replay marks, a few per
 * proxy and tenant whatever the rate (replay-marks.ts, lua/guard.lua, docs/redis.md).
 */
import { HOUR_FIELDS, tenantKeyCache, usageStreamKey } from '@lanekeeper/contract';
import type { RedisStoreConfig } from '../config/schema.js';
import type { LimitName } from '../errors.js';
import type { UsageEvent } from '../usage/usage-event.js';
import { LIMIT_ORDER, requiredOutput, reservesWorstCase, retrySeconds } from './admission.js';
import { eventTime } from './memory-meter.js';
import { Cluster } from 'ioredis';
import {
  ADMIT_BATCH_SCRIPT,
  FINISH_SCRIPT,
  REFRESH_SCRIPT,
  createStoreClient,
  runScript,
  type StoreClient,
} from './redis-client.js';
import { createDeadlines } from './redis-deadlines.js';
import { ReplayMarks, type MarkedOp } from './replay-marks.js';
import { createSlotHeartbeat, type Refresh } from './slot-heartbeat.js';
import { silentLogger, type StoreLogger } from './store-logger.js';
import { createOutageLog, type OutageLog } from '@lanekeeper/contract';
import {
  addableCost,
  budgetDay,
  budgetResets,
  countable,
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
  /** Where connection failures go (one warning, a summary a minute, one recovery line); shared with guarded.ts. */
  readonly outage?: OutageLog;
  /**
   * How often the expiry of this process's in-flight slots and reservations is pushed out
   * (slot-heartbeat.ts); undefined: never, each lives its admission's slotTtlMs.
   */
  readonly slotHeartbeatMs?: number;
  /** How long a finish call's replay mark outlives a lost answer (default REPLAY_MARK_TTL_MS). */
  readonly replayMarkTtlMs?: number;
}

/** Day keys live two days, month keys 32, so late settlements still land in their window. */
const DAY_KEY_TTL_S = 2 * 86_400;
const MONTH_KEY_TTL_S = 32 * 86_400;
/**
 * How long Redis keeps the mark of a finish call whose answer the proxy has not acknowledged
 * (lua/guard.lua): the longest a retry of a lost call is recognised. Retries wait for the
 * store to be back (guarded.ts), so this bounds the outage a retry is exact across; beyond
 * it a retry may count again (logged). Marks of a proxy that died live this long.
 */
export const REPLAY_MARK_TTL_MS = 15 * 60_000;
/** Most settles and records in one finish.lua call, so one call never holds Redis for long. */
const MAX_ENDINGS_PER_CALL = 64;
/** Most admissions in one admit-batch.lua call, for the same reason. */
const MAX_ADMISSIONS_PER_CALL = 64;

/** An admission waiting for the end of the event-loop turn (see admit-batch.lua). */
interface Admission {
  readonly request: AdmitRequest;
  readonly resolve: (result: AdmitResult) => void;
  readonly reject: (error: unknown) => void;
}

/** A settle or a record waiting for the end of the event-loop turn (see finish.lua). */
type Ending = (
  | { readonly kind: 'settle'; readonly reservation: Reservation; readonly actual: Settlement }
  | { readonly kind: 'record'; readonly event: UsageEvent }
) & {
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  /** Numbers of earlier calls this op was in whose answer was lost (replay-marks.ts). */
  readonly prior: readonly number[];
};

/** What finish.lua answers for an op of a tenant the control plane erased. */
const ERASED = -1;

/** `own`: the tokens this request just reserved, left out of what remains (see memory.ts). */
function limitState(request: AdmitRequest, raw: readonly string[], own: number): LimitState {
  const [, , , countS, nextFreeS, usedS, latestS] = raw;
  const { limits, now } = request;
  const state: LimitState = {};
  const count = Number(countS);
  if (limits.requests_per_minute !== undefined) {
    state.requests = {
      limit: limits.requests_per_minute,
      remaining: Math.max(0, limits.requests_per_minute - count),
      // When the bucket that frees next leaves the window, as Retry-After.
      resetS: count === 0 ? 0 : retrySeconds(Number(nextFreeS)),
    };
  }
  if (limits.tokens_per_hour !== undefined) {
    const latest = Number(latestS);
    state.tokens = {
      limit: limits.tokens_per_hour,
      remaining: Math.max(0, Math.floor(limits.tokens_per_hour - (Number(usedS) - own))),
      resetS: latest > now ? retrySeconds(latest - now) : 0,
    };
  }
  return state;
}

/** What admit.lua answered for one admission (an array of strings, see the file). */
function admitResult(request: AdmitRequest, raw: readonly string[]): AdmitResult {
  const admitted = raw[0] === '1';
  const state = limitState(request, raw, admitted ? Number(raw[7]) : 0);
  if (!admitted) {
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
    at: request.now,
    tokens: Number(raw[7]),
    usd: Number(raw[8]),
    slot: request.limits.max_concurrent !== undefined,
    limits: request.limits,
  };
  return { ok: true, reservation, grantedOutput: grantedOutput < 0 ? undefined : grantedOutput, state };
}

/** Sends `batch` in calls of at most `max` items. */
function inCalls<T>(batch: T[], max: number, send: (items: T[]) => void): void {
  if (batch.length <= max) {
    send(batch);
    return;
  }
  for (let i = 0; i < batch.length; i += max) send(batch.slice(i, i + max));
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
  const marks = new ReplayMarks(deps.replayMarkTtlMs ?? REPLAY_MARK_TTL_MS);
  const finishHeader = [
    DAY_KEY_TTL_S,
    MONTH_KEY_TTL_S,
    retentionS,
    marks.ttlMs,
    streamInScript ? config.usage_stream_maxlen : '',
    marks.instance,
  ];
  // Standalone: one batch for all tenants; Cluster: one per tenant, whose keys share a slot.
  const groupOf = config.cluster ? (tenant: string) => tenant : () => '';
  const admissions = new Map<string, Admission[]>();
  const endings = new Map<string, Ending[]>();
  let flushScheduled = false;
  /** Calls not answered yet, which close() lets finish before QUIT. */
  const inFlight = new Set<Promise<void>>();
  // ioredis reports every reconnect attempt: the outage log turns them into one warning, a
  // summary a minute and one recovery line, and keeps only the message (no stack per retry).
  const outage = deps.outage ?? createOutageLog(logger, 'redis');
  client.on('error', (error: Error) => outage.failed(error));
  // Shared with the guard (deps.outage), the outage ends when the guard has delivered what
  // waited, with how many: a reconnect alone said "available again" before any of it went
  // through, and a read-only replica then said "unavailable" again.
  if (!deps.outage) client.on('ready', () => outage.succeeded());
  /** A per-call failure: logged on its own while Redis is up, only counted during an outage. */
  const callFailed = (error: unknown, fields: object, msg: string): void => {
    if (outage.down) outage.failed(error);
    else
      logger.warn(
        { ...fields, err: error instanceof Error ? error.message : String(error), store: 'redis' },
        msg,
      );
  };

  /** Races a call against `timeout_ms` whatever state the connection is in (redis-deadlines.ts). */
  const bounded = createDeadlines(
    config.timeout_ms,
    (operation) => new StoreTimeoutError(operation, config.timeout_ms),
  );

  const heartbeat =
    deps.slotHeartbeatMs === undefined
      ? undefined
      : createSlotHeartbeat(deps.slotHeartbeatMs, refreshSlots, { logger, store: 'redis' });

  /** One call per tenant: each has its own hash slot in a Cluster. */
  function refreshSlots(batch: readonly Refresh[]): void {
    for (const { tenant, now, expiries } of batch) {
      const k = keysOf(tenant);
      const args: (string | number)[] = [now];
      for (const [id, expiry] of expiries) args.push(id, expiry);
      const call = bounded('refresh', () =>
        runScript(client, REFRESH_SCRIPT, [k.slots, k.reservations, k.reserved], args),
      ).then(
        () => undefined,
        (error: unknown) =>
          callFailed(
            error,
            { tenant },
            'refreshing in-flight slots failed; they expire unless the next refresh lands',
          ),
      );
      track(call);
    }
  }

  /** Queues an admission, settle or record for the calls sent at the end of this event-loop turn. */
  function enqueue<T>(queues: Map<string, T[]>, tenant: string, item: T): void {
    const group = groupOf(tenant);
    const batch = queues.get(group);
    if (batch) batch.push(item);
    else queues.set(group, [item]);
    if (!flushScheduled) {
      flushScheduled = true;
      // setImmediate, not a microtask: requests that arrive or end in the same turn (one
      // poll of the sockets) share the call.
      setImmediate(flush);
    }
  }

  /** Sends what this turn queued: admissions first (a request waits on them), then endings. */
  function flush(): void {
    flushScheduled = false;
    for (const batch of admissions.values()) inCalls(batch, MAX_ADMISSIONS_PER_CALL, sendAdmissions);
    admissions.clear();
    for (const [group, batch] of endings) {
      // Acknowledgements ride on the group's first call: of every tenant on standalone, of
      // this tenant in a Cluster (its slot).
      let acks: Map<string, number[]> | undefined = marks.takeAcks(config.cluster ? group : undefined);
      inCalls(batch, MAX_ENDINGS_PER_CALL, (items) => {
        sendEndings(items, acks);
        acks = undefined;
      });
    }
    endings.clear();
  }

  /**
   * Queues a settle or record once per op object: a second send while one is in flight
   * shares its call, and one already answered is done (a replay after a lost answer is
   * recognised by Redis instead, see replay-marks.ts).
   */
  function end(
    tenant: string,
    key: object,
    ending: (prior: readonly number[], resolve: () => void, reject: (error: unknown) => void) => Ending,
  ): Promise<void> {
    const pending = marks.pending(key);
    if (pending) return pending;
    if (marks.done(key)) return Promise.resolve();
    let resolveOp!: () => void;
    let rejectOp!: (error: unknown) => void;
    const promise = new Promise<void>((resolve, reject) => {
      resolveOp = resolve;
      rejectOp = reject;
    });
    const prior = marks.send(key, promise);
    enqueue(endings, tenant, ending(prior, resolveOp, rejectOp));
    return promise;
  }

  function track(call: Promise<void>): void {
    inFlight.add(call);
    void call.finally(() => inFlight.delete(call));
  }

  /** Appends one admission's 7 KEYS and 17 ARGV (see admit.lua); throws before appending anything. */
  function pushAdmission(keys: string[], args: (string | number)[], request: AdmitRequest): void {
    const { limits, now } = request;
    const k = keysOf(request.tenant);
    // What can throw (a `now` that is no date) first, so a bad request leaves no half entry.
    const day = budgetDay(now);
    const resets = budgetResets(now);
    const spendDay = k.spendDay(now);
    const spendMonth = k.spendMonth(now);
    const need = requiredOutput(request);
    keys.push(k.rpm, k.slots, k.tokens, k.reservations, k.reserved, spendDay, spendMonth);
    args.push(
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
      need,
    );
  }

  function sendAdmissions(batch: readonly Admission[]): void {
    const keys: string[] = [];
    const args: (string | number)[] = [];
    const sent: Admission[] = [];
    for (const admission of batch) {
      try {
        pushAdmission(keys, args, admission.request);
        sent.push(admission);
      } catch (error) {
        // Rejected alone, as its own call would have been (this runs in setImmediate).
        admission.reject(error);
      }
    }
    if (sent.length === 0) return;
    // One deadline for the call: if it fails or times out, every admission in it rejects
    // with that error (guarded.ts then decides, request by request).
    const call = bounded('admit', () => runScript(client, ADMIT_BATCH_SCRIPT, keys, args)).then(
      (replies) => {
        const raws = replies as string[][];
        for (let i = 0; i < sent.length; i++) {
          const { request, resolve, reject } = sent[i]!;
          const raw = raws[i]!;
          // An error raised by this admission alone (admit-batch.lua caught it).
          if (raw[0] === 'e') {
            reject(new Error(`redis admit failed: ${raw[1]}`));
            continue;
          }
          const result = admitResult(request, raw);
          if (result.ok) heartbeat?.hold(request, result.reservation);
          resolve(result);
        }
      },
      (error: unknown) => {
        for (const admission of sent) {
          admission.reject(error);
          releaseLate(admission.request);
        }
      },
    );
    track(call);
  }

  /**
   * An admission whose call failed or timed out here may still run in Redis later (a slow
   * or paused server answers after the deadline) and hold a slot and a reservation for a
   * request that was refused or went on without them: a ghost slot. So each is released at
   * once, by request id, as a settle of nothing. It goes on the same connection after the
   * admission (the tenant's keys share one hash slot, so one node in a Cluster too), and
   * Redis runs a connection's commands in order: it lands after a late admission, and
   * finds nothing to free, harmlessly, if the admission never ran. Idempotent like every
   * settle. If it cannot be sent either, the slot's expiry frees it.
   */
  function releaseLate(request: AdmitRequest): void {
    const { limits } = request;
    const holdsSlot = limits.max_concurrent !== undefined;
    if (!holdsSlot && !reservesWorstCase(limits)) return;
    const reservation: Reservation = {
      tenant: request.tenant,
      requestId: request.requestId,
      at: request.now,
      tokens: 0,
      usd: 0,
      slot: holdsSlot,
      limits,
    };
    const done = (): void => undefined;
    const failed = (error: unknown): void =>
      callFailed(
        error,
        { request_id: request.requestId },
        'releasing a timed-out admission failed; its slot frees when it expires',
      );
    void end(request.tenant, reservation, (prior, resolve, reject) => ({
      kind: 'settle',
      reservation,
      actual: { tokens: 0, usd: 0 },
      prior,
      resolve,
      reject,
    })).then(done, failed);
  }

  function sendEndings(batch: readonly Ending[], acks?: Map<string, number[]>): void {
    const call = marks.nextCall();
    const keys: string[] = streamInScript ? [stream] : [];
    const args: (string | number)[] = [...finishHeader, call];
    /** Cluster: events to append beside the script, by their op's index in the batch. */
    const appends: { op: number; json: string }[] = [];
    const ops: MarkedOp[] = batch.map((e) =>
      e.kind === 'settle'
        ? { tenant: e.reservation.tenant, key: e.reservation }
        : { tenant: e.event.tenant, key: e.event },
    );
    for (const { tenant, lostForMs } of marks.expired(ops)) {
      logger.warn(
        { store: 'redis', tenant, lost_for_ms: lostForMs },
        'retrying a settle or usage event whose replay mark has expired: it may count twice',
      );
    }
    for (const [tenant, calls] of acks ?? []) {
      keys.push(keysOf(tenant).marks);
      args.push('a', calls.join(' '));
    }
    for (const [op, ending] of batch.entries()) {
      if (ending.kind === 'settle') {
        const { reservation, actual } = ending;
        const k = keysOf(reservation.tenant);
        const at = reservation.at;
        keys.push(k.slots, k.reservations, k.reserved, k.tokens, k.spendDay(at), k.spendMonth(at), k.marks);
        // What the admission took, so finish.lua skips what it did not: 1 a slot, 2 a reservation.
        const { limits } = reservation;
        const has = (reservation.slot ? 1 : 0) + (reservesWorstCase(limits) ? 2 : 0);
        args.push(
          's',
          reservation.requestId,
          countable(actual.tokens),
          addableCost(actual.usd),
          at,
          has,
          ending.prior.join(' '),
        );
      } else {
        const { event } = ending;
        const k = keysOf(event.tenant);
        const at = eventTime(event);
        const json = JSON.stringify(event);
        if (!streamInScript) appends.push({ op, json });
        keys.push(k.hour(at), k.marks, k.total);
        // The counters in HOUR_FIELDS order (record.lua names them), then the cost.
        args.push(
          'r',
          event.request_id,
          streamInScript ? json : '',
          1,
          countable(event.input_tokens),
          countable(event.output_tokens),
          countable(event.cached_input_tokens),
          countable(event.cache_write_tokens),
          countable(event.reasoning_tokens),
          addableCost(event.cost_usd),
          ending.prior.join(' '),
        );
      }
    }
    const sent = bounded('finish', async () => {
      const applied = (await runScript(client, FINISH_SCRIPT, keys, args)) as number[];
      // After the script, so an event of an erased tenant (-1) is not appended either. A
      // replay (0) is appended again: whether the lost call's XADD ran is not known.
      await Promise.all(
        appends
          .filter(({ op }) => applied[op] !== ERASED)
          .map(({ json }) =>
            client.xadd(stream, 'MAXLEN', '~', config.usage_stream_maxlen, '*', 'event', json),
          ),
      );
    }).then(
      () => {
        marks.answered(call, ops);
        for (const ending of batch) ending.resolve();
      },
      (error: unknown) => {
        marks.failed(call, ops);
        if (acks) marks.returnAcks(acks);
        for (const ending of batch) ending.reject(error);
      },
    );
    track(sent);
  }

  return {
    kind: 'redis',

    admit(request: AdmitRequest): Promise<AdmitResult> {
      return new Promise((resolve, reject) => {
        enqueue(admissions, request.tenant, { request, resolve, reject });
      });
    },

    settle(reservation: Reservation, actual: Settlement): Promise<void> {
      heartbeat?.release(reservation.requestId);
      return end(reservation.tenant, reservation, (prior, resolve, reject) => ({
        kind: 'settle',
        reservation,
        actual,
        prior,
        resolve,
        reject,
      }));
    },

    record(event: UsageEvent): Promise<void> {
      return end(event.tenant, event, (prior, resolve, reject) => ({
        kind: 'record',
        event,
        prior,
        resolve,
        reject,
      }));
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
      heartbeat?.stop();
      // What is queued is sent, and every call answered, before QUIT (bounded: failures
      // were reported to their callers).
      if (flushScheduled) flush();
      await Promise.allSettled(inFlight);
      // Forget the marks of calls already answered, so a clean shutdown leaves none behind.
      const acks = marks.takeAcks();
      if (config.cluster) for (const [tenant, calls] of acks) sendEndings([], new Map([[tenant, calls]]));
      else if (acks.size > 0) sendEndings([], acks);
      await Promise.allSettled(inFlight);
      try {
        await bounded('quit', () => client.quit());
      } catch {
        client.disconnect();
      }
    },
  };
}
