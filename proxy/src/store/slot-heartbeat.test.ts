// The heartbeat alone: what it refreshes, for how long, and what it says of a dropped request.
import { describe, expect, it } from 'vitest';
import { createSlotHeartbeat, type Refresh } from './slot-heartbeat.js';
import { admitRequest, collectGarbage } from './store-fixtures.js';
import type { Reservation } from './store.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function reservationOf(requestId: string): Reservation {
  return { tenant: 't', requestId, at: 0, tokens: 0, usd: 0, slot: true, limits: { max_concurrent: 1 } };
}

/** A heartbeat beating every 10 ms that records the ids of each refresh and its warnings. */
function recordingHeartbeat() {
  const refreshed: string[][] = [];
  const warnings: Record<string, unknown>[] = [];
  const logger = { info() {}, error() {}, warn: (fields: object) => warnings.push({ ...fields }) };
  const heartbeat = createSlotHeartbeat(
    10,
    (batch: readonly Refresh[]) => refreshed.push(batch.flatMap((r) => [...r.expiries.keys()])),
    { logger, store: 'memory' },
  );
  return { heartbeat, refreshed, warnings };
}

describe('slot heartbeat', () => {
  it('refreshes a held request on every beat, through garbage collections, until it is released', async () => {
    const { heartbeat, refreshed, warnings } = recordingHeartbeat();
    const reservation = reservationOf('r-live');
    heartbeat.hold(admitRequest('t', reservation.limits, { requestId: 'r-live' }), reservation);
    try {
      await sleep(60);
      collectGarbage();
      await sleep(60);
      expect(refreshed.length).toBeGreaterThan(2);
      expect(refreshed.every((ids) => ids.includes('r-live'))).toBe(true);
      heartbeat.release('r-live');
      const beats = refreshed.length;
      await sleep(60);
      expect(refreshed.length).toBe(beats);
      expect(warnings).toEqual([]);
    } finally {
      heartbeat.stop();
    }
  });

  it('drops a request whose reservation was collected, with one warning for all dropped at once', async () => {
    const { heartbeat, refreshed, warnings } = recordingHeartbeat();
    const kept = reservationOf('r-kept');
    heartbeat.hold(admitRequest('t', kept.limits, { requestId: 'r-kept' }), kept);
    // Held, then lost: nothing outside the heartbeat keeps these reservations.
    const holdAndLose = (id: string) =>
      heartbeat.hold(admitRequest('t', kept.limits, { requestId: id }), reservationOf(id));
    holdAndLose('r-lost-1');
    holdAndLose('r-lost-2');
    try {
      for (let i = 0; i < 20 && warnings.length === 0; i++) {
        await sleep(20);
        collectGarbage();
      }
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ store: 'memory', tenant: 't', requests: 2 });
      const beats = refreshed.length;
      await sleep(60);
      expect(refreshed.length).toBeGreaterThan(beats);
      expect(refreshed.slice(beats).every((ids) => ids.length === 1 && ids[0] === 'r-kept')).toBe(true);
      expect(warnings).toHaveLength(1);
    } finally {
      heartbeat.stop();
    }
    // Used after the collections, so `kept` stays reachable through them.
    expect(kept.requestId).toBe('r-kept');
  });
});
