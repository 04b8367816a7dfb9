import { describe, expect, it } from 'vitest';
import { backoffMs, failureName, matches, retryAfterMs, unhealthy } from './retry.js';

describe('Retry-After', () => {
  const now = Date.UTC(2026, 11, 5, 12, 0, 0);
  it.each([
    ['2', 2_000],
    ['0', 0],
    ['1.5', 1_500],
    ['Sat, 05 Dec 2026 12:00:10 GMT', 10_000],
    ['Sat, 05 Dec 2026 11:00:00 GMT', 0], // in the past: no wait, never negative
    ['-5', undefined],
    ['soon', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('reads %j as %j ms', (header, ms) => {
    expect(retryAfterMs(header, now)).toBe(ms);
  });

  it('caps what an upstream asks for at max_backoff_ms', () => {
    expect(backoffMs(1, { base: 100, max: 5_000, retryAfter: 86_400_000 })).toBe(5_000);
  });
});

describe('backoff', () => {
  it('draws from [0, base * 2^(retry-1)) with full jitter, capped at max', () => {
    expect(backoffMs(1, { base: 200, max: 10_000 }, () => 0.999)).toBe(199);
    expect(backoffMs(3, { base: 200, max: 10_000 }, () => 0.5)).toBe(400);
    expect(backoffMs(30, { base: 200, max: 10_000 }, () => 0.999)).toBe(9_990);
    expect(backoffMs(2, { base: 200, max: 10_000 }, () => 0)).toBe(0);
  });
});

describe('failures', () => {
  it('names statuses and status-less failures as the config writes them', () => {
    expect(failureName({ status: 503 })).toBe('503');
    expect(failureName({ kind: 'connect_error' })).toBe('connect_error');
    expect(matches([503, 'timeout'], { status: 503 })).toBe(true);
    expect(matches([503, 'timeout'], { kind: 'timeout' })).toBe(true);
    expect(matches([503, 'timeout'], { kind: 'connect_error' })).toBe(false);
  });

  it('counts 5xx and status-less failures against health, not 429', () => {
    expect(unhealthy({ status: 429 })).toBe(false);
    expect(unhealthy({ status: 401 })).toBe(true);
    expect(unhealthy({ status: 400 })).toBe(false);
    expect(unhealthy({ status: 500 })).toBe(true);
    expect(unhealthy({ kind: 'timeout' })).toBe(true);
  });
});
