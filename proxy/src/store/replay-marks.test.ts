import { describe, expect, it } from 'vitest';
import { ReplayMarks } from './replay-marks.js';

const never = new Promise<void>(() => undefined);

describe('ReplayMarks', () => {
  it('acknowledges an answered call at once, for each tenant it carried', () => {
    const marks = new ReplayMarks(60_000);
    const [a, b] = [{}, {}];
    marks.send(a, never);
    marks.send(b, never);
    const call = marks.nextCall();
    marks.answered(call, [
      { tenant: 't1', key: a },
      { tenant: 't2', key: b },
    ]);
    expect(marks.done(a)).toBe(true);
    expect(marks.takeAcks('t1')).toEqual(new Map([['t1', [call]]]));
    expect(marks.takeAcks()).toEqual(new Map([['t2', [call]]]));
    expect(marks.takeAcks()).toEqual(new Map());
  });

  it('keeps a lost call unacknowledged until every op of the tenant in it has an answer', () => {
    const marks = new ReplayMarks(60_000);
    const [a, b] = [{}, {}];
    marks.send(a, never);
    marks.send(b, never);
    const lost = marks.nextCall();
    marks.failed(lost, [
      { tenant: 't', key: a },
      { tenant: 't', key: b },
    ]);
    expect(marks.pending(a)).toBeUndefined();
    // The retry of `a` names the lost call; answering it acknowledges only the retry's call.
    expect(marks.send(a, never)).toEqual([lost]);
    const retryA = marks.nextCall();
    marks.answered(retryA, [{ tenant: 't', key: a }]);
    expect(marks.takeAcks()).toEqual(new Map([['t', [retryA]]]));
    expect(marks.send(b, never)).toEqual([lost]);
    const retryB = marks.nextCall();
    marks.answered(retryB, [{ tenant: 't', key: b }]);
    expect(marks.takeAcks()).toEqual(new Map([['t', [lost, retryB]]]));
    expect(marks.size()).toEqual({ acks: 0, lost: 0 });
  });

  it('remembers every lost call of an op retried more than once', () => {
    const marks = new ReplayMarks(60_000);
    const a = {};
    marks.send(a, never);
    const first = marks.nextCall();
    marks.failed(first, [{ tenant: 't', key: a }]);
    marks.send(a, never);
    const second = marks.nextCall();
    marks.failed(second, [{ tenant: 't', key: a }]);
    expect(marks.send(a, never)).toEqual([first, second]);
  });

  it('warns of retries older than the TTL and forgets lost calls and acks Redis has expired', () => {
    let now = 0;
    const marks = new ReplayMarks(1_000, () => now);
    const [a, b] = [{}, {}];
    marks.send(a, never);
    const lost = marks.nextCall();
    marks.failed(lost, [{ tenant: 't', key: a }]);
    marks.send(b, never);
    marks.answered(marks.nextCall(), [{ tenant: 'quiet', key: b }]);
    now = 999;
    expect(marks.expired([{ tenant: 't', key: a }])).toEqual([]);
    now = 1_000;
    expect(marks.expired([{ tenant: 't', key: a }])).toEqual([{ tenant: 't', lostForMs: 1_000 }]);
    marks.nextCall();
    expect(marks.size()).toEqual({ acks: 0, lost: 0 });
  });

  it('gives each process its own 8-character instance id', () => {
    const [x, y] = [new ReplayMarks(1), new ReplayMarks(1)];
    expect(x.instance).toMatch(/^[\w-]{8}$/);
    expect(x.instance).not.toBe(y.instance);
  });
});
