/**
 * Keeps the concurrency slots and reservations of this process's in-flight requests alive.
 * Slots are taken with a short TTL (`slot_ttl_ms`, 15 s by default) so that those of a
 * replica that crashed, or a release that was lost, free within seconds; a request that
 * runs longer keeps its slot because this heartbeat pushes the expiry out every
 * `intervalMs` (a third of the TTL), in one call per tenant with requests in flight per
 * interval, not one per request. New expiries are in each admission's own clock (its `now`
 * plus the time since), so a store driven with made-up times stays consistent.
 *
 * A request is kept alive for as long as it is live, with no time limit: `timeout_ms` bounds
 * the silence between an upstream's chunks, not a stream's length, and a cap on holding
 * (it was max(timeout_ms) + 60 s) let a stream still running lose its slot and reservation.
 * Live means not settled and its reservation still reachable: the proxy keeps it on the
 * request's context until the response-end hooks settle it, so a request dropped without
 * its settle (a bug: a stage that never resumes, a hook that never runs) leaves it to the
 * garbage collector. Once collected, the heartbeat stops refreshing it, says so in a warning,
 * and the slot expires within the TTL, as a crashed replica's does.
 */
import { performance } from 'node:perf_hooks';
import { reservesWorstCase } from './admission.js';
import { silentLogger, type StoreLogger } from './store-logger.js';
import type { AdmitRequest, Reservation } from './store.js';

/** One in-flight request whose slot or reservation is kept alive. */
export interface HeldSlot {
  readonly tenant: string;
  readonly requestId: string;
  /** The admission's `now`. */
  readonly at: number;
  /** performance.now() at admission. */
  readonly started: number;
  readonly ttlMs: number;
  /** Held weakly: once the request's context is gone, nothing can settle it (see above). */
  readonly reservation: WeakRef<Reservation>;
}

/** The held requests of one tenant, with the expiry each should now have. */
export interface Refresh {
  readonly tenant: string;
  /** The tenant's clock now, in the frame of its first held admission. */
  readonly now: number;
  readonly expiries: ReadonlyMap<string, number>;
}

export interface SlotHeartbeat {
  /** Starts keeping an admitted request's slot and reservation alive. */
  hold(request: AdmitRequest, reservation: Reservation): void;
  /** Stops it (the request is settling). */
  release(requestId: string): void;
  /** Stops the timer; nothing is refreshed after. */
  stop(): void;
}

/** Where a heartbeat reports requests dropped without their settle. */
export interface SlotHeartbeatOptions {
  readonly logger?: StoreLogger;
  readonly store?: 'memory' | 'redis';
}

/**
 * A heartbeat calling `refresh` every `intervalMs` while something is held. A held request
 * is refreshed until it is released, or until its reservation has been garbage-collected
 * (it can no longer be settled): then it is dropped and left to expire.
 */
export function createSlotHeartbeat(
  intervalMs: number,
  refresh: (batch: readonly Refresh[]) => void,
  options: SlotHeartbeatOptions = {},
): SlotHeartbeat {
  const { logger = silentLogger, store } = options;
  const held = new Map<string, HeldSlot>();
  let timer: NodeJS.Timeout | undefined;

  function beat(): void {
    if (held.size === 0) {
      clearInterval(timer);
      timer = undefined;
      return;
    }
    const elapsedNow = performance.now();
    const byTenant = new Map<string, { now: number; expiries: Map<string, number> }>();
    let dropped: HeldSlot | undefined;
    let droppedCount = 0;
    for (const slot of held.values()) {
      if (slot.reservation.deref() === undefined) {
        held.delete(slot.requestId);
        dropped ??= slot;
        droppedCount++;
        continue;
      }
      const now = slot.at + (elapsedNow - slot.started);
      let group = byTenant.get(slot.tenant);
      if (!group) byTenant.set(slot.tenant, (group = { now, expiries: new Map() }));
      group.expiries.set(slot.requestId, Math.ceil(now + slot.ttlMs));
    }
    if (dropped) {
      // One line per beat however many: a bug that drops every request must not log at its rate.
      logger.warn(
        { store, tenant: dropped.tenant, request_id: dropped.requestId, requests: droppedCount },
        'requests ended without settling (a bug): their slots and reservations are no longer kept alive and expire within slot_ttl_ms',
      );
    }
    if (byTenant.size > 0)
      refresh([...byTenant].map(([tenant, g]) => ({ tenant, now: Math.floor(g.now), expiries: g.expiries })));
  }

  return {
    hold(request, reservation) {
      if (!reservation.slot && !reservesWorstCase(reservation.limits)) return;
      held.set(request.requestId, {
        tenant: request.tenant,
        requestId: request.requestId,
        at: request.now,
        started: performance.now(),
        ttlMs: request.slotTtlMs,
        reservation: new WeakRef(reservation),
      });
      if (timer === undefined) {
        timer = setInterval(beat, intervalMs);
        timer.unref();
      }
    },
    release(requestId) {
      held.delete(requestId);
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
      held.clear();
    },
  };
}
