/**
 * The proxy's half of the finish calls' replay guard (lua/guard.lua has Redis's half).
 *
 * A settle or a record whose call timed out or lost its reply may or may not have been
 * applied; the guarded store retries it, passing the same reservation or event object. So
 * an op is known by its object: each call has a number, an op remembers the numbers of the
 * calls it was sent in whose answer was lost (`prior`), and the script skips it when one of
 * those calls left its mark. A call's marks are forgotten (acknowledged) once every op of
 * that tenant in it has an answer: its own, or that of a retry. Redis then holds marks only
 * for calls in flight, lost, or answered but not yet acknowledged: a few per proxy and
 * tenant whatever the rate, where a dedupe set of request ids grew with it.
 *
 * An op object answered once is done: sending it again resolves at once (as the memory
 * store counts a reservation or event object once).
 */
import { randomBytes } from 'node:crypto';

interface OpState {
  /** The call now carrying the op, shared by a second send of the same object. */
  pending?: Promise<void>;
  done: boolean;
  /** Earlier calls it was in whose answer was lost. */
  prior: number[];
}

/** A lost call, until every op of each tenant in it has an answer or its marks expired. */
interface LostCall {
  readonly at: number;
  /** tenant -> ops of it still without an answer. */
  readonly open: Map<string, number>;
}

/** An op as one call carries it. */
export interface MarkedOp {
  readonly tenant: string;
  readonly key: object;
}

/** What a retry after the marks' TTL risks: counting twice (the mark it needs is gone). */
export interface ExpiredRetry {
  readonly tenant: string;
  readonly lostForMs: number;
}

export class ReplayMarks {
  /** This process, in every mark it leaves (48 random bits, 8 characters). */
  readonly instance = randomBytes(6).toString('base64url');
  private lastCall = 0;
  private readonly ops = new WeakMap<object, OpState>();
  private readonly lost = new Map<number, LostCall>();
  /** tenant -> numbers of calls whose marks it may forget. */
  private readonly acks = new Map<string, { calls: number[]; at: number }>();
  private lastSweep = 0;

  constructor(
    /** How long Redis keeps a mark (the script's TTL). */
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The call now carrying this op object, if one is in flight. */
  pending(key: object): Promise<void> | undefined {
    return this.ops.get(key)?.pending;
  }

  /** True when a call carrying this op object was answered. */
  done(key: object): boolean {
    return this.ops.get(key)?.done === true;
  }

  /** Notes that `key` now rides on `pending`; returns the calls it was lost in before. */
  send(key: object, pending: Promise<void>): readonly number[] {
    let state = this.ops.get(key);
    if (!state) {
      state = { done: false, prior: [] };
      this.ops.set(key, state);
    }
    state.pending = pending;
    return state.prior;
  }

  /** Retries of ops whose oldest lost call is older than the marks live (for a warning). */
  expired(ops: readonly MarkedOp[]): ExpiredRetry[] {
    const found: ExpiredRetry[] = [];
    const now = this.now();
    for (const { tenant, key } of ops) {
      const first = this.ops.get(key)?.prior[0];
      const lostAt = first === undefined ? undefined : this.lost.get(first)?.at;
      if (first !== undefined && (lostAt === undefined || now - lostAt >= this.ttlMs)) {
        found.push({ tenant, lostForMs: lostAt === undefined ? this.ttlMs : now - lostAt });
      }
    }
    return found;
  }

  /** A number for the next call. */
  nextCall(): number {
    this.sweep();
    return ++this.lastCall;
  }

  /** Takes the acknowledgements to piggy-back on a call: of `tenant`, or of all when undefined. */
  takeAcks(tenant?: string): Map<string, number[]> {
    const taken = new Map<string, number[]>();
    if (tenant === undefined) {
      for (const [t, { calls }] of this.acks) taken.set(t, calls);
      this.acks.clear();
    } else {
      const mine = this.acks.get(tenant);
      if (mine) taken.set(tenant, mine.calls);
      this.acks.delete(tenant);
    }
    return taken;
  }

  /** Acknowledgements whose call failed: sent again with a later call (forgetting is idempotent). */
  returnAcks(taken: Map<string, number[]>): void {
    for (const [tenant, calls] of taken) for (const call of calls) this.ack(tenant, call);
  }

  /** The call was answered: its ops are done, and the calls they were lost in may resolve. */
  answered(call: number, ops: readonly MarkedOp[]): void {
    const tenants = new Set<string>();
    for (const { tenant, key } of ops) {
      tenants.add(tenant);
      const state = this.ops.get(key);
      if (!state) continue;
      state.done = true;
      state.pending = undefined;
      for (const prior of state.prior) this.resolve(prior, tenant);
      state.prior = [];
    }
    for (const tenant of tenants) this.ack(tenant, call);
  }

  /** The call failed or timed out: whether it applied is unknown until its ops are retried. */
  failed(call: number, ops: readonly MarkedOp[]): void {
    const open = new Map<string, number>();
    for (const { tenant, key } of ops) {
      open.set(tenant, (open.get(tenant) ?? 0) + 1);
      const state = this.ops.get(key);
      if (!state) continue;
      state.pending = undefined;
      state.prior.push(call);
    }
    this.lost.set(call, { at: this.now(), open });
  }

  /** Marks awaiting acknowledgement and lost calls remembered (for tests and health). */
  size(): { acks: number; lost: number } {
    return { acks: this.acks.size, lost: this.lost.size };
  }

  private resolve(call: number, tenant: string): void {
    const lost = this.lost.get(call);
    const left = lost?.open.get(tenant);
    if (!lost || left === undefined) return;
    if (left > 1) {
      lost.open.set(tenant, left - 1);
      return;
    }
    lost.open.delete(tenant);
    if (lost.open.size === 0) this.lost.delete(call);
    this.ack(tenant, call);
  }

  private ack(tenant: string, call: number): void {
    const entry = this.acks.get(tenant);
    if (entry) entry.calls.push(call);
    else this.acks.set(tenant, { calls: [call], at: this.now() });
  }

  /**
   * Drops what Redis has already expired: lost calls (ops never retried: dropped from a full
   * buffer, of an erased tenant) and acknowledgements of tenants that went quiet (in a
   * Cluster an ack rides only on its own tenant's next call). At most once per TTL / 4.
   */
  private sweep(): void {
    const now = this.now();
    if (now - this.lastSweep < this.ttlMs / 4) return;
    this.lastSweep = now;
    for (const [call, { at }] of this.lost) if (now - at >= this.ttlMs) this.lost.delete(call);
    for (const [tenant, { at }] of this.acks) if (now - at >= this.ttlMs) this.acks.delete(tenant);
  }
}
