/**
 * The embedded store: exact limits and metering for a single process, no services needed.
 * Every admit runs synchronously between awaits, so it is atomic by construction.
 *
 * - requests_per_minute: per-second buckets over the minute (second-buckets.ts).
 * - max_concurrent: slots keyed by request id that expire after `slotTtlMs`.
 * - tokens_per_hour: metered tokens in one-minute buckets (a bucket leaves the window 60
 *   minutes after its minute began) plus outstanding reservations.
 * - budgets: actual plus reserved spend per UTC day and calendar month.
 * Reservations expire with the slot TTL, exactly like the Redis store, so a request that
 * never settles cannot hold a limit forever.
 */
import type { UsageEvent } from '../usage/usage-event.js';
import {
  decideAdmission,
  hasBudget,
  msUntilFreed,
  RELEASES_READ,
  requiredOutput,
  reservesWorstCase,
  retrySeconds,
} from './admission.js';
import type { LimitName } from '../errors.js';
import { MemoryMeter } from './memory-meter.js';
import { createSlotHeartbeat } from './slot-heartbeat.js';
import type { StoreLogger } from './store-logger.js';
import {
  HOUR_MS,
  MINUTE_MS,
  addableCost,
  budgetResets,
  budgetWindows,
  countable,
  type AdmitRequest,
  type AdmitResult,
  type HourUsage,
  type LimitState,
  type Reservation,
  type Settlement,
  type Store,
  type UsageTotals,
} from './store.js';
import { SecondBuckets } from './second-buckets.js';

/** Minute buckets in the sliding hour. */
const MINUTES_PER_HOUR = HOUR_MS / MINUTE_MS;
const NO_SPEND = Object.freeze({ day: 0, month: 0 });

interface Held {
  readonly tokens: number;
  readonly usd: number;
  readonly day: string;
  readonly month: string;
  readonly expiresAt: number;
}

interface TenantLimits {
  /** Admissions in the sliding minute, per second (second-buckets.ts). */
  rpm: SecondBuckets;
  /** Request id -> slot expiry. */
  slots: Map<string, number>;
  /** Minute index -> metered tokens. */
  minutes: Map<number, number>;
  reservations: Map<string, Held>;
  /** "d:YYYY-MM-DD" / "m:YYYY-MM" -> actual USD. */
  spend: Map<string, number>;
  /**
   * No key of `minutes` is below this (a lower bound), so prune walks them only once the
   * oldest can have left the hour; and the highest key ever set while any remain. Walking
   * the map on every admit cost up to 60 steps a request, each a cold cache line when a
   * thousand tenants take turns.
   */
  minutesFrom: number;
  latestMinute: number;
  /** Sum of `minutes` and of the reservations' tokens, kept as they change (all integers). */
  minuteTokens: number;
  reservedTokens: number;
  /** No slot / reservation expires before this (a lower bound): until then prune skips them. */
  slotsExpireFrom: number;
  reservationsExpireFrom: number;
}

function newTenant(): TenantLimits {
  return {
    rpm: new SecondBuckets(),
    slots: new Map(),
    minutes: new Map(),
    minutesFrom: Number.POSITIVE_INFINITY,
    latestMinute: Number.NEGATIVE_INFINITY,
    reservations: new Map(),
    spend: new Map(),
    minuteTokens: 0,
    reservedTokens: 0,
    slotsExpireFrom: Number.POSITIVE_INFINITY,
    reservationsExpireFrom: Number.POSITIVE_INFINITY,
  };
}

/** The `spend` keys of a day and month, built once per day and shared by every tenant. */
let lastSpendKeys = { day: '', month: '', dayKey: '', monthKey: '' };
function spendKeys(day: string, month: string): { dayKey: string; monthKey: string } {
  // One string object per key: no string built and hashed per request, and each tenant's map
  // holds the same object, so a lookup never reads that tenant's (cold) copy of the key.
  if (lastSpendKeys.day !== day || lastSpendKeys.month !== month) {
    lastSpendKeys = { day, month, dayKey: `d:${day}`, monthKey: `m:${month}` };
  }
  return lastSpendKeys;
}

function release(t: TenantLimits, requestId: string): void {
  const held = t.reservations.get(requestId);
  if (!held) return;
  t.reservations.delete(requestId);
  t.reservedTokens -= held.tokens;
}

/**
 * Drops what has aged out. Every admit calls it, so it must not walk every request in
 * flight: slots and reservations are scanned only once `now` passes the earliest expiry
 * any of them could have (settled ones leave the maps as they settle), and the scan sets
 * the next bound. Admission cost so stays flat however many streams a tenant holds open.
 */
