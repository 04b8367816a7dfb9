import { describe, expect, it } from 'vitest';
import { MemoryMeter } from './memory-meter.js';
import { T0, freshTenant, usageEvent } from './store-fixtures.js';
import { HOUR_MS } from './store.js';

describe('MemoryMeter retention', () => {
  it('keeps at most the retained hours of a tenant, however long the process runs', () => {
    const meter = new MemoryMeter(3);
    const tenant = freshTenant();
    for (let hour = 0; hour < 10; hour++) {
      // Several events per hour: only the first of an hour creates its bucket.
      for (let i = 0; i < 3; i++)
        meter.record(usageEvent(tenant, { ts: new Date(T0 + hour * HOUR_MS + i).toISOString() }));
    }
    // The hour of the last event and the three before it at most, plus the all-time record.
    expect(meter.erase(tenant)).toBeLessThanOrEqual(4 + 1);
  });

  it('drops hours past retention but keeps the recent ones and the all-time totals', () => {
    const meter = new MemoryMeter(3);
    const tenant = freshTenant();
    for (let hour = 0; hour < 6; hour++)
      meter.record(usageEvent(tenant, { ts: new Date(T0 + hour * HOUR_MS).toISOString() }));
    expect(meter.currentHour(tenant, T0).requests).toBe(0);
    expect(meter.currentHour(tenant, T0 + 5 * HOUR_MS).requests).toBe(1);
    expect(meter.currentHour(tenant, T0 + 3 * HOUR_MS).requests).toBe(1);
    expect(meter.allTime(tenant).requests).toBe(6);
  });

  it('counts every event of an hour in that hour, the first and the later ones alike', () => {
    const meter = new MemoryMeter();
    const tenant = freshTenant();
    for (let i = 0; i < 5; i++)
      meter.record(usageEvent(tenant, { ts: new Date(T0 + i * 60_000).toISOString() }));
    expect(meter.currentHour(tenant, T0).requests).toBe(5);
    expect(meter.currentHour(tenant, T0).output_tokens).toBe(100);
  });

  it('counts a late event in its own hour, and the newest hour keeps counting after it', () => {
    const meter = new MemoryMeter();
    const tenant = freshTenant();
    const at = (ms: number) => usageEvent(tenant, { ts: new Date(ms).toISOString() });
    meter.record(at(T0));
    meter.record(at(T0 + HOUR_MS));
    meter.record(at(T0 + 10)); // late: the first hour's
    meter.record(at(T0 + HOUR_MS + 10));
    meter.record(at(T0 + 20)); // late again
    expect(meter.currentHour(tenant, T0).requests).toBe(3);
    expect(meter.currentHour(tenant, T0 + HOUR_MS).requests).toBe(2);
    expect(meter.allTime(tenant).requests).toBe(5);
  });

  it('starts a tenant afresh after it was erased, whatever hour it was in', () => {
    const meter = new MemoryMeter();
    const tenant = freshTenant();
    meter.record(usageEvent(tenant, { ts: new Date(T0).toISOString() }));
    expect(meter.erase(tenant)).toBe(2);
    meter.record(usageEvent(tenant, { ts: new Date(T0 + 1).toISOString() }));
    expect(meter.currentHour(tenant, T0).requests).toBe(1);
    expect(meter.allTime(tenant).requests).toBe(1);
  });
});
