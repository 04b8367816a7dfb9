import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { costOf } from './cost.js';

/** The exact cost in USD of `tokens` at `microsPerM` millionths of a dollar per 1M tokens, as a decimal string. */
function exactUsd(parts: [tokens: number, microsPerM: number][]): string {
  // tokens × (micros/1e6 USD per 1e6 tokens) = tokens × micros × 1e-12 USD.
  const picos = parts.reduce((sum, [tokens, micros]) => sum + BigInt(tokens) * BigInt(micros), 0n);
  const whole = picos / 10n ** 12n;
  const fraction = (picos % 10n ** 12n).toString().padStart(12, '0').replace(/0+$/, '');
  return fraction === '' ? whole.toString() : `${whole}.${fraction}`;
}

describe('costOf', () => {
  it('reads as the exact decimal, without float noise, for prices to the micro-dollar per 1M tokens', () => {
    // Prices up to $100 per 1M tokens with six decimals; up to 1M tokens each way. (Past a
    // few hundred dollars a request, a double's own precision reaches the last pico-dollar.)
    const price = fc.integer({ min: 0, max: 100_000_000 });
    const tokens = fc.integer({ min: 0, max: 1_000_000 });
    fc.assert(
      fc.property(tokens, tokens, price, price, (input, output, inMicros, outMicros) => {
        const cost = costOf({ input, output }, { input: inMicros / 1e6, output: outMicros / 1e6 });
        const exact = exactUsd([
          [input, inMicros],
          [output, outMicros],
        ]);
        // Number's shortest round-trip text: the decimal a person reads in the log.
        expect(Number(exact)).toBe(cost);
      }),
    );
  });

  it('prices the cases that once read 0.0000032999999999999997 and 3.0000000000000004e-7', () => {
    expect(String(costOf({ input: 11, output: 0 }, { input: 0.3, output: 0.6 }))).toBe('0.0000033');
    expect(String(costOf({ input: 0, output: 3 }, { input: 0.3, output: 0.1 }))).toBe('3e-7');
  });

  it('is undefined for a model without a price, never $0', () => {
    expect(costOf({ input: 10, output: 10 }, undefined)).toBeUndefined();
  });
});