function prune(t: TenantLimits, now: number): void {
  t.rpm.prune(now);
  if (now >= t.slotsExpireFrom) {
    let next = Number.POSITIVE_INFINITY;
    for (const [id, expiry] of t.slots) {
      if (expiry <= now) t.slots.delete(id);
      else if (expiry < next) next = expiry;
    }
    t.slotsExpireFrom = next;
  }
  const firstMinute = Math.floor(now / MINUTE_MS) - MINUTES_PER_HOUR + 1;
  if (t.minutesFrom < firstMinute) {
    let next = Number.POSITIVE_INFINITY;
    for (const [minute, tokens] of t.minutes) {
      if (minute >= firstMinute) {
        if (minute < next) next = minute;
        continue;
      }
      t.minutes.delete(minute);
      t.minuteTokens -= tokens;
    }
    t.minutesFrom = next;
    if (t.minutes.size === 0) t.latestMinute = Number.NEGATIVE_INFINITY;
  }
  if (now >= t.reservationsExpireFrom) {
    let next = Number.POSITIVE_INFINITY;
    for (const [id, held] of t.reservations) {
      if (held.expiresAt <= now) release(t, id);
      else if (held.expiresAt < next) next = held.expiresAt;
    }
    t.reservationsExpireFrom = next;
  }
  if (t.spend.size > 2) {
    const { day, month } = budgetWindows(now);
    const { dayKey, monthKey } = spendKeys(day, month);
    for (const key of t.spend.keys()) if (key !== dayKey && key !== monthKey) t.spend.delete(key);
  }
}

function usedTokens(t: TenantLimits): number {
  return t.minuteTokens + t.reservedTokens;
}

function usedUsd(t: TenantLimits, day: string, month: string): { day: number; month: number } {
  const { dayKey, monthKey } = spendKeys(day, month);
  let d = t.spend.get(dayKey) ?? 0;
  let m = t.spend.get(monthKey) ?? 0;
  for (const held of t.reservations.values()) {
    if (held.day === day) d += held.usd;
    if (held.month === month) m += held.usd;
  }
  return { day: d, month: m };
}

/** When each held token amount leaves the sliding hour. */
/**
 * The minute buckets and the first RELEASES_READ reservations (admission order, about the
 * order they expire in), as admit.lua reads them; `unread` when some were left out.
 */
function tokenReleases(t: TenantLimits): { releases: { at: number; tokens: number }[]; unread?: number } {
  const releases = [...t.minutes].map(([minute, tokens]) => ({
    at: (minute + MINUTES_PER_HOUR) * MINUTE_MS,
    tokens,
  }));
  let read = 0;
  let last = 0;
  for (const held of t.reservations.values()) {
    if (read++ === RELEASES_READ) return { releases, unread: last };
    releases.push({ at: held.expiresAt, tokens: held.tokens });
    last = Math.max(last, held.expiresAt);
  }
  return { releases };
}

/**
 * `own`: the tokens this request just reserved. They are left out of what remains, as
 * OpenAI's x-ratelimit-remaining-tokens leaves out what has not been used: a reservation is
 * a hold on the request's worst case, not consumption (docs/redis.md, "Headers").
 */
function limitState(t: TenantLimits, request: AdmitRequest, own = 0): LimitState {
  const { limits, now } = request;
  const state: LimitState = {};
  if (limits.requests_per_minute !== undefined) {
    // The reset is when the bucket that frees next leaves the window, as Retry-After.
    state.requests = {
      limit: limits.requests_per_minute,
      remaining: Math.max(0, limits.requests_per_minute - t.rpm.total),
      resetS: t.rpm.total === 0 ? 0 : retrySeconds(t.rpm.nextFreeMs(now)),
    };
  }
  if (limits.tokens_per_hour !== undefined) {
    // When the newest metered minute leaves the hour (-Infinity when there is none).
    const latest = (t.latestMinute + MINUTES_PER_HOUR) * MINUTE_MS;
    state.tokens = {
      limit: limits.tokens_per_hour,
      remaining: Math.max(0, Math.floor(limits.tokens_per_hour - (usedTokens(t) - own))),
      resetS: latest > now ? retrySeconds(latest - now) : 0,
    };
  }
  return state;
}

function retryAfter(t: TenantLimits, request: AdmitRequest, limit: LimitName): number {
  const { now, limits } = request;
  switch (limit) {
    case 'requests_per_minute':
      return retrySeconds(t.rpm.nextFreeMs(now));
    case 'max_concurrent':
      // A slot frees when any request in flight ends, which no clock can predict.
      return 1;
    case 'tokens_per_hour': {
      const cap = limits.tokens_per_hour ?? 0;
      const need = request.promptTokens + requiredOutput(request);
      if (need > cap) return HOUR_MS / 1000;
      const needed = need - (cap - usedTokens(t));
      const { releases, unread } = tokenReleases(t);
      return retrySeconds(msUntilFreed(needed, releases, now, unread));
    }
    case 'budget_usd_per_day':
      return budgetResets(now).dayS;
    case 'budget_usd_per_month':
      return budgetResets(now).monthS;
  }
}

