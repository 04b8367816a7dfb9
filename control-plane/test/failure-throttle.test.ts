import { describe, expect, it } from 'vitest';
import { addressKey, createFailureThrottle } from './failure-throttle.js';

function clocked(options: Parameters<typeof createFailureThrottle>[0] = {}) {
  let t = 1_000_000;
  const throttle = createFailureThrottle({ ...options, now: () => t });
  return { throttle, advance: (ms: number) => (t += ms) };
}

describe('createFailureThrottle', () => {
  it('lets an address fail ten times in a minute, then refuses it until the oldest failure ages out', () => {
    const { throttle, advance } = clocked();
    for (let i = 0; i < 10; i++) {
      expect(throttle.check('10.0.0.1')).toBeUndefined();
      throttle.fail('10.0.0.1');
      advance(1000);
    }
    // The first failure was 10 s ago: 50 s left in its window.
    expect(throttle.check('10.0.0.1')).toEqual({ retryAfterS: 50 });
    advance(49_999);
    expect(throttle.check('10.0.0.1')).toEqual({ retryAfterS: 1 });
    advance(1);
    // One failure left the window: one more try, and the next refusal waits for the second oldest.
    expect(throttle.check('10.0.0.1')).toBeUndefined();
    throttle.fail('10.0.0.1');
    expect(throttle.check('10.0.0.1')).toEqual({ retryAfterS: 1 });
  });

  it('forgets an address entirely once its failures are older than the window', () => {
    const { throttle, advance } = clocked();
    for (let i = 0; i < 10; i++) throttle.fail('10.0.0.1');
    expect(throttle.check('10.0.0.1')).toBeDefined();
    advance(60_000);
    expect(throttle.check('10.0.0.1')).toBeUndefined();
    expect(throttle.size).toBe(0);
  });

  it('counts each address on its own', () => {
    const { throttle } = clocked();
    for (let i = 0; i < 10; i++) throttle.fail('10.0.0.1');
    expect(throttle.check('10.0.0.1')).toBeDefined();
    expect(throttle.check('10.0.0.2')).toBeUndefined();
  });

  it('tracks at most maxAddresses, forgetting the one whose last failure is oldest', () => {
    const { throttle, advance } = clocked({ maxAddresses: 100 });
    for (let i = 0; i < 10; i++) throttle.fail('192.0.2.1');
    advance(1);
    for (let i = 0; i < 10; i++) throttle.fail('192.0.2.2');
    for (let i = 0; i < 99; i++) {
      advance(1);
      throttle.fail(`10.1.${i >> 8}.${i & 255}`);
    }
    expect(throttle.size).toBe(100);
    expect(throttle.check('192.0.2.1')).toBeUndefined();
    expect(throttle.check('192.0.2.2')).toBeDefined();
    for (let i = 0; i < 100_000; i++) throttle.fail(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    expect(throttle.size).toBe(100);
  });

  it('keeps at most maxFailures timestamps per address, however many failures arrive', () => {
    const { throttle, advance } = clocked();
    for (let i = 0; i < 100_000; i++) throttle.fail('10.0.0.1');
    // All 100,000 at the same instant: still free after one window, not 100,000 windows.
    advance(60_000);
    expect(throttle.check('10.0.0.1')).toBeUndefined();
  });

  it('takes any string as an address without throwing', () => {
    const { throttle } = clocked();
    for (const address of [
      undefined,
      '',
      ':',
      '::',
      ':::::::::',
      'x'.repeat(100_000),
      '%',
      '__proto__',
      'constructor',
    ]) {
      for (let i = 0; i < 10; i++) throttle.fail(address);
      expect(throttle.check(address), String(address).slice(0, 20)).toBeDefined();
    }
  });
});

describe('addressKey', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['::FFFF:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:db8:1:2::', '2001:db8:1:2::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
  ])('counts %s as %s', (address, key) => {
    expect(addressKey(address)).toBe(key);
  });
});
