// Properties of the admission arithmetic: whatever the request, an admission never lets the
// worst case pass a token cap or a budget, and refuses only when something really does not fit.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideAdmission, msUntilFreed } from './admission.js';

const input = fc.record({
  promptTokens: fc.integer({ min: 0, max: 5_000 }),
  maxOutput: fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: undefined }),
  inputPrice: fc.double({ min: 0, max: 1e-4, noNaN: true }),
  outputPrice: fc.double({ min: 0, max: 1e-3, noNaN: true }),
});
const standing = fc.record({
  requests: fc.constant(0),
  slots: fc.constant(0),
  tokens: fc.integer({ min: 0, max: 20_000 }),
  usdDay: fc.double({ min: 0, max: 2, noNaN: true }),
  usdMonth: fc.double({ min: 0, max: 2, noNaN: true }),
});

describe('decideAdmission', () => {
  it('never grants a worst case beyond the token cap or either budget', () => {
    fc.assert(
      fc.property(input, standing, (req, st) => {
        const limits = { tokens_per_hour: 10_000, budget_usd_per_day: 1, budget_usd_per_month: 1.5 };
        const result = decideAdmission({ ...req, limits }, st);
        if (!result.ok) return;
        expect(st.tokens + result.tokens).toBeLessThanOrEqual(10_000);
        expect(st.usdDay + result.usd).toBeLessThanOrEqual(1 + 1e-9);
        expect(st.usdMonth + result.usd).toBeLessThanOrEqual(1.5 + 1e-9);
        expect(result.grantedOutput).toBeGreaterThanOrEqual(Math.min(1, req.maxOutput ?? 1));
      }),
    );
  });

  it('admits whenever the prompt plus one output token fits every limit', () => {
    fc.assert(
      fc.property(input, standing, (req, st) => {
        const limits = { tokens_per_hour: 10_000, budget_usd_per_day: 1 };
        const fitsTokens = st.tokens + req.promptTokens + 1 <= 10_000;
        const fitsBudget = st.usdDay + req.promptTokens * req.inputPrice + req.outputPrice < 1 - 1e-9;
        if (fitsTokens && fitsBudget) expect(decideAdmission({ ...req, limits }, st).ok).toBe(true);
      }),
    );
  });

  it('checks limits in a fixed order and names the first that refuses', () => {
    const st = { requests: 5, slots: 5, tokens: 10_000, usdDay: 1, usdMonth: 1 };
    const req = { promptTokens: 1, maxOutput: 1, inputPrice: 1, outputPrice: 1 };
    const all = {
      requests_per_minute: 5,
      max_concurrent: 5,
      tokens_per_hour: 10_000,
      budget_usd_per_day: 1,
      budget_usd_per_month: 1,
    };
    const refusedBy = (limits: object) => {
      const r = decideAdmission({ ...req, limits }, st);
      return r.ok ? 'admitted' : r.limit;
    };
    expect(refusedBy(all)).toBe('requests_per_minute');
    expect(refusedBy({ ...all, requests_per_minute: undefined })).toBe('max_concurrent');
    expect(refusedBy({ tokens_per_hour: 10_000, budget_usd_per_day: 1 })).toBe('tokens_per_hour');
    expect(refusedBy({ budget_usd_per_day: 1, budget_usd_per_month: 1 })).toBe('budget_usd_per_day');
    expect(refusedBy({ budget_usd_per_month: 1 })).toBe('budget_usd_per_month');
  });
});

describe('msUntilFreed', () => {
  it('waits for the earliest releases that together free enough', () => {
    const releases = [
      { at: 3_000, tokens: 50 },
      { at: 1_000, tokens: 10 },
      { at: 2_000, tokens: 30 },
    ];
    expect(msUntilFreed(40, releases, 0)).toBe(2_000);
    expect(msUntilFreed(1_000, releases, 0)).toBe(3_600_000);
  });
});
