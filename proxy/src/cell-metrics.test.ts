import fc from 'fast-check';
import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CellCounter, CellHistogram, UsdCounter, toNanoUsd } from './cell-metrics.js';

const BUCKETS = [0.005, 0.01, 0.1, 1, 10];

/** The exposition of one registry, lines sorted (series order is not part of the format). */
async function lines(registry: client.Registry): Promise<string[]> {
  return (await registry.metrics()).split('\n').filter(Boolean).sort();
}

const observation = fc.record({
  tenant: fc.constantFrom('acme', 'globex', 'a"b\\c\nd', '_other'),
  status: fc.constantFrom('200', '429', '500'),
  value: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 100, noNaN: true }), fc.constantFrom(...BUCKETS)),
});

describe('cell metrics', () => {
  it("export what prom-client's own Counter and Histogram would for the same observations", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(observation, { maxLength: 60 }), async (observations) => {
        const ours = new client.Registry();
        const theirs = new client.Registry();
        const counter = new CellCounter({
          name: 'c_total',
          help: 'h',
          labelNames: ['tenant', 'status'],
          registers: [ours],
        });
        const histogram = new CellHistogram({
          name: 'h_seconds',
          help: 'h',
          labelNames: ['tenant'],
          buckets: BUCKETS,
          registers: [ours],
        });
        const promCounter = new client.Counter({
          name: 'c_total',
          help: 'h',
          labelNames: ['tenant', 'status'],
          registers: [theirs],
        });
        const promHistogram = new client.Histogram({
          name: 'h_seconds',
          help: 'h',
          labelNames: ['tenant'],
          buckets: BUCKETS,
          registers: [theirs],
        });
        for (const { tenant, status, value } of observations) {
          counter.cell({ tenant, status }).value += 1;
          histogram.observe(histogram.cell({ tenant }), value);
          promCounter.inc({ tenant, status });
          promHistogram.observe({ tenant }, value);
        }
        expect(await lines(ours)).toEqual(await lines(theirs));
      }),
      { numRuns: 60 },
    );
  });

  it('keeps one series per label set, whatever order the labels come in', () => {
    const counter = new CellCounter({ name: 'x_total', help: 'h', labelNames: ['a', 'b'], registers: [] });
    expect(counter.cell({ a: '1', b: '2' })).toBe(counter.cell({ b: '2', a: '1' }));
    // A separator inside a value must not make two label sets collide.
    expect(counter.cell({ a: '1\u00002', b: '' })).not.toBe(counter.cell({ a: '1', b: '2\u0000' }));
  });

  it('sums dollars exactly: three requests of $0.0000183 read 0.0000549', async () => {
    const registry = new client.Registry();
    const cost = new UsdCounter({
      name: 'usd_total',
      help: 'h',
      labelNames: ['tenant'],
      registers: [registry],
    });
    // One bench request: 42 prompt tokens at $0.15 and 20 output tokens at $0.60 per million.
    const request = 42 * 0.15e-6 + 20 * 0.6e-6;
    // Added as floats, three of them give 0.000054900000000000006.
    expect(request + request + request).not.toBe(0.0000549);
    const cell = cost.cell({ tenant: 'acme' });
    for (let i = 0; i < 3; i++) cell.value += toNanoUsd(request);
    expect(await registry.metrics()).toContain('usd_total{tenant="acme"} 0.0000549\n');
    for (let i = 3; i < 1_000_000; i++) cell.value += toNanoUsd(request);
    expect(await registry.metrics()).toContain('usd_total{tenant="acme"} 18.3\n');
  });
});
