/**
 * Keeps the concurrency slots and reservations of this process's in-flight requests alive.
 * Slots are taken with a short TTL (`slot_ttl_ms`, 15 s by default) so that those of a
 * replica that crashed, or a release that was lost, free within seconds; a request that
 * runs longer (a 10-minute stream) keeps its slot because this heartbeat pushes the expiry
 * out every `intervalMs` (a third of the TTL), in one call per tenant with requests in
 * flight per interval, not one per request. New expiries are in each admission's own clock
 * (its `now` plus the time since), so a store driven with made-up times stays consistent.
 */
import { performance } from 'node:perf_hooks';
import { reservesWorstCase } from './admission.js';
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
  /** Stops it (the request settled). */
  release(requestId: string): void;
  /** Stops the timer; nothing is refreshed after. */
  stop(): void;
}

/**
 * A heartbeat calling `refresh` every `intervalMs` while something is held. A request held
 * longer than `maxHoldMs` is no longer refreshed, so a settle that never comes (a bug, a
 * crashed pipeline) costs its slot no longer than the old fixed TTL did.
 */
export function createSlotHeartbeat(
  intervalMs: number,
  refresh: (batch: readonly Refresh[]) => void,
  maxHoldMs = Number.POSITIVE_INFINITY,
): SlotHeartbeat {
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
    for (const slot of held.values()) {
      if (elapsedNow - slot.started > maxHoldMs) {
        held.delete(slot.requestId);
        continue;
      }
      const now = slot.at + (elapsedNow - slot.started);
      let group = byTenant.get(slot.tenant);
      if (!group) byTenant.set(slot.tenant, (group = { now, expiries: new Map() }));
      group.expiries.set(slot.requestId, Math.ceil(now + slot.ttlMs));
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
