/**
 * Long config work (validating and indexing 10,000 tenants) split into slices that give the
 * event loop back between them, so a reload never stalls the requests being served while it
 * runs. A slice ends after `maxItems` items or `budgetMs`, whichever comes first; the policy
 * is a parameter so tests can count the yields instead of timing them.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';

export interface SlicePolicy {
  /** Most items one slice handles. */
  readonly maxItems: number;
  /** Time after which a slice ends early (items are not all the same size). */
  readonly budgetMs: number;
  /** Gives the event loop back; `setImmediate` lets pending I/O run first. */
  readonly yieldNow: () => Promise<void>;
}

/** 10 ms slices: a fifth of the 50 ms the issue allows, so the rest of a turn has room. */
export const DEFAULT_SLICES: SlicePolicy = {
  maxItems: 1_000,
  budgetMs: 10,
  yieldNow: () => nextTurn(),
};

/** Counts items and time in the current slice; `tick` yields when the slice is full. */
export interface Slicer {
  tick(): Promise<void> | undefined;
  /** Yields unconditionally, ending the slice (between phases of the work). */
  pause(): Promise<void>;
}

export function createSlicer(policy: SlicePolicy = DEFAULT_SLICES): Slicer {
  let items = 0;
  let started = performance.now();
  const pause = async () => {
    await policy.yieldNow();
    items = 0;
    started = performance.now();
  };
  return {
    tick() {
      items++;
      if (items >= policy.maxItems || performance.now() - started >= policy.budgetMs) return pause();
      return undefined;
    },
    pause,
  };
}

/** Calls `fn` on every item, yielding between slices. */
export async function forEachInSlices<T>(
  items: readonly T[],
  fn: (item: T, index: number) => void,
  slicer: Slicer,
): Promise<void> {
  for (let i = 0; i < items.length; i++) {
    fn(items[i] as T, i);
    const pause = slicer.tick();
    if (pause) await pause;
  }
}
