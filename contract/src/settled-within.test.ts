import { describe, expect, it } from 'vitest';
import { settledWithin } from './settled-within.js';

describe('settledWithin', () => {
  it('says whether the work settled in time, passes its rejection on, and takes no work as settled', async () => {
    expect(await settledWithin(Promise.resolve('done'), 1_000)).toBe(true);
    expect(await settledWithin(new Promise(() => undefined), 20)).toBe(false);
    await expect(settledWithin(Promise.reject(new Error('failed')), 1_000)).rejects.toThrow('failed');
    expect(await settledWithin(undefined, 1_000)).toBe(true);
  });
});
