/**
 * The Redis names both sides use. The proxy's Lua scripts and the control plane's erasure
 * and usage reads depend on exactly these strings, so they are pinned here.
 */
import { describe, expect, it } from 'vitest';
import {
  HOUR_FIELDS,
  budgetWindows,
  configChannel,
  emptyHour,
  hourFromHash,
  tenantKeyCache,
  tenantKeys,
  usageStreamKey,
} from '../src/index.js';

const NOW = Date.UTC(2026, 10, 29, 14, 30);

describe('tenantKeys', () => {
  it("puts every key of a tenant in one cluster slot, under the tenant's hash tag", () => {
    const keys = tenantKeys('lk:', 'acme');
    const names = [keys.rpm, keys.slots, keys.tokens, keys.reserved, keys.total, keys.erased, keys.hour(NOW)];
    for (const name of names) expect(name.startsWith('lk:{acme}:')).toBe(true);
    expect(keys.hour(NOW)).toBe('lk:{acme}:hour:2026-11-29T14');
    expect(keys.marks).toBe('lk:{acme}:marks');
    expect(keys.spendDay(NOW)).toBe('lk:{acme}:spend:d:2026-11-29');
    expect(keys.spendMonth(NOW)).toBe('lk:{acme}:spend:m:2026-11');
  });

  it("escapes glob characters of the prefix in the erasure pattern, so it matches no other tenant's keys", () => {
    expect(tenantKeys('lk:', 'acme').pattern).toBe('lk:{acme}:*');
    expect(tenantKeys('a*[b]?\\', 'acme').pattern).toBe('a\\*\\[b\\]\\?\\\\{acme}:*');
  });

  it('keeps one tenant key set per tenant and bounds the cache', () => {
    const keysOf = tenantKeyCache('lk:', 2);
    const first = keysOf('a');
    expect(keysOf('a')).toBe(first);
    keysOf('b');
    keysOf('c'); // past the limit: the cache is emptied, not grown
    expect(keysOf('a')).not.toBe(first);
    expect(keysOf('a').rpm).toBe(first.rpm);
  });
});

describe('global names', () => {
  it('names the usage stream and the config channel under the prefix', () => {
    expect(usageStreamKey('lk:', 'usage')).toBe('lk:usage');
    expect(configChannel('lk:')).toBe('lk:config');
  });
});

describe('hour buckets', () => {
  it('reads a bucket hash into the HourUsage shape; missing or garbage fields are 0', () => {
    const hour = hourFromHash('acme', NOW, { requests: '3', input_tokens: '12', output_tokens: 'NaN' });
    expect(hour).toEqual({ ...emptyHour('acme', NOW), requests: 3, input_tokens: 12 });
    expect(hour.hour).toBe('2026-11-29T14:00:00.000Z');
    expect(Object.keys(emptyHour('acme', NOW)).filter((k) => k !== 'tenant' && k !== 'hour')).toEqual([
      ...HOUR_FIELDS,
    ]);
  });

  it('cuts budget windows at UTC midnight and month ends', () => {
    expect(budgetWindows(Date.UTC(2026, 11, 31, 23, 59, 59, 999))).toMatchObject({
      day: '2026-12-31',
      month: '2026-12',
    });
    expect(budgetWindows(Date.UTC(2027, 0, 1))).toMatchObject({ day: '2027-01-01', month: '2027-01' });
  });
});
