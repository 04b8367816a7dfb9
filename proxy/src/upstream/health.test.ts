import { describe, expect, it } from 'vitest';
import { Metrics } from '../metrics.js';
import type { Upstream } from '../runtime.js';
import { UpstreamHealth } from './health.js';

const upstream = { name: 'a', config: { eject_after: 2, eject_for_ms: 1_000 } } as unknown as Upstream;

function ejected(): { health: UpstreamHealth; clock: { now: number } } {
  const clock = { now: 0 };
  const health = new UpstreamHealth(new Metrics(10), () => clock.now);
  for (let i = 0; i < 2; i++) {
    health.begin(upstream);
    health.failed(upstream);
  }
  expect(health.available(upstream)).toBe(false);
  return { health, clock };
}

describe('UpstreamHealth', () => {
  it('lets one probe go once the ejection is over; a failed probe ejects it for twice as long', () => {
    const { health, clock } = ejected();
    clock.now = 1_000;
    expect(health.available(upstream)).toBe(true);
    health.begin(upstream);
    expect(health.available(upstream)).toBe(false);
    health.failed(upstream);
    clock.now = 2_999;
    expect(health.available(upstream)).toBe(false);
    clock.now = 3_000;
    expect(health.available(upstream)).toBe(true);
  });

  it('does not take a call made while every candidate is ejected (panic mode) for the probe', () => {
    const { health, clock } = ejected();
    // Every candidate ejected: the request goes to this one anyway, and fails.
    clock.now = 100;
    health.begin(upstream);
    health.failed(upstream);
    // The ejection keeps its end: the probe still goes at 1 s, not 2 s after the panic call.
    clock.now = 1_000;
    expect(health.available(upstream)).toBe(true);
    health.begin(upstream);
    health.succeeded(upstream);
    expect(health.available(upstream)).toBe(true);
  });

  it('lets a panic-mode call that succeeds bring the upstream back', () => {
    const { health, clock } = ejected();
    clock.now = 100;
    health.begin(upstream);
    health.succeeded(upstream);
    expect(health.available(upstream)).toBe(true);
  });
});
