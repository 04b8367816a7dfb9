/**
 * Waiting on work for at most a while, as shutdowns do: whether `work` settled within `ms`.
 * A rejection is `work`'s to report, as with Promise.race; no work (undefined) has settled;
 * the timer never outlives the wait.
 */
export async function settledWithin(work: Promise<unknown> | undefined, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve(work).then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
