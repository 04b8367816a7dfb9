import { describe, expect, it } from 'vitest';
import { QUIRK_TTL_MS, UpstreamQuirks } from './upstream-quirks.js';

describe('UpstreamQuirks', () => {
  it('holds a learned quirk for its upstream only, then asks again after the TTL', () => {
    let now = 1_000;
    const quirks = new UpstreamQuirks(QUIRK_TTL_MS, () => now);
    quirks.markRejectsStreamOptions('http://old-vllm:8000');
    expect(quirks.rejectsStreamOptions('http://old-vllm:8000')).toBe(true);
    expect(quirks.rejectsStreamOptions('http://other:8000')).toBe(false);
    now += QUIRK_TTL_MS - 1;
    expect(quirks.rejectsStreamOptions('http://old-vllm:8000')).toBe(true);
    now += 1;
    expect(quirks.rejectsStreamOptions('http://old-vllm:8000')).toBe(false);
    // Learned again, it holds again from then.
    quirks.markRejectsStreamOptions('http://old-vllm:8000');
    expect(quirks.rejectsStreamOptions('http://old-vllm:8000')).toBe(true);
  });
});
