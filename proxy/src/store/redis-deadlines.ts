/**
 * Bounds calls to Redis by one timeout with a single timer, instead of a setTimeout (and its
 * timer object) per call. Every call gets the same timeout, so deadlines fall in the order
 * the calls were made: a FIFO queue, one timer armed for its oldest deadline, and calls that
 * answer are only marked done and dropped when they reach the head.
 *
 * A call that has not answered by its deadline is rejected one turn of the event loop later
 * (setImmediate runs after the I/O poll), so a reply that arrived while the loop was busy
 * still wins: a slow event loop must not turn answered calls into timeouts.
 *
 * The deadline is also meant to measure Redis, not us: when the timer fires late (the loop
 * was blocked or saturated), that lateness is event-loop lag, and every call in flight at
 * the time gets its deadline pushed back by it. A reply that needs several turns of the loop
 * (a big reply, a write that waited for the socket) then still has its `ms` of loop time.
 * So the timer sees a block soon after it starts, it fires at least every `ms / 5` while
 * calls are in flight (one timer for all calls, so this costs a few wake-ups per timeout).
 * Lag shorter than LAG_TOLERANCE_MS is ordinary timer jitter and is not added.
 */
import { performance } from 'node:perf_hooks';

/** One call in flight. */
interface Pending {
  readonly deadline: number;
  /** The lag counter when the call started: the lag seen since then extends its deadline. */
  readonly lagAtStart: number;
  readonly operation: string;
  done: boolean;
  readonly reject: (error: unknown) => void;
}

const LAG_TOLERANCE_MS = 5;

/** Races calls against a shared timeout; `timedOut` builds the error of one that loses. */
export function createDeadlines(
  ms: number,
  timedOut: (operation: string) => Error,
): <T>(operation: string, call: () => Promise<T>) => Promise<T> {
  let queue: Pending[] = [];
  let head = 0;
  /** Calls not answered yet; at 0 the queue is emptied and the timer stopped. */
  let live = 0;
  let timer: NodeJS.Timeout | undefined;
  const tick = Math.max(LAG_TOLERANCE_MS, Math.floor(ms / 5));
  /** When the armed timer should fire. */
  let plannedAt = 0;
  /** Event-loop lag seen by the timer so far (ms; only grows). */
  let lag = 0;

  function deadlineOf(pending: Pending): number {
    return pending.deadline + (lag - pending.lagAtStart);
  }

  function arm(now: number): void {
    // Drop the answered calls at the head; arm for the first one still waiting.
    while (head < queue.length && queue[head]!.done) head++;
    if (head === queue.length) {
      queue = [];
      head = 0;
      return;
    }
    if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
    const delay = Math.min(tick, Math.max(1, Math.ceil(deadlineOf(queue[head]!) - now)));
    plannedAt = now + delay;
    timer = setTimeout(expire, delay);
  }

  function expire(): void {
    timer = undefined;
    const now = performance.now();
    if (now - plannedAt > LAG_TOLERANCE_MS) lag += now - plannedAt;
    const expired: Pending[] = [];
    // Deadlines stay in call order: the lag a later call misses is time an earlier one waited.
    while (head < queue.length && deadlineOf(queue[head]!) <= now) {
      const pending = queue[head++]!;
      if (!pending.done) expired.push(pending);
    }
    if (expired.length > 0) {
      setImmediate(() => {
        for (const pending of expired) {
          if (pending.done) continue;
          settled(pending);
          pending.reject(timedOut(pending.operation));
        }
      });
    }
    arm(now);
  }

  function settled(pending: Pending): void {
    pending.done = true;
    live--;
    if (live === 0) {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      queue = [];
      head = 0;
    }
  }

  return function bounded<T>(operation: string, call: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const now = performance.now();
      const pending: Pending = { deadline: now + ms, lagAtStart: lag, operation, done: false, reject };
      queue.push(pending);
      live++;
      if (timer === undefined) arm(now);
      call().then(
        (value) => {
          if (pending.done) return;
          settled(pending);
          resolve(value);
        },
        (error: unknown) => {
          if (pending.done) return;
          settled(pending);
          reject(error);
        },
      );
    });
  };
}
