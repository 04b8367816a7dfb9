import { describe, expect, it } from 'vitest';
import { Metrics } from '../metrics.js';
import type { Upstream } from '../runtime.js';
import { UpstreamHealth } from './health.js';

const upstream = { name: 'a', config: { eject_after: 2, eject_for_ms: 1_000 } } as unknown as Upstream;

function ejected(): { health: UpstreamHealth; clock: { now: number } } {
  const clock = { now: 0 };
  const health = new UpstreamHealth(new Metrics(10), { now: () => clock.now });
  for (let i = 0; i < 2; i++) {
    health.begin(upstream);
    health.failed(upstream, 'answered 503');
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
    health.failed(upstream, 'answered 503');
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
    health.failed(upstream, 'answered 503');
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

  it('tells an outage once, then a summary a minute, then once that it is back, per upstream', () => {
    const clock = { now: 0 };
    const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
    const logger = {
      warn: (fields: Record<string, unknown>, msg: string) => lines.push({ level: 'warn', msg, fields }),
      info: (fields: Record<string, unknown>, msg: string) => lines.push({ level: 'info', msg, fields }),
    };
    const health = new UpstreamHealth(new Metrics(10), { now: () => clock.now, logger });
    const other = { name: 'b', config: { eject_after: 2, eject_for_ms: 1_000 } } as unknown as Upstream;
    // Three minutes of a failure a second on "a"; "b" keeps answering.
    for (let second = 0; second < 180; second++) {
      clock.now = second * 1_000;
      health.begin(upstream);
      health.failed(upstream, 'connect ECONNREFUSED 127.0.0.1:9');
      health.begin(other);
      health.succeeded(other);
    }
    clock.now = 181_000;
    health.begin(upstream);
    health.succeeded(upstream);
    health.succeeded(upstream);
    expect(lines.map((l) => `${l.level} ${l.msg}`)).toEqual([
      'warn upstream a unavailable',
      'warn upstream a still unavailable',
      'warn upstream a still unavailable',
      'info upstream a available again',
    ]);
    // It starts when "a" is ejected: its second failure in a row (eject_after 2), at 1 s.
    expect(lines[0]!.fields).toMatchObject({ upstream: 'a', err: 'connect ECONNREFUSED 127.0.0.1:9' });
    expect(lines[2]!.fields).toMatchObject({ upstream: 'a', failures: 121, down_for_s: 120 });
    expect(lines[3]!.fields).toMatchObject({ upstream: 'a', failures: 179, down_for_s: 180 });
  });

  it('says nothing of an upstream that fails now and then but is never ejected', () => {
    const lines: string[] = [];
    const logger = {
      warn: (_f: object, msg: string) => lines.push(msg),
      info: (_f: object, msg: string) => lines.push(msg),
    };
    const health = new UpstreamHealth(new Metrics(10), { logger });
    const flaky = { name: 'f', config: { eject_after: 5, eject_for_ms: 1_000 } } as unknown as Upstream;
    for (let i = 0; i < 300; i++) {
      health.begin(flaky);
      if (i % 3 === 0) health.failed(flaky, 'answered 503');
      else health.succeeded(flaky);
    }
    expect(lines).toEqual([]);
  });
});