/** Creates the embedded single-process store. */
export function createMemoryStore(options: { slotHeartbeatMs?: number; logger?: StoreLogger } = {}): Store {
  const tenants = new Map<string, TenantLimits>();
  // The same short slot TTL and heartbeat as the Redis store (slot-heartbeat.ts), so the
  // two behave alike: a request held past its settle-less TTL only while it is in flight.
  const heartbeat =
    options.slotHeartbeatMs === undefined
      ? undefined
      : createSlotHeartbeat(
          options.slotHeartbeatMs,
          (batch) => {
            for (const { tenant, expiries } of batch) {
              const t = tenants.get(tenant);
              if (!t) continue;
              for (const [id, expiry] of expiries) {
                const slot = t.slots.get(id);
                if (slot !== undefined && slot < expiry) t.slots.set(id, expiry);
                const held = t.reservations.get(id);
                if (held && held.expiresAt < expiry) t.reservations.set(id, { ...held, expiresAt: expiry });
              }
            }
          },
          { logger: options.logger, store: 'memory' },
        );
  const meter = new MemoryMeter();
  const settledReservations = new WeakSet<Reservation>();
  const tenantOf = (id: string): TenantLimits => {
    let t = tenants.get(id);
    if (!t) {
      t = newTenant();
      tenants.set(id, t);
    }
    return t;
  };

  return {
    kind: 'memory',

    async admit(request: AdmitRequest): Promise<AdmitResult> {
      const t = tenantOf(request.tenant);
      const { now, limits } = request;
      prune(t, now);
      const windows = budgetWindows(now);
      // Spend is summed over the reservations in flight, so only when a budget needs it.
      const usd = hasBudget(limits) ? usedUsd(t, windows.day, windows.month) : NO_SPEND;
      const decision = decideAdmission(request, {
        requests: t.rpm.total,
        slots: t.slots.size,
        tokens: usedTokens(t),
        usdDay: usd.day,
        usdMonth: usd.month,
      });
      if (!decision.ok) {
        return {
          ok: false,
          limit: decision.limit,
          retryAfterS: retryAfter(t, request, decision.limit),
          state: limitState(t, request),
        };
      }
      if (limits.requests_per_minute !== undefined) t.rpm.add(now);
      const slot = limits.max_concurrent !== undefined;
      if (slot) {
        t.slots.set(request.requestId, now + request.slotTtlMs);
        t.slotsExpireFrom = Math.min(t.slotsExpireFrom, now + request.slotTtlMs);
      }
      if (reservesWorstCase(limits)) {
        release(t, request.requestId);
        t.reservations.set(request.requestId, {
          tokens: decision.tokens,
          usd: decision.usd,
          day: windows.day,
          month: windows.month,
          expiresAt: now + request.slotTtlMs,
        });
        t.reservedTokens += decision.tokens;
        t.reservationsExpireFrom = Math.min(t.reservationsExpireFrom, now + request.slotTtlMs);
      }
      const reservation: Reservation = {
        tenant: request.tenant,
        requestId: request.requestId,
        at: now,
        tokens: decision.tokens,
        usd: decision.usd,
        slot,
        limits,
      };
      heartbeat?.hold(request, reservation);
      return {
        ok: true,
        reservation,
        grantedOutput: decision.grantedOutput,
        state: limitState(t, request, reservation.tokens),
      };
    },

    async settle(reservation: Reservation, actual: Settlement): Promise<void> {
      heartbeat?.release(reservation.requestId);
      const t = tenantOf(reservation.tenant);
      t.slots.delete(reservation.requestId);
      release(t, reservation.requestId);
      // In one process a repeated settle passes the same reservation object (the guarded
      // store replays what it holds), so identity is the idempotency key. Remembering ids
      // instead grew memory with the request rate for hours (seen in the soak benchmark).
      if (settledReservations.has(reservation)) return;
      settledReservations.add(reservation);
      const minute = Math.floor(reservation.at / MINUTE_MS);
      const tokens = countable(actual.tokens);
      if (tokens > 0) {
        t.minutes.set(minute, (t.minutes.get(minute) ?? 0) + tokens);
        t.minuteTokens += tokens;
        if (minute < t.minutesFrom) t.minutesFrom = minute;
        if (minute > t.latestMinute) t.latestMinute = minute;
      }
      const usd = addableCost(actual.usd);
      if (usd > 0) {
        const { day, month } = budgetWindows(reservation.at);
        const { dayKey, monthKey } = spendKeys(day, month);
        t.spend.set(dayKey, (t.spend.get(dayKey) ?? 0) + usd);
        t.spend.set(monthKey, (t.spend.get(monthKey) ?? 0) + usd);
      }
    },

    async record(event: UsageEvent): Promise<void> {
      meter.record(event);
    },

    async currentHour(tenant: string, now: number): Promise<HourUsage> {
      return meter.currentHour(tenant, now);
    },

    async allTime(tenant: string): Promise<UsageTotals> {
      return meter.allTime(tenant);
    },

    async healthy(): Promise<boolean> {
      return true;
    },

    async eraseTenant(tenant: string): Promise<number> {
      const removed = (tenants.delete(tenant) ? 1 : 0) + meter.erase(tenant);
      return removed;
    },

    async close(): Promise<void> {
      heartbeat?.stop();
      tenants.clear();
      meter.clear();
    },
  };
}
