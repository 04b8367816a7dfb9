import { describe, expect, it } from 'vitest';
import { createDeadlines } from './redis-deadlines.js';

const never = () => new Promise<never>(() => {});
const after = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));
const timedOut = (operation: string) => new Error(`${operation} timed out`);

describe('createDeadlines', () => {
  it('passes through what answers in time, values and errors alike', async () => {
    const bounded = createDeadlines(100, timedOut);
    await expect(bounded('a', () => after(5, 'ok'))).resolves.toBe('ok');
    await expect(bounded('b', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  });

  it('rejects a call that does not answer within the timeout, and only that one', async () => {
    const bounded = createDeadlines(50, timedOut);
    const started = Date.now();
    const results = await Promise.allSettled([
      bounded('quick', () => after(5, 1)),
      bounded('stuck', never),
      bounded('later', () => after(20, 3)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toEqual(new Error('stuck timed out'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('times out calls made later on their own deadlines', async () => {
    const bounded = createDeadlines(40, timedOut);
    const first = bounded('first', never).catch(() => Date.now());
    await after(25, null);
    const second = bounded('second', never).catch(() => Date.now());
    const started = Date.now();
    const [firstAt, secondAt] = await Promise.all([first, second]);
    expect(firstAt).toBeLessThan(secondAt);
    expect(secondAt - started).toBeGreaterThanOrEqual(35);
  });

  it('lets a reply that arrived while the event loop was busy win over the timer', async () => {
    const bounded = createDeadlines(20, timedOut);
    const call = bounded('slow loop', () => after(5, 'answered'));
    // Block the loop past both the reply and the deadline.
    const until = Date.now() + 60;
    while (Date.now() < until);
    await expect(call).resolves.toBe('answered');
  });

  it('pushes the deadline back by the event-loop lag: a reply that needs the loop after a block still wins', async () => {
    const bounded = createDeadlines(50, timedOut);
    // The reply only comes 30 ms after the block ends (it needs timers of its own to run).
    const until = Date.now() + 120;
    const call = bounded(
      'after lag',
      () => new Promise((resolve) => setTimeout(() => setTimeout(() => resolve('late but fine'), 30), 0)),
    );
    while (Date.now() < until);
    await expect(call).resolves.toBe('late but fine');
  });

  it('still times out a call that gets no answer after a lagging loop', async () => {
    const bounded = createDeadlines(50, timedOut);
    const call = bounded('stuck', never);
    const until = Date.now() + 120;
    while (Date.now() < until);
    await expect(call).rejects.toThrow('stuck timed out');
  });
});
